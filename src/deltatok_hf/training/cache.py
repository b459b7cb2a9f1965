"""`deltatok-hf cache-tokens` (and `examples/cache_delta_tokens.py`): run the frozen backbone + DeltaTok encoder once
over sampled clips and store their delta tokens, so that DeltaWorld training never runs them (design doc, section 6).

The cache is a `datasets` dataset (`save_to_disk`) with one row per view of a video: `delta_tokens`
`(num_frames, hidden_size)` float32, `timestamps` `(num_frames,)` float32, `video_id`, `view`, and with
`store_last_features` the backbone features of the last frame `(num_patches, hidden_size)` as float16 (what decoding
starts from). `cache_info.json` records the tokenizer's checksum, so training refuses a cache of another tokenizer.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from ..data import collate_clips
from ..models import DeltaTokModel, DeltaWorldForForecasting
from .arguments import CacheTokensArguments
from .data import build_clip_dataset, encode_clip_batch, write_cache_info
from .optim import build_optimizer, parameter_checksum
from .recipes import get_recipe, resolve_config


def load_cache_tokenizer(arguments: CacheTokensArguments) -> DeltaTokModel:
    if arguments.tokenizer is not None:
        return DeltaTokModel.from_pretrained(arguments.tokenizer)
    return DeltaTokModel(resolve_config("deltatok", arguments.model_config))


def _clip_loader(arguments: CacheTokensArguments, clip_dataset) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        clip_dataset,
        batch_size=arguments.batch_size,
        collate_fn=collate_clips,
        num_workers=arguments.dataloader_num_workers,
    )


@torch.no_grad()
def build_token_cache(arguments: CacheTokensArguments, tokenizer: DeltaTokModel, clip_dataset, device):
    """Encode `views_per_video` views of every clip of `clip_dataset` -> a `datasets.Dataset` (see the module doc)."""
    from datasets import Array2D, Dataset, Features, Sequence, Value
    from tqdm.auto import tqdm

    tokenizer.train(arguments.rope_augmentation)
    loader = _clip_loader(arguments, clip_dataset)
    columns = {"delta_tokens": [], "timestamps": [], "video_id": [], "view": []}
    if arguments.store_last_features:
        columns["last_features"] = []
    for view in range(arguments.views_per_video):
        if hasattr(clip_dataset, "set_epoch"):
            clip_dataset.set_epoch(view)  # a new random clip and crop of every video
        for batch in tqdm(loader, desc=f"view {view + 1}/{arguments.views_per_video}"):
            delta_tokens, last_features = encode_clip_batch(tokenizer, batch["frames"].to(device))
            columns["delta_tokens"].extend(delta_tokens.float().cpu().numpy())  # (B, T, D) rows
            columns["timestamps"].extend(batch["timestamps"].float().numpy())  # (B, T) rows
            video_ids = batch.get("video_id") or [str(len(columns["video_id"]) + i) for i in range(len(delta_tokens))]
            columns["video_id"].extend(video_ids)
            columns["view"].extend([view] * len(video_ids))
            if arguments.store_last_features:
                columns["last_features"].extend(last_features.half().cpu().numpy())  # (B, N, D) rows
    if not columns["delta_tokens"]:
        raise ValueError(f"train_data {arguments.train_data!r} produced no clip to cache.")
    num_frames, hidden_size = columns["delta_tokens"][0].shape
    features = {
        "delta_tokens": Array2D((num_frames, hidden_size), "float32"),
        "timestamps": Sequence(Value("float32"), length=num_frames),
        "video_id": Value("string"),
        "view": Value("int32"),
    }
    if arguments.store_last_features:
        features["last_features"] = Array2D(tuple(columns["last_features"][0].shape), "float16")
    return Dataset.from_dict(columns, features=Features(features))


def benchmark_token_cache(arguments: CacheTokensArguments, tokenizer: DeltaTokModel, clip_dataset, cache, device) -> dict:
    """Median seconds per DeltaWorld training step from frames vs from cached tokens, on the same batch, interleaved."""
    from tqdm.auto import tqdm

    config = resolve_config("deltaworld", arguments.benchmark_world_config)
    if arguments.benchmark_num_samples_train is not None:
        config.num_samples_train = arguments.benchmark_num_samples_train
    model = DeltaWorldForForecasting.from_tokenizer(tokenizer, config).to(device)
    model.train()
    recipe = get_recipe("deltaworld", "released")
    optimizer = build_optimizer(model, learning_rate=recipe.learning_rate, weight_decay=recipe.weight_decay)
    batch = next(iter(_clip_loader(arguments, clip_dataset)))
    batch_size = batch["frames"].shape[0]
    frames, timestamps = batch["frames"].to(device), batch["timestamps"].to(device)
    delta_tokens = cache.with_format("torch")[:batch_size]["delta_tokens"].to(device)  # (B, T, D)

    def step(**inputs) -> float:
        start = time.perf_counter()
        loss = model(timestamps=timestamps, **inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    step(frames=frames), step(delta_tokens=delta_tokens)  # warm-up
    on_the_fly, cached = [], []
    for _ in tqdm(range(arguments.benchmark), desc="benchmark"):  # interleaved: both see the same machine load
        on_the_fly.append(step(frames=frames))
        cached.append(step(delta_tokens=delta_tokens))
    result = {
        "steps": arguments.benchmark,
        "batch_size": batch_size,
        "num_frames": arguments.num_frames,
        "frame_size": arguments.frame_size,
        "world_config": arguments.benchmark_world_config,
        "num_samples_train": config.num_samples_train,
        "seconds_per_step_on_the_fly": statistics.median(on_the_fly),
        "seconds_per_step_cached": statistics.median(cached),
    }
    result["speedup"] = result["seconds_per_step_on_the_fly"] / result["seconds_per_step_cached"]
    return result


def cache_delta_tokens(arguments: CacheTokensArguments) -> dict:
    """Write the token cache (and `cache_info.json`, and `benchmark.json` with `benchmark`); returns the info."""
    from accelerate.utils import set_seed

    from .checkpointing import write_json

    set_seed(arguments.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_cache_tokenizer(arguments).to(device)
    clip_dataset = build_clip_dataset(arguments)
    cache = build_token_cache(arguments, tokenizer, clip_dataset, device)
    output_dir = Path(arguments.output_dir)
    cache.save_to_disk(str(output_dir))
    info = {
        "tokenizer": arguments.tokenizer,
        "tokenizer_checksum": parameter_checksum(tokenizer, trainable_only=False),
        "train_data": arguments.train_data,
        "num_rows": len(cache),
        "num_frames": arguments.num_frames,
        "frame_size": arguments.frame_size,
        "views_per_video": arguments.views_per_video,
        "rope_augmentation": arguments.rope_augmentation,
    }
    write_cache_info(output_dir, info)
    print(f"Cached {len(cache)} clips ({arguments.views_per_video} views) to {output_dir}")
    if arguments.benchmark:
        result = benchmark_token_cache(arguments, tokenizer, clip_dataset, cache, device)
        write_json(output_dir / "benchmark.json", result)
        info["benchmark"] = result
        print(f"Training from the token cache is {result['speedup']:.1f}x faster per step than on the fly.")
    return info


__all__ = ["benchmark_token_cache", "build_token_cache", "cache_delta_tokens", "load_cache_tokenizer"]
