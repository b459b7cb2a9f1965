#!/usr/bin/env python
"""Run the frozen backbone + DeltaTok encoder once over sampled clips and store their delta tokens.

    python examples/cache_delta_tokens.py --train_data path/to/videos --tokenizer path/to/deltatok \
        --num_frames 8 --frame_size 512 --views_per_video 4 --output_dir cache/kinetics-8f
    accelerate launch examples/train_deltaworld.py --token_cache cache/kinetics-8f --tokenizer path/to/deltatok

The cache is a `datasets` dataset (`save_to_disk`) with one row per view of a video:
`delta_tokens` (num_frames, D) float32, `timestamps` (num_frames,) float32, `video_id`, `view`, and with
`--store_last_features` the backbone features of the last frame (num_patches, D) as float16 (what decoding starts
from). `cache_info.json` records the tokenizer's checksum so the training script refuses a cache of another tokenizer.

`--benchmark STEPS` then times DeltaWorld training steps from frames (backbone + encoder every step) and from the
cached tokens on the same batch, in this process, and prints the ratio.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from datasets import Array2D, Dataset, Features, Sequence, Value
from tqdm.auto import tqdm

from deltatok_hf import DeltaTokModel, DeltaWorldForForecasting
from deltatok_hf.data import collate_clips
from deltatok_hf.training import (
    build_clip_dataset,
    build_optimizer,
    encode_clip_batch,
    parameter_checksum,
    resolve_config,
    write_json,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_data", type=str, default="synthetic", help="Video folder, dataset path / Hub id, or `synthetic`.")
    parser.add_argument("--tokenizer", type=str, default=None, help="Trained DeltaTok (folder or Hub id).")
    parser.add_argument("--model_config", type=str, default="tiny", help="Tokenizer config when --tokenizer is not given (random init).")
    parser.add_argument("--num_frames", type=int, default=8)
    parser.add_argument("--frame_size", type=int, default=256)
    parser.add_argument("--time_stride_range", type=float, nargs=2, default=(1 / 25, 1 / 3))
    parser.add_argument("--num_synthetic_videos", type=int, default=512)
    parser.add_argument("--views_per_video", type=int, default=1, help="Augmented views (random clip + crop) per video.")
    parser.add_argument(
        "--rope_augmentation",
        action="store_true",
        help="Encode in train mode (one RoPE-rescale draw per batch, as on-the-fly training); default is eval mode.",
    )
    parser.add_argument("--store_last_features", action="store_true")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--dataloader_num_workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--benchmark", type=int, default=0, metavar="STEPS", help="Time STEPS training steps each way.")
    parser.add_argument("--benchmark_world_config", type=str, default="tiny", help="DeltaWorld sizes for --benchmark.")
    parser.add_argument("--benchmark_num_samples_train", type=int, default=None, help="Best-of-Many K for --benchmark.")
    args = parser.parse_args(argv)
    if args.views_per_video < 1:
        raise ValueError(f"--views_per_video must be >= 1, got {args.views_per_video}.")
    return args


def load_tokenizer(args) -> DeltaTokModel:
    if args.tokenizer is not None:
        return DeltaTokModel.from_pretrained(args.tokenizer)
    return DeltaTokModel(resolve_config("deltatok", args.model_config))


@torch.no_grad()
def build_cache(args, tokenizer, clip_dataset, device) -> Dataset:
    tokenizer.train(args.rope_augmentation)
    loader = make_loader(args, clip_dataset)
    columns = {"delta_tokens": [], "timestamps": [], "video_id": [], "view": []}
    if args.store_last_features:
        columns["last_features"] = []
    for view in range(args.views_per_video):
        if hasattr(clip_dataset, "set_epoch"):
            clip_dataset.set_epoch(view)  # a new random clip and crop of every video
        for batch in tqdm(loader, desc=f"view {view + 1}/{args.views_per_video}"):
            delta_tokens, last_features = encode_clip_batch(tokenizer, batch["frames"].to(device))
            columns["delta_tokens"].extend(delta_tokens.float().cpu().numpy())
            columns["timestamps"].extend(batch["timestamps"].float().numpy())
            video_ids = batch.get("video_id") or [str(len(columns["video_id"]) + i) for i in range(len(delta_tokens))]
            columns["video_id"].extend(video_ids)
            columns["view"].extend([view] * len(video_ids))
            if args.store_last_features:
                columns["last_features"].extend(last_features.half().cpu().numpy())
    num_frames, hidden_size = columns["delta_tokens"][0].shape
    features = {
        "delta_tokens": Array2D((num_frames, hidden_size), "float32"),
        "timestamps": Sequence(Value("float32"), length=num_frames),
        "video_id": Value("string"),
        "view": Value("int32"),
    }
    if args.store_last_features:
        features["last_features"] = Array2D(tuple(columns["last_features"][0].shape), "float16")
    return Dataset.from_dict(columns, features=Features(features))


def make_loader(args, clip_dataset):
    return torch.utils.data.DataLoader(
        clip_dataset, batch_size=args.batch_size, collate_fn=collate_clips, num_workers=args.dataloader_num_workers
    )


def benchmark(args, tokenizer, clip_dataset, cache: Dataset, device) -> dict:
    """Median seconds per DeltaWorld training step from frames vs from cached tokens, on the same batch."""
    config = resolve_config("deltaworld", args.benchmark_world_config)
    config.tokenizer_config = tokenizer.config
    if args.benchmark_num_samples_train is not None:
        config.num_samples_train = args.benchmark_num_samples_train
    model = DeltaWorldForForecasting(config).to(device)
    model.tokenizer.load_state_dict(tokenizer.state_dict())
    model.train()
    optimizer = build_optimizer(model, learning_rate=1e-4, weight_decay=0.4)
    batch = next(iter(make_loader(args, clip_dataset)))
    batch_size = batch["frames"].shape[0]
    frames, timestamps = batch["frames"].to(device), batch["timestamps"].to(device)
    rows = cache.with_format("torch")[:batch_size]
    delta_tokens = rows["delta_tokens"].to(device)

    def step(**inputs):
        start = time.perf_counter()
        loss = model(timestamps=timestamps, **inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    step(frames=frames), step(delta_tokens=delta_tokens)  # warm-up
    on_the_fly, cached = [], []
    for _ in tqdm(range(args.benchmark), desc="benchmark"):  # interleaved so both see the same machine load
        on_the_fly.append(step(frames=frames))
        cached.append(step(delta_tokens=delta_tokens))
    result = {
        "steps": args.benchmark,
        "batch_size": batch_size,
        "num_frames": args.num_frames,
        "frame_size": args.frame_size,
        "world_config": args.benchmark_world_config,
        "num_samples_train": config.num_samples_train,
        "seconds_per_step_on_the_fly": statistics.median(on_the_fly),
        "seconds_per_step_cached": statistics.median(cached),
    }
    result["speedup"] = result["seconds_per_step_on_the_fly"] / result["seconds_per_step_cached"]
    return result


def main(argv=None):
    args = parse_args(argv)
    set_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(args).to(device)
    clip_dataset = build_clip_dataset(args, num_frames=args.num_frames)

    cache = build_cache(args, tokenizer, clip_dataset, device)
    output_dir = Path(args.output_dir)
    cache.save_to_disk(str(output_dir))
    info = {
        "tokenizer": args.tokenizer,
        "tokenizer_checksum": parameter_checksum(tokenizer, trainable_only=False),
        "train_data": args.train_data,
        "num_rows": len(cache),
        "num_frames": args.num_frames,
        "frame_size": args.frame_size,
        "views_per_video": args.views_per_video,
        "rope_augmentation": args.rope_augmentation,
    }
    write_json(output_dir / "cache_info.json", info)
    print(f"Cached {len(cache)} clips ({args.views_per_video} views) to {output_dir}")

    if args.benchmark:
        result = benchmark(args, tokenizer, clip_dataset, cache, device)
        write_json(output_dir / "benchmark.json", result)
        print(json.dumps(result, indent=2))
        print(f"Training from the token cache is {result['speedup']:.1f}x faster per step than on the fly.")


if __name__ == "__main__":
    main()
