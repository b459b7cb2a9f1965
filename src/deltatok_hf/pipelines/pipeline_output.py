"""Output class of [`DeltaWorldPipeline`]."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from diffusers.utils import BaseOutput
from PIL import Image


@dataclass
class DeltaWorldPipelineOutput(BaseOutput):
    """
    The forecast of one clip (or of one square crop of it, see `crop_box`). Tensors are float32 on the CPU (numpy
    arrays with `output_type="np"`), whatever dtype and device the model ran in.

    Args:
        future_features (`torch.FloatTensor` of shape `(num_samples, num_future_frames, num_patches, hidden_size)`, *optional*):
            Decoded backbone features of every sampled future (`None` with `output_type="latent"`; decode them later
            with [`DeltaWorldPipeline.decode`]).
        mean_future_features (`torch.FloatTensor` of shape `(num_future_frames, num_patches, hidden_size)`, *optional*):
            Mean over the samples (the paper's "mean" prediction). With `num_candidates=`, the mean weighted by
            `candidate_weights`, so that each kept sample counts for the share of the drawn futures it stands for (an
            estimate of the mean of all the candidates, without decoding them).
        future_delta_tokens (`torch.FloatTensor` of shape `(num_samples, num_future_frames, hidden_size)`, *optional*):
            Predicted delta tokens (`None` for patch-level world models).
        context_delta_tokens (`torch.FloatTensor` of shape `(num_context_frames, hidden_size)`, *optional*):
            Delta tokens of the context (the first one relative to the black frame).
        context_features (`torch.FloatTensor` of shape `(num_context_frames, num_patches, hidden_size)`):
            Backbone features of the context frames (decoding starts from the last one).
        context_timestamps (`torch.FloatTensor` of shape `(num_context_frames,)`):
            Context times in seconds, as given (or as read from the video).
        future_timestamps (`torch.FloatTensor` of shape `(num_future_frames,)`):
            Forecast times in seconds, on the same clock as `context_timestamps`.
        grid_size (`tuple[int, int]`):
            Patch rows and columns (`num_patches = rows * columns`).
        noise (`torch.FloatTensor` of shape `(num_samples, num_future_frames, predictor_hidden_size)`, *optional*):
            The noise queries used (Best-of-Many models); feed them back through `noise=` to replay a forecast.
        candidate_indices (`torch.LongTensor` of shape `(num_samples,)`, *optional*):
            With `num_candidates=`, which of the drawn candidates were kept (and decoded), in the order of the samples.
        candidate_weights (`torch.FloatTensor` of shape `(num_samples,)`, *optional*):
            With `num_candidates=`, the share of the drawn candidates nearest (in token space) to each kept one: how
            much of the model's futures each sample stands for. Sums to 1 (less after [`DeltaWorldPipeline.decode`]
            of some of the samples: the shares stay those of all the drawn candidates).
        context_frames (`torch.ByteTensor` of shape `(num_context_frames, height, width, 3)`):
            The context frames as the model saw them (resized / cropped), for pictures.
        frame_size (`tuple[int, int]`):
            `(height, width)` of the frames after resizing and before cropping.
        crop_box (`tuple[int, int, int, int]`, *optional*):
            `(top, left, height, width)` of this crop inside the resized frame (when a frame gives several crops).
        ground_truth_frames (`torch.ByteTensor` of shape `(num_future_frames, height, width, 3)`, *optional*):
            The real future frames, when given (prepared like the context).
        ground_truth_features (`torch.FloatTensor` of shape `(num_future_frames, num_patches, hidden_size)`, *optional*):
            Backbone features of the real future frames.
        future_frames (`torch.ByteTensor` of shape `(num_samples, num_future_frames, height, width, 3)`, *optional*):
            Every sampled future decoded to RGB by the pipeline's `rgb_decoder` (a list of lists of PIL images per
            sample with `output_type="pil"`).
        mean_future_frames (`torch.ByteTensor` of shape `(num_future_frames, height, width, 3)`, *optional*):
            The sample mean decoded to RGB (a ghost of all the futures).
        task_maps (`dict[str, torch.Tensor]`, *optional*):
            Per head (`"segmentation"`, `"depth"`), the map of every sample, `(num_samples, num_future_frames, height,
            width)`: class ids (int64) for segmentation, depth (float) for depth, at the frame resolution.
        mean_task_maps (`dict[str, torch.Tensor]`, *optional*):
            Per head, the head applied to `mean_future_features`, `(num_future_frames, height, width)`.
        context_task_maps / ground_truth_task_maps (`dict[str, torch.Tensor]`, *optional*):
            Per head, the maps of the context frames `(num_context_frames, height, width)` and of the real future.
        image (`PIL.Image.Image`, *optional*):
            The labelled forecast picture (`output_type="pil"`).
    """

    future_features: torch.Tensor | np.ndarray | None = None
    mean_future_features: torch.Tensor | np.ndarray | None = None
    future_delta_tokens: torch.Tensor | np.ndarray | None = None
    context_delta_tokens: torch.Tensor | np.ndarray | None = None
    context_features: torch.Tensor | np.ndarray | None = None
    context_timestamps: torch.Tensor | np.ndarray | None = None
    future_timestamps: torch.Tensor | np.ndarray | None = None
    grid_size: tuple[int, int] | None = None
    noise: torch.Tensor | np.ndarray | None = None
    candidate_indices: torch.Tensor | np.ndarray | None = None
    candidate_weights: torch.Tensor | np.ndarray | None = None
    context_frames: torch.Tensor | np.ndarray | None = None
    frame_size: tuple[int, int] | None = None
    crop_box: tuple[int, int, int, int] | None = None
    ground_truth_frames: torch.Tensor | np.ndarray | None = None
    ground_truth_features: torch.Tensor | np.ndarray | None = None
    future_frames: torch.Tensor | np.ndarray | list | None = None
    mean_future_frames: torch.Tensor | np.ndarray | list | None = None
    task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    mean_task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    context_task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    ground_truth_task_maps: dict[str, torch.Tensor | np.ndarray] | None = None
    image: Image.Image | None = None

    @property
    def num_samples(self) -> int:
        values = self.future_features if self.future_features is not None else self.future_delta_tokens
        return int(values.shape[0])

    @property
    def num_future_frames(self) -> int:
        return int(self.future_timestamps.shape[0])

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
