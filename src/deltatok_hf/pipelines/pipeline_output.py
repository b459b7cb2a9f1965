"""Output class of [`DeltaWorldPipeline`]."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from PIL import Image


@dataclass
class DeltaWorldPipelineOutput:
    """
    The forecast of one clip (or of one square crop of it, see `crop_box`). Tensors are float32 on the CPU (numpy
    arrays with `output_type="np"`), whatever dtype and device the model ran in.

    Args:
        future_features (`torch.FloatTensor` of shape `(num_samples, num_future_frames, num_patches, hidden_size)`):
            Decoded backbone features of every sampled future.
        mean_future_features (`torch.FloatTensor` of shape `(num_future_frames, num_patches, hidden_size)`):
            Mean over the samples (the paper's "mean" prediction).
        future_delta_tokens (`torch.FloatTensor` of shape `(num_samples, num_future_frames, hidden_size)`):
            Predicted delta tokens.
        context_delta_tokens (`torch.FloatTensor` of shape `(num_context_frames, hidden_size)`):
            Delta tokens of the context (the first one relative to the black frame).
        context_features (`torch.FloatTensor` of shape `(num_context_frames, num_patches, hidden_size)`):
            Backbone features of the context frames.
        context_timestamps (`torch.FloatTensor` of shape `(num_context_frames,)`):
            Context times in seconds, as given (or as read from the video).
        future_timestamps (`torch.FloatTensor` of shape `(num_future_frames,)`):
            Forecast times in seconds, on the same clock as `context_timestamps`.
        grid_size (`tuple[int, int]`):
            Patch rows and columns (`num_patches = rows * columns`).
        noise (`torch.FloatTensor` of shape `(num_samples, num_future_frames, predictor_hidden_size)`, *optional*):
            The noise queries used (Best-of-Many models); feed them back through `noise=` to replay a forecast.
        context_frames (`torch.ByteTensor` of shape `(num_context_frames, height, width, 3)`):
            The context frames as the model saw them (resized / cropped), for pictures.
        frame_size (`tuple[int, int]`):
            `(height, width)` of the frames after resizing and before cropping.
        crop_box (`tuple[int, int, int, int]`, *optional*):
            `(top, left, height, width)` of this crop inside the resized frame (`resize_mode="square_crops"` only).
        ground_truth_frames (`torch.ByteTensor` of shape `(num_future_frames, height, width, 3)`, *optional*):
            The real future frames, when given with `ground_truth_frames=` (prepared like the context).
        ground_truth_features (`torch.FloatTensor` of shape `(num_future_frames, num_patches, hidden_size)`, *optional*):
            Backbone features of the real future frames.
        task_maps (`dict[str, torch.Tensor]`, *optional*):
            Per head, the map of every sample, `(num_samples, num_future_frames, height, width)`: class ids (int64) for
            segmentation heads, depth (float) for depth heads, at the frame resolution.
        mean_task_maps (`dict[str, torch.Tensor]`, *optional*):
            Per head, the head applied to `mean_future_features`, `(num_future_frames, height, width)`.
        context_task_maps / ground_truth_task_maps (`dict[str, torch.Tensor]`, *optional*):
            Per head, the maps of the context frames `(num_context_frames, height, width)` and of the real future.
        image (`PIL.Image.Image`, *optional*):
            The labelled forecast picture (`output_type="pil"`).
    """

    future_features: torch.Tensor | np.ndarray
    mean_future_features: torch.Tensor | np.ndarray
    future_delta_tokens: torch.Tensor | np.ndarray
    context_delta_tokens: torch.Tensor | np.ndarray
    context_features: torch.Tensor | np.ndarray
    context_timestamps: torch.Tensor | np.ndarray
    future_timestamps: torch.Tensor | np.ndarray
    grid_size: tuple[int, int]
    noise: torch.Tensor | np.ndarray | None = None
    context_frames: torch.Tensor | np.ndarray | None = None
    frame_size: tuple[int, int] | None = None
    crop_box: tuple[int, int, int, int] | None = None
    ground_truth_frames: torch.Tensor | np.ndarray | None = None
    ground_truth_features: torch.Tensor | np.ndarray | None = None
    task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    mean_task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    context_task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    ground_truth_task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    image: Image.Image | None = None

    @property
    def num_samples(self) -> int:
        return int(self.future_features.shape[0])

    @property
    def num_future_frames(self) -> int:
        return int(self.future_features.shape[1])

    def to_numpy(self) -> "DeltaWorldPipelineOutput":
        """A copy whose tensors (and tensors inside the map dicts) are numpy arrays."""

        def convert(value):
            if isinstance(value, torch.Tensor):
                return value.numpy()
            if isinstance(value, dict):
                return {key: convert(item) for key, item in value.items()}
            return value

        return DeltaWorldPipelineOutput(**{field.name: convert(getattr(self, field.name)) for field in fields(self)})


__all__ = ["DeltaWorldPipelineOutput"]
