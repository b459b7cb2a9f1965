#!/usr/bin/env python
"""Train the tiny demo DeltaWorld bundled with deltatok-hf (`src/deltatok_hf/assets/demo_model/`), on a CPU, in minutes.

    python examples/train_demo_model.py

Stage 1 trains a tiny DeltaTok (random-init 2-layer DINOv3-shaped backbone, fixed seed; tokenizer 2 + 2 blocks) on
frame pairs from the bundled 3.5-s city clip and synthetic moving shapes; stage 2 trains a tiny Best-of-Many DeltaWorld
on 7-frame clips of the same data with that tokenizer frozen. Both stages use the same Accelerate loop as
`train_deltatok.py` / `train_deltaworld.py`. The result is for demos and for exercising the mechanics (pipeline,
CLI, docs); it is not a quality model: the backbone is random, so its features mean nothing about the world.
"""

import argparse
import dataclasses
import shutil
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from deltatok_hf import DeltaTokModel, DeltaWorldForForecasting
from deltatok_hf.data import demo_clip_path
from deltatok_hf.training import (
    DeltaTokTrainingArguments,
    DeltaWorldTrainingArguments,
    build_accelerator,
    build_card_data,
    build_clip_dataset,
    compute_deltatok_loss,
    compute_loss_from_frames,
    render_model_card,
    resolve_config,
    train,
    write_json,
)

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "deltatok_hf" / "assets" / "demo_model"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=str, default=str(DEMO_DIR))
    parser.add_argument("--work_dir", type=str, default="outputs/demo_model_work", help="Checkpoints of both stages.")
    parser.add_argument("--frame_size", type=int, default=64)
    parser.add_argument("--tokenizer_steps", type=int, default=300)
    parser.add_argument("--world_steps", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_synthetic_videos", type=int, default=256)
    parser.add_argument("--clip_views", type=int, default=256, help="Random views of the city clip per epoch.")
    parser.add_argument("--num_samples_train", type=int, default=32, help="Best-of-Many candidates.")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def stage_arguments(arguments_class, args, output_dir: str, num_frames: int, max_train_steps: int, learning_rate: float):
    """The arguments the training commands would get (same dataclass, so the same defaults and checks)."""
    return arguments_class(
        output_dir=output_dir,
        num_frames=num_frames,
        frame_size=args.frame_size,
        num_synthetic_videos=args.num_synthetic_videos,
        train_batch_size=args.batch_size,
        max_train_steps=max_train_steps,
        learning_rate=learning_rate,
        warmup_steps=max_train_steps // 10,
        checkpointing_steps=max_train_steps,
        checkpoints_total_limit=1,
        logging_steps=50,
        seed=args.seed,
    )


def mixed_dataset(stage, args):
    """Synthetic shapes + `clip_views` random views (clip + crop) of the bundled city clip, decoded once."""
    synthetic = build_clip_dataset(stage)
    city = list(build_clip_dataset(dataclasses.replace(stage, train_data=str(demo_clip_path()), clips_per_video=args.clip_views)))
    return torch.utils.data.ConcatDataset([synthetic, city])


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    work_dir = Path(args.work_dir)

    # Stage 1: tokenizer on frame pairs. A higher LR than the ViT-B recipe: the run is a few hundred steps.
    set_seed(args.seed)
    tokenizer_args = stage_arguments(
        DeltaTokTrainingArguments, args, str(work_dir / "deltatok"), 2, args.tokenizer_steps, 1e-3
    )
    accelerator = build_accelerator(tokenizer_args)
    tokenizer = DeltaTokModel(resolve_config("deltatok", "tiny"))
    tokenizer.config.reconstruction_loss = tokenizer_args.reconstruction_loss
    tokenizer_summary = train(
        tokenizer_args, accelerator, tokenizer, mixed_dataset(tokenizer_args, args), compute_deltatok_loss
    )
    print(f"tokenizer: loss {tokenizer_summary['losses']['1']:.4f} -> {tokenizer_summary['final_loss']:.4f}")

    # Stage 2: Best-of-Many predictor on 7-frame clips, tokenizer frozen.
    set_seed(args.seed)
    world_args = stage_arguments(
        DeltaWorldTrainingArguments, args, str(work_dir / "deltaworld"), 7, args.world_steps, 1e-3
    )
    accelerator = build_accelerator(world_args)
    config = resolve_config("deltaworld", "tiny")
    config.tokenizer_config = tokenizer.config
    config.num_samples_train = args.num_samples_train
    world = DeltaWorldForForecasting(config)
    world.tokenizer.load_state_dict(accelerator.unwrap_model(tokenizer).state_dict())
    world_summary = train(world_args, accelerator, world, mixed_dataset(world_args, args), compute_loss_from_frames)
    print(f"world: loss {world_summary['losses']['1']:.4f} -> {world_summary['final_loss']:.4f}")
    minutes = (time.perf_counter() - start) / 60

    # Keep only what the package ships: config, weights, card.
    output_dir = Path(args.output_dir)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    world = accelerator.unwrap_model(world)
    world.config.num_samples_eval = 20
    world.save_pretrained(output_dir)
    card = render_model_card(
        "demo_model_template.md",
        build_card_data("deltaworld", tags=["deltaworld", "demo", "not-for-evaluation"]),
        minutes=f"{minutes:.1f}",
        args=vars(args),
        tokenizer_summary=tokenizer_summary,
        world_summary=world_summary,
        num_parameters=sum(p.numel() for p in world.parameters()),
    )
    card.save(str(output_dir / "README.md"))
    write_json(work_dir / "demo_summary.json", {"minutes": minutes, "tokenizer": tokenizer_summary, "world": world_summary})
    size_mb = sum(f.stat().st_size for f in output_dir.iterdir()) / 2**20
    print(f"Saved the demo DeltaWorld to {output_dir} ({size_mb:.1f} MB) after {minutes:.1f} minutes.")


if __name__ == "__main__":
    main()
