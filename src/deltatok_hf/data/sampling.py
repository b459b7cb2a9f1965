"""Clip sampling and clip-consistent augmentation, following the DeltaTok/DeltaWorld training recipe.

Training clips (paper, Sec. 4 "Implementation details"; official `datasets/base.py`): a clip of
`num_frames` frames is drawn with random gaps between consecutive target times, uniform in
[1/25 s, 1/3 s]; each target time is mapped to the nearest real frame; the frame timestamps,
relative to the first frame, are given to the model. One random resized crop (area scale
[0.6, 1], aspect ratio jitter 4/3) and one horizontal flip decision are shared by all frames of a
clip. Evaluation resizes the short side to the model resolution and, for the benchmark, splits
wide frames into square crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch
import torch.nn.functional as F


class VideoTooShortError(ValueError):
    """A video has too few frames, or too short a duration, for the requested clip."""


def _make_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("Pass either `generator` or `seed`, not both.")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator, got {type(generator).__name__}.")
    if seed is not None:
        return torch.Generator().manual_seed(int(seed))
    return generator


def _as_size(size: Union[int, Sequence[int]], name: str = "size") -> tuple[int, int]:
    """`int` -> `(size, size)`; `(height, width)` -> itself; positive integers only."""
    if isinstance(size, int) and not isinstance(size, bool):
        height = width = size
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(value, int) for value in size):
        height, width = size
    else:
        raise TypeError(f"`{name}` must be an int or a (height, width) pair of ints, got {size!r}.")
    if height < 1 or width < 1:
        raise ValueError(f"`{name}` must be positive, got {size!r}.")
    return int(height), int(width)


def _check_frames(frames: torch.Tensor) -> None:
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"`frames` must be a torch.Tensor, got {type(frames).__name__}.")
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ValueError(
            f"`frames` must have shape (..., 3, height, width) (channels first), got {tuple(frames.shape)}."
        )


# ----------------------------------------------------------------------------------------------
# Clip sampling
# ----------------------------------------------------------------------------------------------


@dataclass
class SampledClip:
    """
    The frames picked for one clip.

    Args:
        indices (`torch.LongTensor` of shape `(num_frames,)`):
            Indices into the video's frame list, strictly increasing when the video has enough
            frames.
        frame_times (`torch.Tensor` of shape `(num_frames,)`, `float64`):
            Absolute times of the picked frames (seconds from the stream start), to pass to
            `read_frames_at`.
        timestamps (`torch.Tensor` of shape `(num_frames,)`, `float32`):
            Times relative to the first picked frame (starts at 0), the model's input.
        target_times (`torch.Tensor` of shape `(num_frames,)`, `float64`):
            The drawn target times before snapping to real frames.
    """

    indices: torch.Tensor
    frame_times: torch.Tensor
    timestamps: torch.Tensor
    target_times: torch.Tensor


def _strictly_increasing(indices: list[int], num_available: int) -> list[int]:
    """Move repeated indices apart by the smallest amounts so that they strictly increase.

    Nearest-frame snapping of increasing times gives non-decreasing indices; a repeat happens
    when two target times fall nearest the same frame (gaps shorter than the frame interval).
    A forward pass pushes repeats later, a backward pass pulls back those pushed past the end.
    """
    result = list(indices)
    for position in range(1, len(result)):
        result[position] = max(result[position], result[position - 1] + 1)
    last_allowed = num_available - 1
    for position in range(len(result) - 1, -1, -1):
        result[position] = min(result[position], last_allowed)
        last_allowed = result[position] - 1
    return result


class ClipSampler:
    """
    Draws the frames of a training clip the way DeltaTok/DeltaWorld were trained.

    `num_frames - 1` gaps are drawn uniformly in `[min_gap, max_gap]` seconds, then a start time
    uniformly such that the whole clip fits in the video; each target time is snapped to the
    nearest real frame. The random draws happen in the official order (gaps, then start), so a
    generator in the same state gives the official targets.

    Note: where the official code lets a clip run past the end of a short video (the overflowing
    targets then repeat the last frame) and keeps repeated frames, we (a) shrink the upper gap
    bound so the clip fits and (b) move repeated frames apart to distinct neighbours. Both only
    change clips that the official sampler would have made with repeated frames.

    Args:
        num_frames (`int`): frames per clip (8 in the paper: 4 context + up to 4 targets).
        min_gap (`float`, *optional*, defaults to 1/25): smallest gap between target times, seconds.
        max_gap (`float`, *optional*, defaults to 1/3): largest gap between target times, seconds.
        generator (`torch.Generator`, *optional*): source of randomness; the default RNG if unset.
        seed (`int`, *optional*): shortcut for `generator=torch.Generator().manual_seed(seed)`.

    Example:

    ```python
    >>> sampler = ClipSampler(num_frames=8, seed=0)
    >>> clip = sampler(read_timestamps("video.mp4"))
    >>> clip.indices, clip.timestamps  # (8,) frame indices, (8,) float32 seconds from 0
    ```
    """

    def __init__(
        self,
        num_frames: int,
        min_gap: float = 1 / 25,
        max_gap: float = 1 / 3,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1:
            raise ValueError(f"`num_frames` must be a positive integer, got {num_frames!r}.")
        if not (min_gap >= 0 and max_gap >= min_gap and math.isfinite(max_gap)):
            raise ValueError(f"Need 0 <= min_gap <= max_gap < inf, got min_gap={min_gap}, max_gap={max_gap}.")
        self.num_frames = num_frames
        self.min_gap = float(min_gap)
        self.max_gap = float(max_gap)
        self.generator = _make_generator(generator, seed)

    def __repr__(self) -> str:
        return f"ClipSampler(num_frames={self.num_frames}, min_gap={self.min_gap:.4g}, max_gap={self.max_gap:.4g})"

    def min_duration(self) -> float:
        """Shortest video span (first to last frame, seconds) that can hold a clip."""
        return (self.num_frames - 1) * self.min_gap

    def __call__(
        self, timestamps: Union[torch.Tensor, Sequence[float]], generator: torch.Generator | None = None
    ) -> SampledClip:
        """
        Sample one clip.

        Args:
            timestamps (`torch.Tensor` of shape `(num_video_frames,)` or sequence of `float`):
                Sorted times of all frames of the video (e.g. from `read_timestamps`).
            generator (`torch.Generator`, *optional*): overrides the sampler's generator.

        Raises:
            `VideoTooShortError` (a `ValueError`): fewer than `num_frames` frames, or a span
            shorter than `(num_frames - 1) * min_gap`.
        """
        generator = generator if generator is not None else self.generator
        timestamps = torch.as_tensor(timestamps, dtype=torch.float64).flatten()
        num_available = timestamps.numel()
        if num_available < self.num_frames:
            raise VideoTooShortError(
                f"The video has {num_available} frames but a clip needs num_frames={self.num_frames}."
            )
        first_time, last_time = float(timestamps[0]), float(timestamps[-1])
        span_available = last_time - first_time
        # Half a millisecond of slack absorbs pts rounding (e.g. 7 frames at 25 fps = 0.28 s).
        if span_available + 5e-4 < self.min_duration():
            raise VideoTooShortError(
                f"The video spans {span_available:.3f} s but a clip of {self.num_frames} frames with "
                f"gaps >= {self.min_gap:.4g} s needs {self.min_duration():.3f} s."
            )
        max_gap = self.max_gap
        if self.num_frames > 1:
            max_gap = max(self.min_gap, min(self.max_gap, span_available / (self.num_frames - 1)))

        # Official RNG order: the gaps first, then the start time.
        gaps = torch.rand(self.num_frames - 1, generator=generator, dtype=torch.float64)
        gaps = gaps * (max_gap - self.min_gap) + self.min_gap  # (num_frames - 1,)
        offsets = torch.cat([torch.zeros(1, dtype=torch.float64), gaps.cumsum(0)])  # (num_frames,)
        latest_start = max(0.0, span_available - float(offsets[-1]))
        start = float(torch.rand(1, generator=generator, dtype=torch.float64)) * latest_start
        target_times = first_time + start + offsets  # (num_frames,)

        distances = (timestamps[None, :] - target_times[:, None]).abs()  # (num_frames, num_video_frames)
        nearest = distances.argmin(dim=1).tolist()
        indices = torch.tensor(_strictly_increasing(nearest, num_available), dtype=torch.long)
        frame_times = timestamps[indices]
        return SampledClip(
            indices=indices,
            frame_times=frame_times,
            timestamps=(frame_times - frame_times[0]).to(torch.float32),
            target_times=target_times,
        )


# ----------------------------------------------------------------------------------------------
# Deterministic geometry
# ----------------------------------------------------------------------------------------------


def resize_frames(frames: torch.Tensor, size: Union[int, Sequence[int]], antialias: bool = True) -> torch.Tensor:
    """
    Resize frames to `size` with bilinear interpolation (half-pixel centres).

    Args:
        frames (`torch.Tensor` of shape `(..., 3, height, width)`): uint8 or floating point.
        size (`int` or `(height, width)`): output size.
        antialias (`bool`, defaults to `True`): low-pass filter when shrinking (right for training crops). The official
            evaluation resizes with OpenCV's bilinear `INTER_LINEAR`, which does not; pass `False` to match it.

    Returns:
        `torch.Tensor` of shape `(..., 3, out_height, out_width)`, same dtype as `frames`
        (uint8 values are rounded and clamped).
    """
    _check_frames(frames)
    out_height, out_width = _as_size(size)
    leading, (height, width) = frames.shape[:-3], frames.shape[-2:]
    if (height, width) == (out_height, out_width):
        return frames.clone()
    flat = frames.reshape(-1, 3, height, width)  # (batch, 3, height, width)
    resized = F.interpolate(
        flat.float(), size=(out_height, out_width), mode="bilinear", antialias=antialias, align_corners=False
    )  # (batch, 3, out_height, out_width)
    if frames.dtype == torch.uint8:
        resized = resized.round_().clamp_(0, 255).to(torch.uint8)
    else:
        resized = resized.to(frames.dtype)
    return resized.reshape(*leading, 3, out_height, out_width)


def short_side_size(height: int, width: int, size: int, max_aspect_ratio: float | None = None) -> tuple[int, int]:
    """
    Output `(height, width)` when the short side of a `height x width` frame becomes `size`; with `max_aspect_ratio`
    the long side is capped at `int(size * max_aspect_ratio)` (the official evaluation's `max_aspect_ratio=2`).
    """
    scale = size / min(height, width)
    long_cap = int(size * max_aspect_ratio) if max_aspect_ratio is not None else None
    if height <= width:
        long_side = max(size, int(round(width * scale)))
        return size, min(long_side, long_cap) if long_cap else long_side
    long_side = max(size, int(round(height * scale)))
    return (min(long_side, long_cap) if long_cap else long_side), size


def resize_short_side(
    frames: torch.Tensor, size: int, antialias: bool = True, max_aspect_ratio: float | None = None
) -> torch.Tensor:
    """
    Resize so the shorter side is `size` pixels, keeping the aspect ratio (long side rounded, optionally capped at
    `max_aspect_ratio * size`).

    Args:
        frames (`torch.Tensor` of shape `(..., 3, height, width)`).
        size (`int`): length of the short side after resizing.
    """
    _check_frames(frames)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"`size` must be a positive integer, got {size!r}.")
    height, width = frames.shape[-2:]
    return resize_frames(frames, short_side_size(height, width, size, max_aspect_ratio), antialias=antialias)


def center_crop(frames: torch.Tensor, size: Union[int, Sequence[int]]) -> torch.Tensor:
    """
    Cut the central `size` region of every frame.

    Raises:
        `ValueError`: the frames are smaller than `size`.
    """
    _check_frames(frames)
    out_height, out_width = _as_size(size)
    height, width = frames.shape[-2:]
    if out_height > height or out_width > width:
        raise ValueError(f"Cannot center-crop {(out_height, out_width)} from frames of size {(height, width)}.")
    top = (height - out_height) // 2
    left = (width - out_width) // 2
    return frames[..., top : top + out_height, left : left + out_width]


def square_crop_boxes(height: int, width: int) -> torch.Tensor:
    """
    Boxes of the square crops of the benchmark protocol (official `split_into_square_crops`): the frame itself when it
    is square, else two squares of side `min(height, width)` flush with the two ends of the long side (they overlap
    when the aspect ratio is below 2; the evaluation resize caps it at 2).

    Returns:
        `torch.LongTensor` of shape `(num_crops, 4)`: `(top, left, bottom, right)` in pixels, bottom/right exclusive.
    """
    side = min(height, width)
    if height == width:
        boxes = [(0, 0, side, side)]
    elif width > height:
        boxes = [(0, 0, side, side), (0, width - side, side, width)]
    else:
        boxes = [(0, 0, side, side), (height - side, 0, height, side)]
    return torch.tensor(boxes, dtype=torch.long)


def split_square_crops(
    frames: torch.Tensor, size: int | None = None, antialias: bool = False, max_aspect_ratio: float | None = 2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    The benchmark protocol: resize the short side to `size` (bilinear without antialiasing and the long side capped at
    twice the short side, as the official evaluation), then cut the two square crops at the ends of the long side.

    Args:
        frames (`torch.Tensor` of shape `(..., 3, height, width)`).
        size (`int`, *optional*): short side after resizing; no resize when `None`.

    Returns:
        `(crops, boxes)`: `crops` of shape `(num_crops, ..., 3, size, size)` and `boxes` of shape
        `(num_crops, 4)` as `(top, left, bottom, right)` in the resized frame's pixels.
    """
    _check_frames(frames)
    if size is not None:
        frames = resize_short_side(frames, size, antialias=antialias, max_aspect_ratio=max_aspect_ratio)
    height, width = frames.shape[-2:]
    boxes = square_crop_boxes(height, width)
    crops = torch.stack([frames[..., top:bottom, left:right] for top, left, bottom, right in boxes.tolist()])
    return crops, boxes


# ----------------------------------------------------------------------------------------------
# Random augmentation
# ----------------------------------------------------------------------------------------------


class RandomResizedCropVideo:
    """
    A random resized crop and horizontal flip shared by all frames of a clip.

    The crop box is drawn like torchvision's `RandomResizedCrop` (area fraction uniform in
    `scale`, log-uniform aspect ratio in `ratio`, up to 10 tries, then a central crop with the
    ratio clamped), cut from every frame, resized with bilinear antialiased interpolation, and
    the whole clip is flipped left-right with probability `horizontal_flip`.

    Args:
        size (`int` or `(height, width)`): output size.
        scale (`(float, float)`, *optional*, defaults to `(0.6, 1.0)`): crop area fraction range.
        ratio (`(float, float)`, *optional*): crop width/height range. Defaults to the output's
            aspect ratio divided and multiplied by 4/3, i.e. `(3/4, 4/3)` for square outputs, as
            in the official training (`ratio_jitter=4/3`).
        horizontal_flip (`float` or `bool`, *optional*, defaults to 0.5): flip probability
            (`True` means 0.5, `False` means 0).
        generator (`torch.Generator`, *optional*) / seed (`int`, *optional*): randomness.

    Inputs: `frames` uint8 (or float) of shape `(num_frames, 3, height, width)`.
    Output: same dtype, shape `(num_frames, 3, out_height, out_width)`.
    """

    def __init__(
        self,
        size: Union[int, Sequence[int]],
        scale: tuple[float, float] = (0.6, 1.0),
        ratio: tuple[float, float] | None = None,
        horizontal_flip: Union[float, bool] = 0.5,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        self.size = _as_size(size)
        if not (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"`scale` must be (low, high) with 0 < low <= high <= 1, got {scale!r}.")
        if ratio is None:
            aspect = self.size[1] / self.size[0]
            ratio = (aspect * 3 / 4, aspect * 4 / 3)
        if not (len(ratio) == 2 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"`ratio` must be (low, high) with 0 < low <= high, got {ratio!r}.")
        if isinstance(horizontal_flip, bool):
            horizontal_flip = 0.5 if horizontal_flip else 0.0
        if not 0.0 <= float(horizontal_flip) <= 1.0:
            raise ValueError(f"`horizontal_flip` must be a bool or a probability in [0, 1], got {horizontal_flip!r}.")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.horizontal_flip = float(horizontal_flip)
        self.generator = _make_generator(generator, seed)

    def __repr__(self) -> str:
        return (
            f"RandomResizedCropVideo(size={self.size}, scale={self.scale}, "
            f"ratio=({self.ratio[0]:.4g}, {self.ratio[1]:.4g}), horizontal_flip={self.horizontal_flip})"
        )

    def get_params(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int, bool]:
        """Draw `(top, left, crop_height, crop_width, flip)` for a `height x width` clip."""
        generator = generator if generator is not None else self.generator
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        box = None
        for _ in range(10):
            target_area = area * float(torch.empty(1).uniform_(self.scale[0], self.scale[1], generator=generator))
            aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)))
            crop_width = int(round(math.sqrt(target_area * aspect)))
            crop_height = int(round(math.sqrt(target_area / aspect)))
            if 0 < crop_width <= width and 0 < crop_height <= height:
                top = int(torch.randint(0, height - crop_height + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - crop_width + 1, (1,), generator=generator))
                box = (top, left, crop_height, crop_width)
                break
        if box is None:  # central crop with the aspect ratio clamped into `ratio`
            frame_ratio = width / height
            if frame_ratio < self.ratio[0]:
                crop_width, crop_height = width, int(round(width / self.ratio[0]))
            elif frame_ratio > self.ratio[1]:
                crop_height, crop_width = height, int(round(height * self.ratio[1]))
            else:
                crop_height, crop_width = height, width
            box = ((height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width)
        flip = bool(float(torch.rand(1, generator=generator)) < self.horizontal_flip)
        return (*box, flip)

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_frames(frames)
        if frames.ndim != 4:
            raise ValueError(f"`frames` must have shape (num_frames, 3, height, width), got {tuple(frames.shape)}.")
        height, width = frames.shape[-2:]
        top, left, crop_height, crop_width, flip = self.get_params(height, width, generator)
        cropped = frames[:, :, top : top + crop_height, left : left + crop_width]  # (num_frames, 3, crop_h, crop_w)
        resized = resize_frames(cropped, self.size)  # (num_frames, 3, out_height, out_width)
        if flip:
            resized = resized.flip(-1)
        return resized
