"""`DeltaWorldVideoProcessor`: the one place that turns what a user has into what a world model sees.

It owns, model-free and on the CPU:
- clip coercion: a video path, a list of PIL images, a `(T, H, W, 3)` array, a `(T, 3, H, W)` tensor (values 0..255);
- value checks (dtype, range, NaN/inf, sizes);
- context selection: the last `context_frames` frames `context_interval` seconds apart, or from a start time;
- timestamps: from `fps`, explicit times, or the file's own;
- future times (`num_future_frames` + spacing, or explicit `future_timestamps`) and the real future frames;
- resize modes, with one crop-box representation ([`SquareCropLayout`]) for the square crops of the benchmark protocol;
- label alignment for evaluation (labels split into the crops' halves, maps resized back onto them).

Its settings are a diffusers `ConfigMixin` config, so a pipeline saves them (in `model_index.json`) and a script can
save or load them on their own (`video_processor_config.json`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from PIL import Image

from ..metrics.functional import IGNORE_INDEX
from .sampling import resize_frames, short_side_size, split_square_crops, square_crop_boxes


RESIZE_MODES = ("square_crops", "resize_square", "none")
# The official evaluation caps the long side at this multiple of the short side after resizing (`max_aspect_ratio`).
MAX_ASPECT_RATIO = 2.0


# ----------------------------------------------------------------------------------------------
# Square crops: the one crop-box representation (official `split_into_square_crops` / `upsample_to_labels`)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SquareCropLayout:
    """
    How frames of `frame_size` were cut into square views.

    Args:
        frame_size (`tuple[int, int]`): `(height, width)` of the (resized) frame the crops come from.
        boxes (`tuple[tuple[int, int, int, int], ...]`): `(top, left, height, width)` of every crop in that frame, in
            view order; one box covering the frame when it is square or was not cropped.
    """

    frame_size: tuple[int, int]
    boxes: tuple[tuple[int, int, int, int], ...]

    @classmethod
    def for_frame(cls, height: int, width: int) -> "SquareCropLayout":
        """The benchmark protocol's crops of a `height x width` frame: itself when square, else two corner squares."""
        boxes = tuple((top, left, bottom - top, right - left) for top, left, bottom, right in square_crop_boxes(height, width).tolist())
        return cls(frame_size=(height, width), boxes=boxes)

    @property
    def num_crops(self) -> int:
        return len(self.boxes)

    @property
    def is_wide(self) -> bool | None:
        """`True` for crops along the width, `False` along the height, `None` for a single view."""
        height, width = self.frame_size
        return None if self.num_crops == 1 else width > height

    @property
    def overlap(self) -> bool:
        """Whether the two squares overlap (aspect ratio below 2)."""
        height, width = self.frame_size
        return self.num_crops > 1 and max(height, width) / min(height, width) < 2.0


def split_into_square_crops(
    frames: torch.Tensor, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, SquareCropLayout]:
    """
    Split rectangular frames into two corner squares and their labels into two halves (official protocol).

    Args:
        frames: `(batch_size, num_frames, 3, height, width)`.
        labels: `(batch_size, num_frames, label_height, label_width)`, or None.

    Returns:
        frames `(num_crops * batch_size, num_frames, 3, side, side)`: first all first crops (top / left), then all
        second crops; labels split at the midpoint into non-overlapping halves in the same order (so no pixel is scored
        twice), the first half padded by one ignored row / column when the size is odd; and the layout.
    """
    height, width = frames.shape[-2:]
    layout = SquareCropLayout.for_frame(height, width)
    if layout.num_crops == 1:
        return frames, labels, layout
    crops = [frames[..., top : top + side, left : left + side] for top, left, side, _ in layout.boxes]
    frames = torch.cat(crops, dim=0)
    if labels is not None:
        labels = torch.cat(split_labels(labels, layout), dim=0)
    return frames, labels, layout


