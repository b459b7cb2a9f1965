"""Training pieces of the bundled demo pipeline (`examples/train_demo_model.py`) beyond the training package's loops."""

from __future__ import annotations

from typing import Sequence

import torch


def fork_world_pixel_targets(items: Sequence[dict], object_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """
    RGB targets and per-pixel loss weights of every frame of `ForkWorld` items, for an RGB decoder: first every item's
    clip frames (`items[i]["frames"]`, item by item), then every branch's future frames (`all_futures`, item by item,
    branch by branch) — the order of `clips.flatten(0, 1)` then `futures.flatten(0, 2)` for features stacked the same way.

    The disc covers ~3 % of a frame and is all that a mode reader looks at, so the pixels where a frame differs from
    its item's background weigh `object_weight`, the others 1 (a plain loss spends a short run on the texture).

    Returns:
        `(pixels, weights)`: `uint8` `(num_frames, 3, H, W)` and `float32` `(num_frames, 1, H, W)`.
    """
    if not object_weight >= 1:
        raise ValueError(f"object_weight must be >= 1 (the weight of the disc's pixels), got {object_weight!r}.")
    clip_frames = torch.stack([item["frames"] for item in items])  # (items, T, 3, H, W)
    branch_frames = torch.stack([item["all_futures"] for item in items])  # (items, K, F, 3, H, W)
    backgrounds = torch.stack([item["background"] for item in items])  # (items, 3, H, W)
    pixels = torch.cat((clip_frames.flatten(0, 1), branch_frames.flatten(0, 2)))  # (num_frames, 3, H, W)
    per_item = torch.tensor([clip_frames.shape[1], branch_frames.shape[1] * branch_frames.shape[2]])
    frame_backgrounds = torch.cat(
        [backgrounds.repeat_interleave(int(count), dim=0) for count in per_item]
    )  # (num_frames, 3, H, W), matching `pixels`
    on_object = (pixels != frame_backgrounds).any(dim=1, keepdim=True).float()  # (num_frames, 1, H, W)
    return pixels, 1 + (object_weight - 1) * on_object


__all__ = ["fork_world_pixel_targets"]
