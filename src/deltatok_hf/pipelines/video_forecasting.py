"""`DeltaWorldPipeline`: sample futures of a video with DeltaWorld, as a `transformers` pipeline.

```python
from deltatok_hf import DeltaWorldPipeline

pipe = DeltaWorldPipeline.from_pretrained("org/deltaworld-kinetics")       # or a local directory
out = pipe("clip.mp4", num_samples=20, num_future_frames=3)                # or PIL list / (T,H,W,3) array / (T,3,H,W) tensor
out.future_features        # (num_samples, num_future_frames, num_patches, hidden_size)
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import Pipeline
from transformers.utils import cached_file, logging

from ..data.sampling import resize_frames, split_square_crops
from ..models.deltaworld import DeltaWorldForForecasting
from .pipeline_output import DeltaWorldPipelineOutput

logger = logging.get_logger(__name__)

PIPELINE_CONFIG_NAME = "pipeline_config.json"
HEADS_FOLDER = "heads"
RESIZE_MODES = ("square_crops", "resize_square", "none")
OUTPUT_TYPES = ("pt", "np", "pil")
DEFAULT_SIZE = 256
DEFAULT_RESIZE_MODE = "square_crops"
# The official evaluation caps the long side at this multiple of the short side after resizing (`max_aspect_ratio`).
MAX_ASPECT_RATIO = 2.0
# Context taken from a video file by default: the paper's evaluation protocol (4 frames 0.2 s apart).
VIDEO_CONTEXT_FRAMES = 4
VIDEO_CONTEXT_INTERVAL = 0.2


# ----------------------------------------------------------------------------------------------
# Input checks and frame preparation (all on the CPU, before the model runs)
# ----------------------------------------------------------------------------------------------


def _is_single_frame(item: Any) -> bool:
    if isinstance(item, Image.Image):
        return True
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 3


def _is_batch(inputs: Any) -> bool:
    """A list of clips (paths, 4-D arrays/tensors, or lists of frames), as opposed to one clip given as a frame list."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        return False
    return not _is_single_frame(inputs[0])


def _check_value_range(frames: torch.Tensor, description: str) -> None:
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
            converted.append(torch.from_numpy(np.ascontiguousarray(frame)))
        elif isinstance(frame, torch.Tensor):
            if frame.ndim != 3 or frame.shape[0] != 3:
                raise ValueError(
                    f"Frame {index} must be an RGB tensor of shape (3, height, width), got {tuple(frame.shape)}."
                )
            converted.append(frame.permute(1, 2, 0))
        else:
            raise TypeError(f"Frame {index} must be a PIL image, a numpy array or a tensor, got {type(frame).__name__}.")
    sizes = sorted({tuple(frame.shape[:2]) for frame in converted})
    if len(sizes) > 1:
        raise ValueError(f"All frames of a clip must have the same size, got (height, width) sizes {sizes}.")
    return torch.stack(converted) if converted else torch.zeros(0, 0, 0, 3, dtype=torch.uint8)


