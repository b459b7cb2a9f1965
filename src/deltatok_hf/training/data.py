"""Training data: the one place where `--train_data` strings are resolved, batching, and the delta-token cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .arguments import DataArguments
from .checkpointing import write_json
from .optim import parameter_checksum

CACHE_INFO_NAME = "cache_info.json"
TOKEN_CACHE_COLUMNS = ("delta_tokens", "timestamps")


def build_clip_dataset(arguments: DataArguments, num_frames: int | None = None):
    """
    The training clips named by `arguments.train_data`:

    - `synthetic`: `SyntheticMultimodalMotion` (map-style; items are a pure function of `(seed, index)`);
    - a LeRobot v3 folder or Hub dataset id (`meta/info.json`): a `LeRobotClipDataset`, clips never crossing an episode;
    - anything else (a video folder or file, a folder of WebDataset tars or parquet shards, a saved or Hub dataset): a
      `VideoClipDataset` (iterable; a random clip and `RandomResizedCropVideo` crop per video, seeded by
      `(seed, epoch, video)`, `clips_per_video` per epoch).

    `num_frames` overrides `arguments.num_frames`.
    """
    from .. import data

    num_frames = num_frames or arguments.num_frames
    if num_frames is None:
        raise ValueError("num_frames must be set (the arguments' num_frames is None).")
    if arguments.train_data == "synthetic":
        return data.SyntheticMultimodalMotion(
            num_videos=arguments.num_synthetic_videos,
            num_frames=num_frames,
            num_context_frames=max(1, num_frames - 3),
            size=arguments.frame_size,
            seed=arguments.seed,
        )
    min_gap, max_gap = arguments.time_stride_range
    clip_arguments = {
        "num_frames": num_frames,
        "num_clips_per_video": arguments.clips_per_video,
        "min_gap": min_gap,
        "max_gap": max_gap,
        "transform": data.RandomResizedCropVideo(arguments.frame_size),
        "shuffle": True,
        "seed": arguments.seed,
    }
    if data.is_lerobot_dataset(arguments.train_data):
        # Clips inside one episode of the dataset's camera (one with several cameras asks for a camera key).
        return data.LeRobotClipDataset(arguments.train_data, camera_key=arguments.camera_key, **clip_arguments)
    if arguments.camera_key is not None:
        raise ValueError(f"camera_key={arguments.camera_key!r} names a LeRobot camera, but {arguments.train_data!r} is not a LeRobot dataset.")
    return data.VideoClipDataset(data.load_video_dataset(arguments.train_data), **clip_arguments)


def collate_training_clips(items: list[dict]) -> dict:
    """Stack only what training needs, `frames` `(batch, num_frames, 3, H, W)` and `timestamps` `(batch, num_frames)`,
    so that clips from different sources (video clips, synthetic clips with extra fields) can share a batch."""
    return {
        "frames": torch.stack([torch.as_tensor(item["frames"]) for item in items]),
        "timestamps": torch.stack([torch.as_tensor(item["timestamps"], dtype=torch.float32) for item in items]),
    }


def collate_token_rows(items: list[dict]) -> dict:
    """Rows of a token cache -> `delta_tokens` `(batch, num_frames, hidden_size)` and `timestamps` `(batch, num_frames)`."""
    return {
        "delta_tokens": torch.stack([item["delta_tokens"] for item in items]),
        "timestamps": torch.stack([item["timestamps"].float() for item in items]),
    }


@torch.no_grad()
def encode_clip_batch(tokenizer, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Frames `(batch, num_frames, 3, H, W)` -> delta tokens `(batch, num_frames, D)` (the first against the black frame)
    and the features of the last frame `(batch, num_patches, D)`. Runs the backbone and the encoder once.
    """
    delta_tokens, features = tokenizer.encode_frames(frames)  # (B, T, D), (B, T, N, D)
    return delta_tokens, features[:, -1]


def read_cache_info(path: str | os.PathLike) -> dict:
    """`cache_info.json` of a token cache, or `{}` for a cache written without one."""
    info_path = Path(path) / CACHE_INFO_NAME
    return json.loads(info_path.read_text()) if info_path.is_file() else {}


def write_cache_info(path: str | os.PathLike, info: dict) -> None:
    write_json(Path(path) / CACHE_INFO_NAME, info)


def load_token_cache(path: str | os.PathLike, tokenizer):
    """
    The cached dataset (`delta_tokens`, `timestamps` as torch tensors), after checking that it was written with
    `tokenizer`'s weights (`ValueError` otherwise: its tokens would mean something else).
    """
    from datasets import load_from_disk

    if not Path(path).is_dir():
        raise ValueError(f"token_cache {str(path)!r} is not a folder written by `deltatok-hf cache-tokens`.")
    info = read_cache_info(path)
    if info and info.get("tokenizer_checksum") != parameter_checksum(tokenizer, trainable_only=False):
        raise ValueError(
            f"The token cache {path} was written with another tokenizer ({info.get('tokenizer')!r}); pass the same "
            "weights with --tokenizer or --init_from, or rebuild the cache."
        )
    return load_from_disk(str(path)).with_format("torch", columns=list(TOKEN_CACHE_COLUMNS))


__all__ = [
    "CACHE_INFO_NAME",
    "build_clip_dataset",
    "collate_token_rows",
    "collate_training_clips",
    "encode_clip_batch",
    "load_token_cache",
    "read_cache_info",
    "write_cache_info",
]
