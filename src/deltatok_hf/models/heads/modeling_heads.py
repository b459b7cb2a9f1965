"""Task heads that read semantic segmentation and metric depth out of (forecast) patch features.

Both heads are the linear probes of the DeltaTok paper (official code: `models/task_heads.py`): a `BatchNorm2d` over
the feature channels followed by a 1x1 convolution, applied on the patch grid. Module names (`bn`, `head`) match the
official checkpoints, so their `bn.*` / `head.*` keys load unchanged (see `deltatok_hf.convert.heads`).

Upsampling follows the official evaluation (`training/base.py`, `_apply_head` then `upsample_to_labels`): the head runs
at patch resolution, then its output is resized bilinearly (`align_corners=False`) to the label size. For segmentation
the class *logits* are upsampled; for depth the bin expectation is taken at patch resolution and the resulting depth
map (one channel) is upsampled.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..deltatok.modeling_deltatok import NamedMismatchLoadingMixin
from .configuration_heads import DeltaTokDepthHeadConfig, DeltaTokSegmentationHeadConfig


@dataclass
class DeltaTokSegmentationHeadOutput(ModelOutput):
    r"""
    Output of [`DeltaTokSegmentationHead`].

    Args:
        logits (`torch.FloatTensor` of shape `(batch_size, num_classes, height, width)`):
            Class logits; `(height, width)` is `output_size` when given, else the patch grid.
    """

    logits: torch.FloatTensor | None = None


@dataclass
class DeltaTokDepthHeadOutput(ModelOutput):
    r"""
    Output of [`DeltaTokDepthHead`].

    Args:
        predicted_depth (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`):
            Metric depth in the units of `min_depth` / `max_depth` (metres); `(height, width)` is `output_size` when
            given, else the patch grid.
    """

    predicted_depth: torch.FloatTensor | None = None


def _size_pair(name: str, value: object) -> tuple[int, int]:
    """Return `value` as a `(height, width)` pair of positive ints, or raise a `ValueError` naming `name`."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, torch.Size):
        value = tuple(value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(size, bool) or not isinstance(size, int) or size <= 0 for size in value)
    ):
        raise ValueError(f"`{name}` must be a (height, width) pair of positive integers, got {value!r}.")
    return int(value[0]), int(value[1])


class DeltaTokHeadPreTrainedModel(NamedMismatchLoadingMixin, PreTrainedModel):
    """Shared weight initialisation and input handling of the DeltaTok task heads."""

    base_model_prefix = "head_model"
    main_input_name = "features"
    input_modalities = ("image",)

    def _init_weights(self, module: nn.Module) -> None:
        # `transformers.initialization` functions leave tensors loaded from a checkpoint untouched.
        if isinstance(module, nn.Conv2d):
            init.trunc_normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    def _features_to_grid(self, features: torch.Tensor, grid_size: tuple[int, int] | None) -> torch.Tensor:
        """Check `features` and return them as a `(batch_size, hidden_size, height_patches, width_patches)` map."""
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"`features` must be a torch.Tensor, got {type(features).__name__}.")
        if not features.is_floating_point():
            raise ValueError(f"`features` must be a floating-point tensor, got dtype {features.dtype}.")
        hidden_size = self.config.hidden_size
        if features.ndim == 3:
            # (batch_size, num_patches, hidden_size), patches in raster order
            batch_size, num_patches, feature_size = features.shape
            if feature_size != hidden_size:
                raise ValueError(
                    f"`features` has hidden size {feature_size} (shape {tuple(features.shape)}), but the head "
                    f"expects hidden_size={hidden_size}."
                )
            if grid_size is None:
                raise ValueError(
                    "`grid_size=(height_patches, width_patches)` is required when `features` has shape "
                    f"(batch_size, num_patches, hidden_size); got features of shape {tuple(features.shape)}."
                )
            height_patches, width_patches = _size_pair("grid_size", grid_size)
            if height_patches * width_patches != num_patches:
                raise ValueError(
                    f"`grid_size={(height_patches, width_patches)}` holds {height_patches * width_patches} patches, "
                    f"but `features` has num_patches={num_patches}."
                )
            # (batch_size, num_patches, hidden_size) -> (batch_size, hidden_size, height_patches, width_patches)
            return features.transpose(1, 2).reshape(batch_size, hidden_size, height_patches, width_patches)
        if features.ndim == 4:
            # (batch_size, hidden_size, height_patches, width_patches)
            if features.shape[1] != hidden_size:
                raise ValueError(
                    f"`features` of shape {tuple(features.shape)} has {features.shape[1]} channels, but the head "
                    f"expects hidden_size={hidden_size} channels (dim 1)."
                )
            if grid_size is not None and _size_pair("grid_size", grid_size) != tuple(features.shape[-2:]):
                raise ValueError(
                    f"`grid_size={tuple(grid_size)}` disagrees with the spatial size {tuple(features.shape[-2:])} "
                    "of `features`."
                )
            return features
        raise ValueError(
            "`features` must have shape (batch_size, num_patches, hidden_size) or (batch_size, hidden_size, "
            f"height_patches, width_patches), got shape {tuple(features.shape)}."
        )

    @staticmethod
    def _resize(maps: torch.Tensor, output_size: tuple[int, int] | None) -> torch.Tensor:
        """Bilinearly resize `(batch_size, channels, h, w)` maps to `output_size`, like the official evaluation."""
        if output_size is None:
            return maps
        output_size = _size_pair("output_size", output_size)
        return F.interpolate(maps, size=output_size, mode="bilinear", align_corners=False)


class DeltaTokSegmentationHead(DeltaTokHeadPreTrainedModel):
    r"""
    Linear semantic-segmentation probe on patch features: `head(bn(features))`, with `bn` a `BatchNorm2d` and `head` a
    1x1 `Conv2d` to `num_classes` logits. The official heads are trained on frozen DINOv3 features of real frames
    and then applied, frozen and in eval mode, to forecast features.
    """

    config_class = DeltaTokSegmentationHeadConfig

    def __init__(self, config: DeltaTokSegmentationHeadConfig):
        super().__init__(config)
        self.bn = nn.BatchNorm2d(config.hidden_size, eps=config.batch_norm_eps)
        self.head = nn.Conv2d(config.hidden_size, config.num_labels, kernel_size=1)
        self.post_init()

    def forward(
        self,
        features: torch.Tensor,
        grid_size: tuple[int, int] | None = None,
        output_size: tuple[int, int] | None = None,
        return_dict: bool | None = None,
    ) -> DeltaTokSegmentationHeadOutput | tuple[torch.Tensor]:
        r"""
        Args:
            features (`torch.FloatTensor`):
                Patch features of shape `(batch_size, num_patches, hidden_size)` in raster order, or a feature map of
                shape `(batch_size, hidden_size, height_patches, width_patches)`.
            grid_size (`tuple[int, int]`, *optional*):
                `(height_patches, width_patches)`; required for `(batch_size, num_patches, hidden_size)` input.
            output_size (`tuple[int, int]`, *optional*):
                `(height, width)` of the labels; the logits are bilinearly upsampled to it (`align_corners=False`).
                Without it, the logits stay on the patch grid.
            return_dict (`bool`, *optional*):
                Return a [`DeltaTokSegmentationHeadOutput`] (default) instead of a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        feature_map = self._features_to_grid(features, grid_size).to(self.head.weight.dtype)
        # (batch_size, hidden_size, h, w) -> (batch_size, num_classes, h, w)
        logits = self.head(self.bn(feature_map))
        # (batch_size, num_classes, h, w) -> (batch_size, num_classes, height, width)
        logits = self._resize(logits, output_size)
        if not return_dict:
            return (logits,)
        return DeltaTokSegmentationHeadOutput(logits=logits)


class DeltaTokDepthHead(DeltaTokHeadPreTrainedModel):
    r"""
    Binned metric-depth probe on patch features. Per patch, `logits = head(bn(features))` over `num_bins` bins;
    `weights = relu(logits) + bin_weight_eps`, normalised to sum to one over the bins (not a softmax); the depth is
    `sum_k weights_k * bin_k` with bin centres `linspace(min_depth, max_depth, num_bins)`.
    """

    config_class = DeltaTokDepthHeadConfig

    def __init__(self, config: DeltaTokDepthHeadConfig):
        super().__init__(config)
        self.bn = nn.BatchNorm2d(config.hidden_size, eps=config.batch_norm_eps)
        self.head = nn.Conv2d(config.hidden_size, config.num_bins, kernel_size=1)
        self.post_init()

    def bin_centres(self, device: torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Depth of each bin, shape `(num_bins,)`: `linspace(min_depth, max_depth, num_bins)`."""
        return torch.linspace(
            self.config.min_depth, self.config.max_depth, self.config.num_bins, device=device, dtype=dtype
        )

    def forward(
        self,
        features: torch.Tensor,
        grid_size: tuple[int, int] | None = None,
        output_size: tuple[int, int] | None = None,
        return_dict: bool | None = None,
    ) -> DeltaTokDepthHeadOutput | tuple[torch.Tensor]:
        r"""
        Args:
            features (`torch.FloatTensor`):
                Patch features of shape `(batch_size, num_patches, hidden_size)` in raster order, or a feature map of
                shape `(batch_size, hidden_size, height_patches, width_patches)`.
            grid_size (`tuple[int, int]`, *optional*):
                `(height_patches, width_patches)`; required for `(batch_size, num_patches, hidden_size)` input.
            output_size (`tuple[int, int]`, *optional*):
                `(height, width)` of the labels. The depth is computed on the patch grid first, then the depth map
                is bilinearly upsampled to it (`align_corners=False`), as in the official evaluation.
            return_dict (`bool`, *optional*):
                Return a [`DeltaTokDepthHeadOutput`] (default) instead of a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        feature_map = self._features_to_grid(features, grid_size).to(self.head.weight.dtype)
        # (batch_size, hidden_size, h, w) -> (batch_size, num_bins, h, w)
        logits = self.head(self.bn(feature_map))
        bin_weights = torch.relu(logits) + self.config.bin_weight_eps
        bin_weights = bin_weights / bin_weights.sum(dim=1, keepdim=True)
        bins = self.bin_centres(device=logits.device, dtype=logits.dtype)
        # (batch_size, num_bins, h, w) -> (batch_size, 1, h, w)
        predicted_depth = torch.einsum("bkhw,k->bhw", bin_weights, bins).unsqueeze(1)
        # (batch_size, 1, h, w) -> (batch_size, 1, height, width)
        predicted_depth = self._resize(predicted_depth, output_size)
        if not return_dict:
            return (predicted_depth,)
        return DeltaTokDepthHeadOutput(predicted_depth=predicted_depth)


__all__ = [
    "DeltaTokDepthHead",
    "DeltaTokDepthHeadOutput",
    "DeltaTokHeadPreTrainedModel",
    "DeltaTokSegmentationHead",
    "DeltaTokSegmentationHeadOutput",
]
