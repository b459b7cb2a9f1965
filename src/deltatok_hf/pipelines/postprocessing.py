"""Step 4-5 of [`DeltaWorldPipeline`]: task heads and the RGB decoder on decoded features, per-view outputs, and the
output types. Every function takes tensors with a leading `num_views` axis (the square crops of one clip)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .pipeline_output import DeltaWorldPipelineOutput


# Component name -> the key of its maps in the outputs.
HEAD_COMPONENTS = {"segmentation_head": "segmentation", "depth_head": "depth"}
# Head maps of these features, stored under these output fields.
HEAD_MAP_SOURCES = {
    "task_maps": "future_features",
    "mean_task_maps": "mean_future_features",
    "context_task_maps": "context_features",
    "ground_truth_task_maps": "ground_truth_features",
}
PER_VIEW_FIELDS = (
    "future_features", "mean_future_features", "future_delta_tokens", "context_delta_tokens", "context_features",
    "noise", "candidate_indices", "candidate_weights", "ground_truth_features", "future_frames", "mean_future_frames",
) + tuple(HEAD_MAP_SOURCES)  # fmt: skip


def to_uint8_frames(frames: torch.Tensor) -> torch.Tensor:
    """`(..., 3, H, W)` 0..255 -> `(..., H, W, 3)` uint8."""
    return frames.movedim(-3, -1).float().round().clamp(0, 255).to(torch.uint8)


def sample_mean(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """
    The mean forecast: features `(V, S, ...)` averaged over the samples (axis 1). With `weights` `(V, S)` (the
    `candidate_weights` of select-then-decode: the share of the drawn futures each kept one stands for) the weighted
    mean, the weights normalised over the samples given, so that it estimates the mean of all the drawn futures rather
    than giving a rare future as much say as a common one.
    """
    if weights is None:
        return features.mean(1)
    weights = weights.to(features.dtype)
    weights = (weights / weights.sum(1, keepdim=True)).reshape(*weights.shape, *[1] * (features.ndim - 2))
    return (features * weights).sum(1)


def _run_chunked(module: nn.Module, features: torch.Tensor, read: Callable, device) -> torch.Tensor:
    """`read(module, chunk)` over `(..., N, D)` features in chunks of 8 maps (full-resolution maps never pile up)."""
    flat = features.reshape(-1, *features.shape[-2:])
    dtype = next(module.parameters()).dtype
    maps = [read(module, chunk.to(device, dtype)).float().cpu() for chunk in flat.split(8)]
    return torch.cat(maps).reshape(*features.shape[:-2], *maps[0].shape[1:])


def apply_heads_and_decoder(
    result: dict[str, torch.Tensor | None],
    heads: dict[str, nn.Module | None],
    rgb_decoder: nn.Module | None,
    grid_size: tuple[int, int],
    frame_size: tuple[int, int],
    device,
) -> dict[str, Any]:
    """
    Task maps of the samples, the mean, the context and the truth (`task_maps` etc.: `{name: maps}`), and RGB frames
    of the samples and the mean (`future_frames` `(V, S, F, H, W, 3)`, `mean_future_frames` `(V, F, H, W, 3)` uint8).
    """
    extra: dict[str, Any] = {}
    for component, name in HEAD_COMPONENTS.items():
        head = heads.get(component)
        if head is None:
            continue

        def read(module, chunk):
            out = module(chunk, grid_size=grid_size, output_size=frame_size)
            if getattr(out, "logits", None) is not None:
                return out.logits.argmax(1)
            if getattr(out, "predicted_depth", None) is not None:
                return out.predicted_depth[:, 0]
            raise TypeError(f"Head {type(module).__name__} returned neither `logits` nor `predicted_depth`.")

        for key, source in HEAD_MAP_SOURCES.items():
            if result.get(source) is not None:
                maps = _run_chunked(head, result[source], read, device)
                extra.setdefault(key, {})[name] = maps.long() if name == "segmentation" else maps
    if rgb_decoder is not None:
        pixels = lambda module, chunk: module(chunk, grid_size=grid_size).pixel_values * 255  # noqa: E731  (0..1 -> 0..255)
        extra["future_frames"] = to_uint8_frames(_run_chunked(rgb_decoder, result["future_features"], pixels, device))
        extra["mean_future_frames"] = to_uint8_frames(_run_chunked(rgb_decoder, result["mean_future_features"], pixels, device))
    return extra


def view_fields(result: dict[str, Any], index: int) -> dict[str, Any]:
    """The per-view output fields of view `index` (dicts of maps are indexed per head)."""

    def pick(value):
        if value is None:
            return None
        return {key: maps[index] for key, maps in value.items()} if isinstance(value, dict) else value[index]

    return {key: pick(result.get(key)) for key in PER_VIEW_FIELDS}


def finish_output(output: DeltaWorldPipelineOutput, output_type: str, max_samples_shown: int) -> DeltaWorldPipelineOutput:
    """`"pil"`: add the labelled picture and turn RGB frames into PIL images; `"np"`: numpy arrays; else unchanged."""
    if output_type == "pil":
        from PIL import Image  # noqa: PLC0415

        from ..visualization import _grid_from_output  # noqa: PLC0415

        output.image = _grid_from_output(output, max_samples_shown=max_samples_shown)
        if output.future_frames is not None:
            output.future_frames = [[Image.fromarray(frame.numpy()) for frame in sample] for sample in output.future_frames]
            output.mean_future_frames = [Image.fromarray(frame.numpy()) for frame in output.mean_future_frames]
    elif output_type == "np":
        output = output.to_numpy()
    return output


__all__ = ["HEAD_COMPONENTS", "apply_heads_and_decoder", "finish_output", "to_uint8_frames", "view_fields"]