def split_labels(labels: torch.Tensor, layout: SquareCropLayout) -> list[torch.Tensor]:
    """Labels `(..., label_height, label_width)` -> one non-overlapping half per crop (the first padded by one ignored
    row / column when the size is odd: 255 for integer class ids, 0 for float depth)."""
    if layout.num_crops == 1:
        return [labels]
    label_height, label_width = labels.shape[-2:]
    middle = label_width // 2 if layout.is_wide else label_height // 2
    first_half = labels[..., :middle] if layout.is_wide else labels[..., :middle, :]
    second_half = labels[..., middle:] if layout.is_wide else labels[..., middle:, :]
    if first_half.shape != second_half.shape:
        padding = [0, 1, 0, 0] if layout.is_wide else [0, 0, 0, 1]
        fill = 0 if labels.is_floating_point() else IGNORE_INDEX
        first_half = F.pad(first_half, padding, value=fill)
    return [first_half, second_half]


def align_to_labels(maps: torch.Tensor, label_size: tuple[int, int], layout: SquareCropLayout) -> torch.Tensor:
    """
    Resize head outputs `(num_crops * batch, channels, h, w)` onto their label halves (official `upsample_to_labels`).

    Without overlap every crop is resized straight to its label half. With overlapping crops each is resized to a square
    of the half's long side and the part that the half covers is kept: the first columns (rows) of the first crop, the
    last ones of the second.
    """
    label_height, label_width = label_size
    if not layout.overlap:
        return F.interpolate(maps, size=(label_height, label_width), mode="bilinear", align_corners=False)
    side = max(label_height, label_width)
    upsampled = F.interpolate(maps, size=(side, side), mode="bilinear", align_corners=False)
    half = maps.shape[0] // layout.num_crops
    first = upsampled[:half, :, :label_height, :label_width]
    if layout.is_wide:
        second = upsampled[half:, :, :label_height, side - label_width :]
    else:
        second = upsampled[half:, :, side - label_height :, :label_width]
    return torch.cat([first, second], dim=0)


def merge_square_crops(values: torch.Tensor, layout: SquareCropLayout) -> torch.Tensor:
    """Sum per-crop statistics `(num_crops * batch, ...)` back to one row per window `(batch, ...)`."""
    return values.unflatten(0, (layout.num_crops, -1)).sum(dim=0)


# ----------------------------------------------------------------------------------------------
# Clip coercion and checks
# ----------------------------------------------------------------------------------------------


def is_single_frame(item: Any) -> bool:
    if isinstance(item, Image.Image):
        return True
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 3


def is_clip_batch(inputs: Any) -> bool:
    """A list of clips (paths, 4-D arrays / tensors, or lists of frames), as opposed to one clip given as a frame list."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        return False
    return not is_single_frame(inputs[0])


def check_value_range(frames: torch.Tensor, description: str = "Frames") -> None:
    """RGB frames must be uint8, or floats in 0..255 (a 0..1 float clip is refused, not rescaled)."""
    if frames.dtype == torch.uint8:
        return
    if not frames.is_floating_point():
        raise ValueError(f"{description} must be uint8 or float (0..255), got dtype {frames.dtype}.")
    if frames.numel() == 0:
        return
    low, high = float(frames.min()), float(frames.max())
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError(f"{description} contain NaN or infinite values.")
    if low < 0 or high > 255:
        raise ValueError(f"{description} must hold RGB values in 0..255, got values in [{low:.3g}, {high:.3g}].")
    if 0 < high <= 1.0:
        raise ValueError(
            f"{description} look like 0..1 floats (maximum {high:.3g}); the model expects RGB values in 0..255 "
            "(multiply by 255)."
        )


def _frames_from_list(frames: Sequence[Any]) -> torch.Tensor:
    """A list of PIL images or `(H, W, 3)` arrays / `(3, H, W)` tensors -> `(T, H, W, 3)`."""
    converted = []
    for index, frame in enumerate(frames):
        if isinstance(frame, Image.Image):
            if frame.mode != "RGB":
                raise ValueError(
                    f"Frame {index} is a PIL image in mode {frame.mode!r}; RGB frames are expected "
                    "(convert with `image.convert('RGB')`)."
                )
            converted.append(torch.from_numpy(np.asarray(frame).copy()))
        elif isinstance(frame, np.ndarray):
            if frame.ndim != 3 or frame.shape[-1] != 3:
                raise ValueError(f"Frame {index} must be an RGB array of shape (height, width, 3), got {frame.shape}.")
            converted.append(_tensor_from_numpy(frame, f"Frame {index}"))
        elif isinstance(frame, torch.Tensor):
            if frame.ndim != 3 or frame.shape[0] != 3:
                raise ValueError(
                    f"Frame {index} must be an RGB tensor of shape (3, height, width), got {tuple(frame.shape)}."
                )
            converted.append(frame.detach().cpu().permute(1, 2, 0))
        else:
            raise TypeError(f"Frame {index} must be a PIL image, a numpy array or a tensor, got {type(frame).__name__}.")
    sizes = sorted({tuple(frame.shape[:2]) for frame in converted})
    if len(sizes) > 1:
        raise ValueError(f"All frames of a clip must have the same size, got (height, width) sizes {sizes}.")
    dtypes = sorted({str(frame.dtype) for frame in converted})
    if len(dtypes) > 1:
        raise ValueError(f"All frames of a clip must have the same dtype, got {dtypes}.")
    return torch.stack(converted) if converted else torch.zeros(0, 0, 0, 3, dtype=torch.uint8)


def _tensor_from_numpy(array: np.ndarray, description: str) -> torch.Tensor:
    try:
        return torch.from_numpy(np.ascontiguousarray(array))
    except TypeError as error:  # object / string / complex arrays
        raise TypeError(f"{description} must hold numbers (uint8 or float 0..255), got numpy dtype {array.dtype}.") from error


def as_time_vector(name: str, values: Any) -> torch.Tensor:
    """A strictly increasing, finite `(n,)` float64 vector of seconds, or a `ValueError` naming `name`."""
    try:
        vector = torch.as_tensor(values, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{name} must be a sequence of numbers (seconds), got {values!r}.") from error
    if not torch.isfinite(vector).all():
        raise ValueError(f"{name} must be finite, got {vector.tolist()}.")
    if vector.numel() > 1 and not (vector[1:] > vector[:-1]).all():
        raise ValueError(f"{name} must be strictly increasing, got {vector.tolist()}.")
    return vector


def check_positive_number(name: str, value: Any) -> None:
    """A `ValueError` naming `name` unless `value` is a finite number > 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")


