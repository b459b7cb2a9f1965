#!/usr/bin/env python
"""Train or fine-tune the DeltaWorld predictor with 🤗 Accelerate, on frames or on cached delta tokens.

    # on the fly: frozen backbone + tokenizer encoder at every step
    accelerate launch examples/train_deltaworld.py --train_data path/to/videos --model_config vitb \
        --tokenizer path/to/deltatok --mixed_precision bf16
    # from a token cache written by examples/cache_delta_tokens.py: no backbone, no encoder
    accelerate launch examples/train_deltaworld.py --token_cache path/to/cache --model_config vitb

Best-of-Many training (official `training/world.py`): `num_samples_train` noise queries per target are scored without
gradient and only the closest one is trained. `--deterministic` trains the one-query ablation instead.
"""

import argparse
import json
import logging
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from accelerate.utils import set_seed

from deltatok_hf import DeltaTokModel, DeltaWorldForForecasting
from deltatok_hf.training import (
    DELTAWORLD_PARTS,
    CallCounter,
    add_training_arguments,
    apply_recipe,
    build_clip_dataset,
    finish_run,
    freeze_parameters,
    parameter_checksum,
    resolve_config,
    train,
)

logger = get_logger(__name__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, "deltaworld")
    parser.add_argument(
        "--tokenizer", type=str, default=None, help="Trained DeltaTok (folder or Hub id) for a new DeltaWorld."
    )
    parser.add_argument(
        "--token_cache",
        type=str,
        default=None,
        help="Dataset written by examples/cache_delta_tokens.py; training then never runs the backbone or encoder.",
    )
    parser.add_argument("--num_samples_train", type=int, default=None, help="Best-of-Many candidates (config default 256).")
    parser.add_argument("--deterministic", action="store_true", help="One learned query instead of Best-of-Many.")
    return parser.parse_args(argv)


def build_model(args) -> DeltaWorldForForecasting:
    if args.init_from is not None:
        model = DeltaWorldForForecasting.from_pretrained(args.init_from)
    else:
        config = resolve_config("deltaworld", args.model_config)
        tokenizer = DeltaTokModel.from_pretrained(args.tokenizer) if args.tokenizer else None
        if tokenizer is not None:
            config.tokenizer_config = tokenizer.config
            config.tokenizer_name_or_path = args.tokenizer
        if args.deterministic:
            config.use_best_of_many = False
        if args.num_samples_train is not None:
            config.num_samples_train = args.num_samples_train
        model = DeltaWorldForForecasting(config)
        if tokenizer is not None:
            model.tokenizer.load_state_dict(tokenizer.state_dict())
    if args.init_from is not None and args.num_samples_train is not None:
        model.config.num_samples_train = args.num_samples_train
    model.tokenizer.requires_grad_(False)
    if args.freeze:
        frozen = freeze_parameters(model, args.freeze, DELTAWORLD_PARTS)
        logger.info(f"Froze {len(frozen)} parameter tensors ({', '.join(args.freeze)})")
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model


def load_token_cache(path: str, model: DeltaWorldForForecasting):
    """The cached dataset, after checking it was made with this model's tokenizer."""
    from datasets import load_from_disk

    info_path = Path(path) / "cache_info.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        checksum = parameter_checksum(model.tokenizer, trainable_only=False)
        if info.get("tokenizer_checksum") != checksum:
            raise ValueError(
                f"The token cache {path} was written with another tokenizer ({info.get('tokenizer')!r}); pass the same "
                "weights with --tokenizer or --init_from, or rebuild the cache."
            )
    dataset = load_from_disk(path)
    return dataset.with_format("torch", columns=["delta_tokens", "timestamps"])


def collate_tokens(items):
    return {
        "delta_tokens": torch.stack([item["delta_tokens"] for item in items]),
        "timestamps": torch.stack([item["timestamps"].float() for item in items]),
    }


def compute_loss_from_frames(model, batch):
    return model(frames=batch["frames"], timestamps=batch["timestamps"]).loss


def compute_loss_from_tokens(model, batch):
    return model(delta_tokens=batch["delta_tokens"], timestamps=batch["timestamps"]).loss


def main(argv=None):
    args = parse_args(argv)
    apply_recipe(args, "deltaworld")
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to,
        project_dir=args.output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if args.report_to:
        accelerator.init_trackers("train_deltaworld", config={k: v for k, v in vars(args).items() if not isinstance(v, list)})
    set_seed(args.seed)

    if args.token_cache is not None and args.tokenizer is None and args.init_from is None:
        # Default to the tokenizer the cache was written with.
        info_path = Path(args.token_cache) / "cache_info.json"
        args.tokenizer = json.loads(info_path.read_text()).get("tokenizer") if info_path.is_file() else None
    model = build_model(args)
    # Counts every call of the frozen backbone and of the first encoder block (reported in train_summary.json).
    counter = CallCounter(backbone=model.tokenizer.backbone, encoder=model.tokenizer.encoder_blocks[0])
    if args.token_cache is not None:
        train_dataset = load_token_cache(args.token_cache, model)
        summary = train(args, accelerator, model, train_dataset, compute_loss_from_tokens, collate_tokens, logger)
    else:
        train_dataset = build_clip_dataset(args)
        summary = train(args, accelerator, model, train_dataset, compute_loss_from_frames, logger=logger)
    counter.remove()

    if accelerator.is_main_process:
        extra = {
            "backbone_calls": counter.counts["backbone"],
            "encoder_calls": counter.counts["encoder"],
            "token_cache": args.token_cache,
            "use_best_of_many": model.config.use_best_of_many,
            "num_samples_train": model.config.num_samples_train,
        }
        finish_run(args, summary, "deltaworld_template.md", "DeltaWorld", ["deltaworld", "video", "world-model"], extra)
        logger.info(f"Saved to {args.output_dir} after {summary['global_step']} steps; final loss {summary['final_loss']}")
    accelerator.end_training()


if __name__ == "__main__":
    main()
