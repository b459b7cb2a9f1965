"""Configurations of the DeltaTok task heads (segmentation and depth) that read frozen patch features."""

from transformers import PreTrainedConfig

from ..deltatok.configuration_deltatok import (
    DeltaTokCheckedConfigMixin,
    check_positive_float,
    check_positive_int,
)


class DeltaTokSegmentationHeadConfig(DeltaTokCheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`DeltaTokSegmentationHead`], the linear probe the DeltaTok paper uses to read semantic
    segmentation out of (forecast) vision-foundation-model patch features: `BatchNorm2d` then a 1x1 convolution.

    Args:
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the patch features the head reads (768 for DINOv3 ViT-B/16).
        num_labels (`int`, *optional*, defaults to 19):
            Number of semantic classes (19 for Cityscapes, 124 for VSPW in the official evaluation).
            `num_classes` is accepted as an alias. Ignored when `id2label` is given.
        id2label (`dict[int, str]`, *optional*):
            Class names; its length sets the number of classes.
        ignore_index (`int`, *optional*, defaults to 255):
            Label value that marks pixels excluded from evaluation.
        batch_norm_eps (`float`, *optional*, defaults to 1e-05):
            Epsilon of the `BatchNorm2d` layer (PyTorch's default, which the official heads use).

    Example:

    ```python
    >>> from deltatok_hf.models.heads import DeltaTokSegmentationHead, DeltaTokSegmentationHeadConfig

    >>> config = DeltaTokSegmentationHeadConfig(hidden_size=768, num_classes=19)
    >>> head = DeltaTokSegmentationHead(config)
    ```"""

    model_type = "deltatok-segmentation-head"

    hidden_size: int = 768
    ignore_index: int = 255
    batch_norm_eps: float = 1e-5

    def __post_init__(self, **kwargs):
        num_classes = kwargs.pop("num_classes", None)
        if num_classes is not None:
            if kwargs.get("num_labels") is not None and kwargs["num_labels"] != num_classes:
                raise ValueError(
                    f"`num_classes={num_classes}` and `num_labels={kwargs['num_labels']}` disagree; pass only one."
                )
            kwargs["num_labels"] = num_classes
        if self.id2label is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = 19
        if self.id2label is None:
            check_positive_int("num_labels", kwargs["num_labels"])
        super().__post_init__(**kwargs)
        self.check_values()

    def check_values(self) -> None:
        """Raise `ValueError` naming the first field out of range."""
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_float("batch_norm_eps", self.batch_norm_eps)
        if isinstance(self.ignore_index, bool) or not isinstance(self.ignore_index, int):
            raise ValueError(f"`ignore_index` must be an integer, got {self.ignore_index!r}.")
        if not self.id2label:
            raise ValueError(f"`id2label` must name at least one class, got {self.id2label!r}.")

    @property
    def num_classes(self) -> int:
        """Number of semantic classes (an alias of `num_labels`)."""
        return self.num_labels


class DeltaTokDepthHeadConfig(DeltaTokCheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`DeltaTokDepthHead`], the probe the DeltaTok paper uses to read metric depth out of patch
    features: `BatchNorm2d`, a 1x1 convolution to `num_bins` logits, and the expectation of the depth over
    `num_bins` bin centres spaced linearly in `[min_depth, max_depth]`, weighted by `relu(logits) + bin_weight_eps`
    normalised to sum to one (not a softmax).

    Args:
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the patch features the head reads.
        num_bins (`int`, *optional*, defaults to 256):
            Number of depth bins.
        min_depth (`float`, *optional*, defaults to 0.001):
            Centre of the first bin, in metres (KITTI's `MIN_DEPTH` in the official code).
        max_depth (`float`, *optional*, defaults to 80.0):
            Centre of the last bin, in metres (KITTI's `MAX_DEPTH` in the official code).
        bin_weight_eps (`float`, *optional*, defaults to 0.1):
            Constant added to `relu(logits)` before normalising the bin weights (the official `eps`).
        batch_norm_eps (`float`, *optional*, defaults to 1e-05):
            Epsilon of the `BatchNorm2d` layer.

    Example:

    ```python
    >>> from deltatok_hf.models.heads import DeltaTokDepthHead, DeltaTokDepthHeadConfig

    >>> head = DeltaTokDepthHead(DeltaTokDepthHeadConfig(hidden_size=768))
    ```"""

    model_type = "deltatok-depth-head"

    hidden_size: int = 768
    num_bins: int = 256
    min_depth: float = 1e-3
    max_depth: float = 80.0
    bin_weight_eps: float = 0.1
    batch_norm_eps: float = 1e-5

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_values()

    def check_values(self) -> None:
        """Raise `ValueError` naming the first field out of range."""
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_bins", self.num_bins)
        check_positive_float("min_depth", self.min_depth)
        check_positive_float("max_depth", self.max_depth)
        check_positive_float("bin_weight_eps", self.bin_weight_eps)
        check_positive_float("batch_norm_eps", self.batch_norm_eps)
        if self.min_depth >= self.max_depth:
            raise ValueError(
                f"`min_depth` must be smaller than `max_depth`, got min_depth={self.min_depth!r} and "
                f"max_depth={self.max_depth!r}."
            )


__all__ = ["DeltaTokDepthHeadConfig", "DeltaTokSegmentationHeadConfig"]