def check_positive_integer(name: str, value: Any) -> None:
    """A `ValueError` naming `name` unless `value` is an integer >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


# ----------------------------------------------------------------------------------------------
# The processor
# ----------------------------------------------------------------------------------------------


@dataclass
class PreparedClip:
    """
    One clip, ready for a world model.

    Args:
        views (`torch.Tensor` of shape `(num_views, num_context_frames, 3, height, width)`): the context frames as the
            model sees them (uint8, or float 0..255 when given as floats); one view per square crop.
        context_timestamps (`torch.DoubleTensor` of shape `(num_context_frames,)`): seconds, on the clip's clock.
        future_timestamps (`torch.DoubleTensor` of shape `(num_future_frames,)`): seconds, same clock, after the context.
        layout ([`SquareCropLayout`]): the resized frame size and the box of every view in it.
        ground_truth_views (`torch.Tensor` of shape `(num_views, num_future_frames, 3, height, width)`, *optional*):
            the real future frames prepared like the context.
    """

    views: torch.Tensor
    context_timestamps: torch.Tensor
    future_timestamps: torch.Tensor
    layout: SquareCropLayout
    ground_truth_views: torch.Tensor | None = None

    @property
    def crop_boxes(self) -> list[tuple[int, int, int, int]] | None:
        """`(top, left, height, width)` per view, or `None` when the frame is a single view."""
        return list(self.layout.boxes) if self.layout.num_crops > 1 else None


class DeltaWorldVideoProcessor(ConfigMixin):
    r"""
    Clip coercion, context selection, timing and geometry for DeltaWorld forecasting (see the module docstring).

    Args:
        size (`int`, defaults to 256): frame side the model sees (a multiple of `patch_size`).
        resize_mode (`str`, defaults to `"square_crops"`): `"square_crops"` (short side to `size`, long side capped at
            twice it, one square per end of the long side: the benchmark protocol, bilinear without antialiasing),
            `"resize_square"` (stretch to `size x size`) or `"none"` (frames must be patch multiples).
        context_frames (`int`, defaults to 4): context frames read from a video file.
        context_interval (`float`, defaults to 0.2): seconds between them (the paper's evaluation protocol).
        patch_size (`int`, defaults to 16): the backbone's patch size (set from the model by the pipeline).
    """

    config_name = "video_processor_config.json"

    @register_to_config
    def __init__(
        self,
        size: int = 256,
        resize_mode: str = "square_crops",
        context_frames: int = 4,
        context_interval: float = 0.2,
        patch_size: int = 16,
    ):
        super().__init__()
        check_positive_integer("size", size)
        check_positive_integer("patch_size", patch_size)
        check_positive_integer("context_frames", context_frames)
        check_positive_number("context_interval", context_interval)
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}.")
        if resize_mode != "none" and size % patch_size:
            raise ValueError(f"size must be a multiple of the patch size {patch_size}, got {size}.")

    # ------------------------------------------------------------------ clips

    def load_clip(self, clip: Any) -> torch.Tensor:
        """Frames given in memory (PIL list, array, tensor) -> `(T, H, W, 3)` uint8 or float 0..255, checked."""
        if isinstance(clip, np.ndarray):
            if clip.ndim != 4 or clip.shape[-1] != 3:
                raise ValueError(
                    f"A numpy clip must have shape (num_frames, height, width, 3) with RGB channels last, got {clip.shape}."
                )
            frames = _tensor_from_numpy(clip, "A numpy clip")
        elif isinstance(clip, torch.Tensor):
            if clip.ndim != 4 or clip.shape[1] != 3:
                raise ValueError(
                    "A tensor clip must have shape (num_frames, 3, height, width) with RGB channels first, got "
                    f"{tuple(clip.shape)}."
                )
            frames = clip.detach().cpu().permute(0, 2, 3, 1)
        elif isinstance(clip, (list, tuple)):
            frames = _frames_from_list(clip)
        else:
            raise TypeError(
                "A clip must be a video path, a list of PIL images, a (num_frames, height, width, 3) numpy array or a "
                f"(num_frames, 3, height, width) tensor, got {type(clip).__name__}."
            )
        if frames.shape[0] < 1:
            raise ValueError("A clip needs at least 1 context frame, got 0 frames.")
        if frames.shape[1] < 1 or frames.shape[2] < 1:
            raise ValueError(f"Frames must be at least 1x1 pixels, got {tuple(frames.shape[1:3])} (height, width).")
        check_value_range(frames, "Frames")
        return frames

    def context_times_in_video(
        self,
        path: str | os.PathLike,
        context_frames: int | None = None,
        context_interval: float | None = None,
        start_time: float | None = None,
    ) -> list[float]:
        """
        The wanted context times of a video file: `context_frames` times `context_interval` s apart ending on its last
        frame, or starting at `start_time`. Raises when the video is too short.
        """
        from .video import read_timestamps  # noqa: PLC0415 (PyAV is only needed for files)

        num_frames = self.config.context_frames if context_frames is None else context_frames
        interval = self.config.context_interval if context_interval is None else context_interval
        times = read_timestamps(path)  # VideoDecodeError (a ValueError naming the file) when missing / corrupt / empty
        first, last = float(times[0]), float(times[-1])
        half_frame = float(torch.diff(times).median()) / 2 if times.numel() > 1 else 0.0
        if start_time is None:
            wanted = [last - interval * step for step in range(num_frames - 1, -1, -1)]
        else:
            if not np.isfinite(start_time) or start_time < 0:
                raise ValueError(f"start_time must be a number of seconds >= 0, got {start_time!r}.")
            wanted = [first + start_time + interval * step for step in range(num_frames)]
        if wanted[0] < first - half_frame or wanted[-1] > last + half_frame:
            raise ValueError(
                f"{path} lasts {last - first:.2f} s: too short for {num_frames} context frames {interval} s apart"
                + ("" if start_time is None else f" from {start_time} s")
                + "; pass fewer context frames, a smaller context interval or an earlier start."
            )
        return wanted

    def read_video_context(self, path: str | os.PathLike, wanted: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the frames nearest to `wanted` (seeking, not decoding everything) -> `(frames, timestamps)`."""
        from .video import read_frames_at  # noqa: PLC0415

        decoded = read_frames_at(path, list(wanted))
        timestamps = decoded.timestamps.to(torch.float64)
        if timestamps.numel() > 1 and not bool((timestamps[1:] > timestamps[:-1]).all()):
            raise ValueError(
                f"{path} has no distinct frames at the context times {list(wanted)} (the context interval is shorter "
                "than its frame spacing); pass a larger context interval."
            )
        return decoded.frames, timestamps

    def read_video_future(self, path: str | os.PathLike, future_timestamps: torch.Tensor) -> np.ndarray | None:
        """The real frames `(F, H, W, 3)` of a video file at the future times, or `None` when the video ends before
        the last one."""
        from .video import read_frames_at, read_timestamps  # noqa: PLC0415

        times = read_timestamps(path)
        half_frame = float(torch.diff(times).median()) / 2 if times.numel() > 1 else 0.0
        if float(future_timestamps[-1]) > float(times[-1]) + half_frame:
            return None
        return read_frames_at(path, future_timestamps.tolist()).frames.numpy()

    # ------------------------------------------------------------------ geometry

    def resize(self, frames: torch.Tensor) -> tuple[torch.Tensor, SquareCropLayout]:
        """
        Frames `(T, H, W, 3)` -> `(views (num_views, T, 3, h, w), layout)` following `resize_mode`.
        Never resizes to fit the patch size silently: `"none"` raises when the frames are not patch multiples.
        """
        size, patch_size, resize_mode = self.config.size, self.config.patch_size, self.config.resize_mode
        frames = frames.permute(0, 3, 1, 2)  # (T, 3, H, W)
        height, width = frames.shape[-2:]
        if resize_mode == "none":
            if height % patch_size or width % patch_size:
                raise ValueError(
                    f"resize_mode='none' needs frames whose height and width are multiples of the patch size "
                    f"{patch_size}, got {height}x{width}; use resize_mode='square_crops' or 'resize_square'."
                )
            return frames[None], SquareCropLayout(frame_size=(height, width), boxes=((0, 0, height, width),))
        if resize_mode == "resize_square":
            return resize_frames(frames, size, antialias=False)[None], SquareCropLayout.for_frame(size, size)
        # The benchmark protocol (official evaluation): bilinear without antialiasing, long side capped at twice the
        # short side, then the corner squares.
        views, _ = split_square_crops(frames, size, antialias=False, max_aspect_ratio=MAX_ASPECT_RATIO)
        return views, SquareCropLayout.for_frame(*short_side_size(height, width, size, MAX_ASPECT_RATIO))

    # ------------------------------------------------------------------ the whole preparation

    def preprocess(
        self,
        clip: Any,
        fps: float | None = None,
        timestamps: Sequence[float] | torch.Tensor | None = None,
        num_future_frames: int | None = None,
        frame_interval: float | None = None,
        future_timestamps: Sequence[float] | torch.Tensor | None = None,
        context_frames: int | None = None,
        context_interval: float | None = None,
        start_time: float | None = None,
        ground_truth_frames: Any = None,
        read_ground_truth: bool = False,
    ) -> PreparedClip:
        """
        Check and prepare one clip.

        Args:
            clip: a video path, a list of PIL images (RGB), a `(T, H, W, 3)` array or a `(T, 3, H, W)` tensor (0..255).
            fps / timestamps: times of in-memory frames (one is required; video files carry their own and refuse both).
            num_future_frames (defaults to 3) and frame_interval (seconds; defaults to the context's median spacing, or
                `1 / fps` for one frame), or future_timestamps (seconds, any spacing, after the last context time).
            context_frames: for a video file, how many frames to read (default: the processor's); for frames in memory,
                keep only the last N.
            context_interval / start_time: for a video file, seconds between context frames (default: the processor's)
                and the time of the first one (default: the context ends on the file's last frame).
            ground_truth_frames: the real future frames (a clip form, one per future time).
            read_ground_truth: for a video file, also read the real future frames when the video lasts long enough.
        """
        # 1. Check the options.
        if context_frames is not None:
            check_positive_integer("context_frames", context_frames)
        if fps is not None:
            check_positive_number("fps", fps)
        if context_interval is not None:
            check_positive_number("context_interval", context_interval)
        if frame_interval is not None:
            check_positive_number("frame_interval", frame_interval)
        if fps is not None and timestamps is not None:
            raise ValueError("Pass either fps or timestamps for the context frames, not both.")
        is_file = isinstance(clip, (str, os.PathLike))
        if is_file and (fps is not None or timestamps is not None):
            raise ValueError(
                "A video file carries its own timestamps; do not pass fps or timestamps with it (decode it "
                "yourself and pass the frames to use other times)."
            )
        if not is_file and (context_interval is not None or start_time is not None):
            raise ValueError(
                "context_interval and start_time select frames of a video file; with frames given, pass the ones to use."
            )
        if read_ground_truth and ground_truth_frames is not None:
            raise ValueError("Pass either ground_truth_frames or read_ground_truth=True, not both.")

        # 2. Frames and their times.
        if is_file:
            wanted = self.context_times_in_video(clip, context_frames, context_interval, start_time)
            frames, context_timestamps = self.read_video_context(clip, wanted)
            check_value_range(frames, "Frames")
        else:
            frames = self.load_clip(clip)
            if timestamps is not None:
                context_timestamps = as_time_vector("timestamps", timestamps)
                if context_timestamps.numel() != frames.shape[0]:
                    raise ValueError(f"timestamps has {context_timestamps.numel()} values for {frames.shape[0]} frames.")
            elif fps is not None:
                context_timestamps = torch.arange(frames.shape[0], dtype=torch.float64) / fps
            else:
                raise ValueError("The times of the frames are unknown: pass fps= (frames per second) or timestamps= (seconds).")
            if context_frames is not None:
                frames, context_timestamps = frames[-context_frames:], context_timestamps[-context_frames:]

        # 3. Future times.
        future = self.future_times(context_timestamps, num_future_frames, frame_interval, future_timestamps, fps)

        # 4. Resize / crop into the views the model sees, and the real future when asked for.
        views, layout = self.resize(frames)
        if read_ground_truth and is_file:
            ground_truth_frames = self.read_video_future(clip, future)
        truth_views = None
        if ground_truth_frames is not None:
            truth = self.load_clip(ground_truth_frames)
            if truth.shape[0] != future.numel():
                raise ValueError(f"ground_truth_frames has {truth.shape[0]} frames for {future.numel()} future times.")
            if tuple(truth.shape[1:3]) != tuple(frames.shape[1:3]):
                raise ValueError(
                    f"ground_truth_frames are {tuple(truth.shape[1:3])} but the context frames are "
                    f"{tuple(frames.shape[1:3])} (height, width)."
                )
            truth_views, _ = self.resize(truth)
        return PreparedClip(views, context_timestamps, future, layout, truth_views)

    @staticmethod
    def future_times(
        context_timestamps: torch.Tensor,
        num_future_frames: int | None = None,
        frame_interval: float | None = None,
        future_timestamps: Sequence[float] | torch.Tensor | None = None,
        fps: float | None = None,
    ) -> torch.Tensor:
        """The `(F,)` float64 future times: explicit, or `num_future_frames` (default 3) steps of `frame_interval`."""
        if num_future_frames is not None:
            check_positive_integer("num_future_frames", num_future_frames)
        if future_timestamps is not None:
            future = as_time_vector("future_timestamps", future_timestamps)
            if future.numel() < 1:
                raise ValueError("future_timestamps must hold at least one time.")
            if num_future_frames is not None and num_future_frames != future.numel():
                raise ValueError(f"num_future_frames={num_future_frames} disagrees with the {future.numel()} future_timestamps.")
            if frame_interval is not None:
                raise ValueError("Pass either future_timestamps or frame_interval, not both.")
        else:
            num_future = 3 if num_future_frames is None else num_future_frames
            if frame_interval is None:
                if context_timestamps.numel() > 1:
                    frame_interval = float(context_timestamps.diff().median())
                elif fps is not None:
                    frame_interval = 1.0 / fps
                else:
                    raise ValueError(
                        "With a single context frame the future spacing is unknown: pass frame_interval= (seconds), "
                        "fps= or future_timestamps=."
                    )
            future = context_timestamps[-1] + frame_interval * torch.arange(1, num_future + 1, dtype=torch.float64)
        if not future[0] > context_timestamps[-1]:
            raise ValueError(
                f"future_timestamps must come after the last context time {float(context_timestamps[-1]):.4f} s, "
                f"got {future.tolist()}."
            )
        return future


__all__ = [
    "IGNORE_INDEX",
    "RESIZE_MODES",
    "DeltaWorldVideoProcessor",
    "PreparedClip",
    "SquareCropLayout",
    "align_to_labels",
    "as_time_vector",
    "check_positive_integer",
    "check_positive_number",
    "check_value_range",
    "is_clip_batch",
    "merge_square_crops",
    "split_into_square_crops",
    "split_labels",
]