def _read_video_context(
    path: str | os.PathLike, num_frames: int | None, interval: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    The context of a video file: `num_frames` frames `interval` seconds apart ending on the last frame (nearest real
    frames, seeking rather than decoding everything). Defaults are the paper's evaluation protocol: 4 frames, 0.2 s.
    """
    from ..data.video import read_frames_at, read_timestamps  # noqa: PLC0415 (PyAV is only needed for files)

    num_frames = VIDEO_CONTEXT_FRAMES if num_frames is None else num_frames
    interval = VIDEO_CONTEXT_INTERVAL if interval is None else interval
    # Both raise VideoDecodeError (a ValueError naming the file) on missing / corrupt / empty files.
    times = read_timestamps(path)
    last = float(times[-1])
    wanted = [last - interval * step for step in range(num_frames - 1, -1, -1)]
    half_frame = float(torch.diff(times).median()) / 2 if times.numel() > 1 else 0.0
    if wanted[0] < float(times[0]) - half_frame:
        raise ValueError(
            f"{path} lasts {last - float(times[0]):.2f} s: too short for {num_frames} context frames {interval} s "
            "apart; pass a smaller max_context_frames= or context_interval=."
        )
    decoded = read_frames_at(path, wanted)
    timestamps = decoded.timestamps.to(torch.float64)
    if timestamps.numel() > 1 and not bool((timestamps[1:] > timestamps[:-1]).all()):
        raise ValueError(
            f"{path} has no distinct frames at the context times {wanted} (context_interval={interval} s is shorter "
            "than its frame spacing); pass a larger context_interval=."
        )
    return decoded.frames, timestamps


def load_clip(
    clip: Any, max_context_frames: int | None = None, context_interval: float | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    Any supported clip form -> `(frames (T, H, W, 3) uint8 or float 0..255, timestamps (T,) float64 or None)`.
    Video files carry their own timestamps; only their context frames are decoded (see `_read_video_context`).
    """
    timestamps = None
    if isinstance(clip, (str, os.PathLike)):
        frames, timestamps = _read_video_context(clip, max_context_frames, context_interval)
    elif isinstance(clip, np.ndarray):
        if clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(
                f"A numpy clip must have shape (num_frames, height, width, 3) with RGB channels last, got {clip.shape}."
            )
        frames = torch.from_numpy(np.ascontiguousarray(clip))
    elif isinstance(clip, torch.Tensor):
        if clip.ndim != 4 or clip.shape[1] != 3:
            raise ValueError(
                f"A tensor clip must have shape (num_frames, 3, height, width) with RGB channels first, got "
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
    _check_value_range(frames, "Frames")
    return frames, timestamps


def prepare_views(
    frames: torch.Tensor, size: int, resize_mode: str, patch_size: int
) -> tuple[torch.Tensor, tuple[int, int], list[tuple[int, int, int, int]] | None]:
    """
    Frames `(T, H, W, 3)` -> `(views (num_views, T, 3, h, w), frame_size, crop_boxes)` following `resize_mode`.
    Never resizes to fit the patch size silently: `"none"` raises when the frames are not patch multiples.
    """
    frames = frames.permute(0, 3, 1, 2)  # (T, 3, H, W)
    height, width = frames.shape[-2:]
    if resize_mode == "none":
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"resize_mode='none' needs frames whose height and width are multiples of the patch size "
                f"{patch_size}, got {height}x{width}; use resize_mode='square_crops' or 'resize_square'."
            )
        return frames[None], (height, width), None
    if size % patch_size:
        raise ValueError(f"size must be a multiple of the patch size {patch_size}, got {size}.")
    if resize_mode == "resize_square":
        return resize_frames(frames, size, antialias=False)[None], (size, size), None
    # The benchmark protocol (official evaluation): bilinear without antialiasing, long side capped at twice the
    # short side, two square crops at the ends of the long side.
    views, crop_boxes = split_square_crops(frames, size, antialias=False, max_aspect_ratio=MAX_ASPECT_RATIO)
    new_height = int(crop_boxes[:, 2].max())
    new_width = int(crop_boxes[:, 3].max())
    # (top, left, height, width) of each crop inside the resized frame.
    boxes = [(top, left, bottom - top, right - left) for top, left, bottom, right in crop_boxes.tolist()]
    return views, (new_height, new_width), (boxes if len(boxes) > 1 else None)


def _as_float64_vector(name: str, values: Any) -> torch.Tensor:
    try:
        vector = torch.as_tensor(values, dtype=torch.float64).flatten()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a sequence of numbers (seconds), got {values!r}.") from error
    if not torch.isfinite(vector).all():
        raise ValueError(f"{name} must be finite, got {vector.tolist()}.")
    if vector.numel() > 1 and not (vector[1:] > vector[:-1]).all():
        raise ValueError(f"{name} must be strictly increasing, got {vector.tolist()}.")
    return vector


# ----------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------


class DeltaWorldPipeline(Pipeline):
    r"""
    Sample many plausible futures of a video clip with [`DeltaWorldForForecasting`].

    Steps of a call: 1. check the inputs and prepare the frames (decode / resize / crop) and the timestamps;
    2. one `model.generate` call per clip (all square crops and samples batched; only context frames are encoded);
    3. apply the task heads (per sample and to the sample mean); 4. build the outputs (and pictures on request).

    The model normalises the frames itself (RGB 0..255 in), so the pipeline has no image processor.

    Args:
        model ([`DeltaWorldForForecasting`]): the world model.
        heads (`dict[str, PreTrainedModel]`, *optional*): task heads that read patch features
            (`forward(features (B, N, D), grid_size=, output_size=)` returning `.logits` (segmentation) or
            `.predicted_depth` (depth)). Heads saved with the pipeline are loaded too.
        device / dtype: where and in which precision the model runs (e.g. `torch.bfloat16`).
        Any call parameter (e.g. `num_samples=5`, `size=224`) given here becomes the default of every call.

    Call parameters (see [`__call__`]).
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(
        self,
        model: DeltaWorldForForecasting,
        heads: dict[str, nn.Module] | None = None,
        hub_kwargs: dict[str, Any] | None = None,
        **kwargs,
    ):
        dtype = kwargs.get("dtype")
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        super().__init__(model=model, **kwargs)
        if isinstance(dtype, torch.dtype) and self.model.dtype != dtype:
            self.model.to(dtype)
        self.model.eval()
        # Defaults saved with the pipeline (size, resize mode, heads), then user heads on top.
        # `hub_kwargs` (cache_dir, revision, token, local_files_only) locate the saved defaults and heads.
        self._hub_kwargs = dict(hub_kwargs or {})
        saved = self._read_pipeline_config(getattr(self.model, "name_or_path", None), self._hub_kwargs)
        for key in ("size", "resize_mode"):
            if key in saved and key not in self._preprocess_params:
                self._preprocess_params[key] = saved[key]
        loaded = self._load_saved_heads(getattr(self.model, "name_or_path", None), saved.get("heads", []), self._hub_kwargs)
        loaded.update(heads or {})
        for name, head in loaded.items():
            if not isinstance(head, nn.Module):
                raise TypeError(f"heads[{name!r}] must be a torch module (a task head), got {type(head).__name__}.")
        self.heads = nn.ModuleDict(loaded).to(self.device).eval()

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | os.PathLike,
        heads: dict[str, nn.Module] | None = None,
        device: int | str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        **kwargs,
    ) -> "DeltaWorldPipeline":
        """
        Load the model (local directory or Hub id) and the heads / defaults saved with it.

        Args:
            heads: extra task heads, `{name: head}`, added to (or replacing) those saved with the pipeline.
            device: e.g. `"cpu"`, `"cuda"`, `0` (defaults to the first GPU when there is one).
            dtype: e.g. `torch.bfloat16`; the model's weights are loaded in it.
            kwargs: Hub arguments (`revision`, `cache_dir`, `token`, `local_files_only`) go to `from_pretrained`; the
                rest become default call parameters (e.g. `num_samples=5`).
        """
        hub_kwargs = {key: kwargs.pop(key) for key in ("revision", "cache_dir", "token", "local_files_only") if key in kwargs}
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        model = DeltaWorldForForecasting.from_pretrained(model_id_or_path, dtype=dtype, **hub_kwargs)
        return cls(model=model, heads=heads, device=device, dtype=dtype, hub_kwargs=hub_kwargs, **kwargs)

    @staticmethod
    def _read_pipeline_config(name_or_path: str | None, hub_kwargs: dict[str, Any]) -> dict:
        if not name_or_path:
            return {}
        path = cached_file(
            name_or_path,
            PIPELINE_CONFIG_NAME,
            **hub_kwargs,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is None:
            return {}
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    @staticmethod
    def _load_saved_heads(
        name_or_path: str | None, names: Sequence[str], hub_kwargs: dict[str, Any]
    ) -> dict[str, nn.Module]:
        if not names:
            return {}
        from transformers import AutoModel  # noqa: PLC0415

        from .. import models  # noqa: F401, PLC0415 (registers our heads with AutoModel)

        try:
            from ..models import heads as _  # noqa: F401, PLC0415
        except ImportError as error:
            raise ImportError(f"The pipeline was saved with heads {list(names)} but the heads module is missing.") from error
        return {
            name: AutoModel.from_pretrained(name_or_path, subfolder=f"{HEADS_FOLDER}/{name}", **hub_kwargs).eval()
            for name in names
        }

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write the model, every head (`heads/<name>/`) and the pipeline defaults (`pipeline_config.json`)."""
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(save_directory, **kwargs)
        for name, head in self.heads.items():
            if not hasattr(head, "save_pretrained"):
                raise TypeError(f"Head {name!r} ({type(head).__name__}) cannot be saved: it has no save_pretrained.")
            head.save_pretrained(save_directory / HEADS_FOLDER / name, **kwargs)
        config = {
            "pipeline_class": type(self).__name__,
            "task": "video-forecasting",
            "size": self._preprocess_params.get("size", DEFAULT_SIZE),
            "resize_mode": self._preprocess_params.get("resize_mode", DEFAULT_RESIZE_MODE),
            "heads": list(self.heads.keys()),
        }
        (save_directory / PIPELINE_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    # ------------------------------------------------------------------ transformers.Pipeline interface

    def _sanitize_parameters(
        self,
        fps: float | None = None,
        timestamps: Sequence[float] | torch.Tensor | None = None,
        num_future_frames: int | None = None,
        frame_interval: float | None = None,
        future_timestamps: Sequence[float] | torch.Tensor | None = None,
        max_context_frames: int | None = None,
        context_interval: float | None = None,
        size: int | None = None,
        resize_mode: str | None = None,
        ground_truth_frames: Any = None,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        noise: torch.Tensor | None = None,
        output_type: str | None = None,
        max_samples_shown: int | None = None,
        **unknown,
    ):
        if unknown:
            raise TypeError(f"DeltaWorldPipeline got unknown parameters: {sorted(unknown)}.")
        preprocess = {
            key: value
            for key, value in dict(
                fps=fps,
                timestamps=timestamps,
                num_future_frames=num_future_frames,
                frame_interval=frame_interval,
                future_timestamps=future_timestamps,
                max_context_frames=max_context_frames,
                context_interval=context_interval,
                size=size,
                resize_mode=resize_mode,
                ground_truth_frames=ground_truth_frames,
            ).items()
            if value is not None
        }
        forward = {
            key: value
            for key, value in dict(num_samples=num_samples, generator=generator, seed=seed, noise=noise).items()
            if value is not None
        }
        postprocess = {}
        if output_type is not None:
            if output_type not in OUTPUT_TYPES:
                raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
            postprocess["output_type"] = output_type
        if max_samples_shown is not None:
            postprocess["max_samples_shown"] = max_samples_shown
        return preprocess, forward, postprocess

    def __call__(self, inputs: Any, **kwargs) -> DeltaWorldPipelineOutput | list:
        """
        Forecast one clip or a list of clips.

        Args:
            inputs: a video path, a list of PIL images (RGB), a `(T, H, W, 3)` uint8/float numpy array, a
                `(T, 3, H, W)` uint8/float tensor (values 0..255), or a list of those (a batch).
            fps (`float`) / timestamps (`(T,)` seconds): times of the context frames (one is required for frames;
                video files carry their own and refuse both).
            num_future_frames (`int`, defaults to 3) and frame_interval (`float` seconds, defaults to the context's
                median spacing, or `1 / fps` for a single frame); or future_timestamps (`(F,)` seconds, any spacing,
                after the last context time, on the same clock).
            max_context_frames (`int`): keep only the last N frames as context. For a video file, the context is
                `max_context_frames` (default 4) frames `context_interval` seconds apart (default 0.2) ending on its last
                frame, as the paper's evaluation; only those frames are decoded.
            size (`int`, defaults to 256 or the saved pipeline's) and resize_mode: `"square_crops"` (default; short
                side to `size`, then one square per end of the long side, each forecast: the benchmark protocol),
                `"resize_square"` (stretch to `size x size`) or `"none"` (frames must be patch multiples).
            ground_truth_frames: the real future frames (same forms as a clip; one per future time) to get their
                features, task maps and pictures alongside the forecast. Only the backbone sees them.
            num_samples (`int`, defaults to the model config's `num_samples_eval`): futures per clip.
            generator (`torch.Generator`) or seed (`int`): randomness of the noise queries; the same seed gives the
                same futures. noise (`(num_samples, F, Dp)`): explicit noise queries instead.
            output_type: `"pt"` (tensors, default), `"np"` (numpy), `"pil"` (tensors plus `image`, a labelled
                picture). max_samples_shown (`int`, defaults to 4): samples drawn in the picture.

        Returns:
            [`DeltaWorldPipelineOutput`] per clip; a clip split into two square crops gives a list of two outputs (each
            with its `crop_box`); a batch gives a list with one such result per clip.
        """
        if "num_workers" in kwargs or "batch_size" in kwargs:
            raise TypeError("DeltaWorldPipeline batches internally: pass a list of clips, not num_workers/batch_size.")
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        preprocess_params = {**self._preprocess_params, **preprocess_params}
        forward_params = {**self._forward_params, **forward_params}
        postprocess_params = {**self._postprocess_params, **postprocess_params}
        if "seed" in forward_params and "generator" in forward_params:
            raise ValueError("Pass either seed or generator, not both.")
        self.call_count += 1
        if _is_batch(inputs):
            return [self.run_single(clip, preprocess_params, forward_params, postprocess_params) for clip in inputs]
        return self.run_single(inputs, preprocess_params, forward_params, postprocess_params)

    def preprocess(
        self,
        inputs: Any,
        fps: float | None = None,
        timestamps: Sequence[float] | torch.Tensor | None = None,
        num_future_frames: int | None = None,
        frame_interval: float | None = None,
        future_timestamps: Sequence[float] | torch.Tensor | None = None,
        max_context_frames: int | None = None,
        context_interval: float | None = None,
        size: int = DEFAULT_SIZE,
        resize_mode: str = DEFAULT_RESIZE_MODE,
        ground_truth_frames: Any = None,
    ) -> dict[str, Any]:
        # 1. Check the options.
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}.")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}.")
        if max_context_frames is not None and (not isinstance(max_context_frames, int) or max_context_frames < 1):
            raise ValueError(f"max_context_frames must be a positive integer, got {max_context_frames!r}.")
        if fps is not None and timestamps is not None:
            raise ValueError("Pass either fps or timestamps for the context frames, not both.")
        if fps is not None and (not np.isfinite(fps) or fps <= 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}.")

        if context_interval is not None and (not np.isfinite(context_interval) or context_interval <= 0):
            raise ValueError(f"context_interval must be a positive number of seconds, got {context_interval!r}.")

        if isinstance(inputs, (str, os.PathLike)) and (fps is not None or timestamps is not None):
            raise ValueError(
                "A video file carries its own timestamps; do not pass fps or timestamps with it (decode it "
                "yourself and pass the frames to use other times)."
            )

        # 2. Frames and their times.
        frames, video_timestamps = load_clip(inputs, max_context_frames, context_interval)
        num_frames = frames.shape[0]
        if context_interval is not None and video_timestamps is None:
            raise ValueError("context_interval selects frames of a video file; with frames given, pass the ones to use.")
        if video_timestamps is not None:
            context_timestamps = video_timestamps
        elif timestamps is not None:
            context_timestamps = _as_float64_vector("timestamps", timestamps)
            if context_timestamps.numel() != num_frames:
                raise ValueError(f"timestamps has {context_timestamps.numel()} values for {num_frames} frames.")
        elif fps is not None:
            context_timestamps = torch.arange(num_frames, dtype=torch.float64) / fps
        else:
            raise ValueError(
                "The times of the frames are unknown: pass fps= (frames per second) or timestamps= (seconds)."
            )
        if max_context_frames is not None:
            frames, context_timestamps = frames[-max_context_frames:], context_timestamps[-max_context_frames:]

        # 3. Future times.
        if future_timestamps is not None:
            future = _as_float64_vector("future_timestamps", future_timestamps)
            if future.numel() < 1:
                raise ValueError("future_timestamps must hold at least one time.")
            if num_future_frames is not None and num_future_frames != future.numel():
                raise ValueError(
                    f"num_future_frames={num_future_frames} disagrees with the {future.numel()} future_timestamps."
                )
            if frame_interval is not None:
                raise ValueError("Pass either future_timestamps or frame_interval, not both.")
        else:
            num_future = 3 if num_future_frames is None else num_future_frames
            if not isinstance(num_future, int) or isinstance(num_future, bool) or num_future < 1:
                raise ValueError(f"num_future_frames must be a positive integer, got {num_future_frames!r}.")
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
            if not np.isfinite(frame_interval) or frame_interval <= 0:
                raise ValueError(f"frame_interval must be a positive number of seconds, got {frame_interval!r}.")
            future = context_timestamps[-1] + frame_interval * torch.arange(1, num_future + 1, dtype=torch.float64)
        if not future[0] > context_timestamps[-1]:
            raise ValueError(
                f"future_timestamps must come after the last context time {float(context_timestamps[-1]):.4f} s, "
                f"got {future.tolist()}."
            )

        # 4. Resize / crop into the views the model sees.
        patch_size = self.model.tokenizer.patch_size
        views, frame_size, boxes = prepare_views(frames, size, resize_mode, patch_size)
        truth_views = None
        if ground_truth_frames is not None:
            truth, _ = load_clip(ground_truth_frames)
            if truth.shape[0] != future.numel():
                raise ValueError(
                    f"ground_truth_frames has {truth.shape[0]} frames for {future.numel()} future times."
                )
            if tuple(truth.shape[1:3]) != tuple(frames.shape[1:3]):
                raise ValueError(
                    f"ground_truth_frames are {tuple(truth.shape[1:3])} but the context frames are "
                    f"{tuple(frames.shape[1:3])} (height, width)."
                )
            truth_views, _, _ = prepare_views(truth, size, resize_mode, patch_size)
        return {
            "views": views,  # (num_views, num_context_frames, 3, height, width)
            "ground_truth_views": truth_views,  # (num_views, num_future_frames, 3, height, width) or None
            "context_timestamps": context_timestamps,
            "future_timestamps": future,
            "frame_size": frame_size,
            "crop_boxes": boxes,
        }

    def _make_generator(self, seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
        if seed is None:
            return generator
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}.")
        return torch.Generator(device=self.device).manual_seed(seed)

    def _forward(
        self,
        model_inputs: dict[str, Any],
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        noise: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        views = model_inputs["views"]
        num_views = views.shape[0]
        context_timestamps = model_inputs["context_timestamps"]
        origin = context_timestamps[0]
        # Times relative to the first context frame, as the official data (RoPE only sees differences anyway).
        model_timestamps = (context_timestamps - origin).to(torch.float32)
        model_future = (model_inputs["future_timestamps"] - origin).to(torch.float32)
        if noise is not None:
            noise = torch.as_tensor(noise)
            if noise.ndim == 3:
                noise = noise.expand(num_views, *noise.shape)
        output = self.model.generate(
            frames=views.to(self.device),
            timestamps=model_timestamps.to(self.device).expand(num_views, -1),
            future_timestamps=model_future.to(self.device).expand(num_views, -1),
            num_samples=num_samples,
            generator=self._make_generator(seed, generator),
            noise=None if noise is None else noise.to(self.device),
        )
        grid_size = self.model.tokenizer.grid_size(*views.shape[-2:])
        truth_features = None
        if model_inputs["ground_truth_views"] is not None:
            truth_features = self.model.tokenizer.extract_features(model_inputs["ground_truth_views"].to(self.device))
        # (num_views, num_samples, F, N, D) -> mean over the samples in float32
        future_features = output.future_features.float()
        mean_features = future_features.mean(1)
        result = {
            "future_features": future_features,
            "mean_future_features": mean_features,
            "future_delta_tokens": output.future_delta_tokens.float(),
            "context_delta_tokens": output.context_delta_tokens.float(),
            "context_features": output.context_features.float(),
            "noise": None if output.noise is None else output.noise.float(),
            "ground_truth_features": None if truth_features is None else truth_features.float(),
            "grid_size": grid_size,
        }
        if len(self.heads):
            result.update(self._apply_heads(result, grid_size, tuple(views.shape[-2:])))
        return {**model_inputs, **result}

    @torch.no_grad()
    def _apply_heads(
        self, result: dict[str, torch.Tensor], grid_size: tuple[int, int], output_size: tuple[int, int]
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Every head on every sample, on the sample mean, on the context and on the ground truth; maps per view."""

        def run(head: nn.Module, features: torch.Tensor) -> torch.Tensor:
            # (..., N, D) -> (..., height, width); chunked so that full-resolution logits never pile up.
            leading = features.shape[:-2]
            flat = features.reshape(-1, *features.shape[-2:])
            dtype = next(head.parameters()).dtype
            maps = []
            for chunk in flat.split(8):
                out = head(chunk.to(dtype), grid_size=grid_size, output_size=output_size)
                if getattr(out, "logits", None) is not None:
                    maps.append(out.logits.argmax(1))
                elif getattr(out, "predicted_depth", None) is not None:
                    maps.append(out.predicted_depth[:, 0].float())
                else:
                    raise TypeError(
                        f"Head {type(head).__name__} returned neither `logits` nor `predicted_depth`."
                    )
            return torch.cat(maps).reshape(*leading, *output_size)

        maps: dict[str, dict[str, torch.Tensor]] = {
            "task_maps": {}, "mean_task_maps": {}, "context_task_maps": {}, "ground_truth_task_maps": {}
        }  # fmt: skip
        for name, head in self.heads.items():
            maps["task_maps"][name] = run(head, result["future_features"])
            maps["mean_task_maps"][name] = run(head, result["mean_future_features"])
            maps["context_task_maps"][name] = run(head, result["context_features"])
            if result["ground_truth_features"] is not None:
                maps["ground_truth_task_maps"][name] = run(head, result["ground_truth_features"])
        return maps

    def postprocess(
        self, model_outputs: dict[str, Any], output_type: str = "pt", max_samples_shown: int = 4
    ) -> DeltaWorldPipelineOutput | list[DeltaWorldPipelineOutput]:
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        views = model_outputs["views"]
        truth_views = model_outputs["ground_truth_views"]
        boxes = model_outputs["crop_boxes"]
        has_heads = "task_maps" in model_outputs

        def per_view(name: str, index: int) -> dict[str, torch.Tensor] | None:
            if not has_heads or not model_outputs[name]:
                return None
            return {head: maps[index] for head, maps in model_outputs[name].items()}

        outputs = []
        for index in range(views.shape[0]):
            noise = model_outputs["noise"]
            truth = model_outputs["ground_truth_features"]
            output = DeltaWorldPipelineOutput(
                future_features=model_outputs["future_features"][index],
                mean_future_features=model_outputs["mean_future_features"][index],
                future_delta_tokens=model_outputs["future_delta_tokens"][index],
                context_delta_tokens=model_outputs["context_delta_tokens"][index],
                context_features=model_outputs["context_features"][index],
                context_timestamps=model_outputs["context_timestamps"].to(torch.float32),
                future_timestamps=model_outputs["future_timestamps"].to(torch.float32),
                grid_size=tuple(model_outputs["grid_size"]),
                noise=None if noise is None else noise[index],
                context_frames=views[index].permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8),
                frame_size=tuple(model_outputs["frame_size"]),
                crop_box=None if boxes is None else tuple(boxes[index]),
                ground_truth_frames=(
                    None if truth_views is None else truth_views[index].permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8)
                ),
                ground_truth_features=None if truth is None else truth[index],
                task_maps=per_view("task_maps", index),
                mean_task_maps=per_view("mean_task_maps", index),
                context_task_maps=per_view("context_task_maps", index),
                ground_truth_task_maps=per_view("ground_truth_task_maps", index),
            )
            if output_type == "pil":
                from ..visualization import _grid_from_output  # noqa: PLC0415

                output.image = _grid_from_output(output, max_samples_shown=max_samples_shown)
            elif output_type == "np":
                output = output.to_numpy()
            outputs.append(output)
        return outputs[0] if len(outputs) == 1 else outputs


__all__ = ["DeltaWorldPipeline", "load_clip", "prepare_views"]
