#!/usr/bin/env python
"""Train or fine-tune the DeltaTok tokenizer with 🤗 Accelerate.

    accelerate launch examples/train_deltatok.py --train_data path/to/videos --model_config vitb \
        --train_batch_size 128 --gradient_accumulation_steps 1 --mixed_precision bf16 --max_train_steps 1000000

Every step reconstructs the last frame of a clip from the frame before it (the official `training/deltatok.py`);
the backbone stays frozen. See examples/README.md for the recipes (`--preset released|paper`).
"""

import argparse
import logging

from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from accelerate.utils import set_seed

from deltatok_hf import DeltaTokModel
from deltatok_hf.training import (
    DELTATOK_PARTS,
    add_training_arguments,
    apply_recipe,
    build_clip_dataset,
    finish_run,
    freeze_parameters,
    resolve_config,
    train,
)

logger = get_logger(__name__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, "deltatok")
    parser.add_argument(
        "--reconstruction_loss",
        choices=("log_cosh", "mse"),
        default=None,
        help="Defaults to the preset's: log_cosh (released) or mse (paper).",
    )
    parser.add_argument(
        "--backbone_name_or_path",
        type=str,
        default=None,
        help="DINOv3 weights for a new tokenizer (default: the config's, e.g. facebook/dinov3-vitb16-pretrain-lvd1689m). "
        "`random` keeps the random backbone (tiny configs always do).",
    )
    return parser.parse_args(argv)


def build_model(args, recipe) -> DeltaTokModel:
    if args.init_from is not None:
        model = DeltaTokModel.from_pretrained(args.init_from)
    else:
        config = resolve_config("deltatok", args.model_config)
        model = DeltaTokModel(config)
        source = args.backbone_name_or_path or config.backbone_name_or_path
        if source is not None and source != "random":
            from transformers import DINOv3ViTModel

            model.backbone.load_state_dict(DINOv3ViTModel.from_pretrained(source).state_dict())
            model.backbone.requires_grad_(False)
    # The loss is a config field (one source of truth); the preset only picks its value.
    model.config.reconstruction_loss = args.reconstruction_loss or recipe.reconstruction_loss
    if args.freeze:
        frozen = freeze_parameters(model, args.freeze, DELTATOK_PARTS)
        logger.info(f"Froze {len(frozen)} parameter tensors ({', '.join(args.freeze)})")
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model


def compute_loss(model, batch):
    return model(frames=batch["frames"]).loss


def main(argv=None):
    args = parse_args(argv)
    recipe = apply_recipe(args, "deltatok")
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
        accelerator.init_trackers("train_deltatok", config={k: v for k, v in vars(args).items() if not isinstance(v, list)})
    set_seed(args.seed)

    model = build_model(args, recipe)
    train_dataset = build_clip_dataset(args)
    summary = train(args, accelerator, model, train_dataset, compute_loss, logger=logger)

    if accelerator.is_main_process:
        finish_run(
            args,
            summary,
            "deltatok_template.md",
            "DeltaTok",
            tags=["deltatok", "video", "world-model"],
            extra={"reconstruction_loss": model.config.reconstruction_loss},
        )
        logger.info(f"Saved to {args.output_dir} after {summary['global_step']} steps; final loss {summary['final_loss']}")
    accelerator.end_training()


if __name__ == "__main__":
    main()
