"""Configuration of the RGB decoder that turns a grid of frozen backbone features into pixels."""

from __future__ import annotations

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

from ..deltatok.configuration_deltatok import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeltaTokCheckedConfigMixin,
    check_finite_number,
    check_positive_float,
    check_positive_int,
)


class DeltaTokRGBDecoderConfig(DeltaTokCheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`DeltaTokRGBDecoder`]: a ViT that maps a grid of backbone patch features to RGB pixels, one
    `patch_size x patch_size` tile per feature. Defaults are the released `rgb-head-imagenet` checkpoint of the
    official code (class `RGBHead` in `models/task_heads.py`, adapted there from the RAE decoder), which decodes
    DINOv3 ViT-B/16 features and was trained at 512x512 pixels.

    Args:
        feature_size (`int`, *optional*, defaults to 768):
            Width of the input patch features (768 for DINOv3 ViT-B/16).
        hidden_size (`int`, *optional*, defaults to 1152):
            Width of the decoder blocks.
        num_hidden_layers (`int`, *optional*, defaults to 28):
            Number of decoder blocks.
        num_attention_heads (`int`, *optional*, defaults to 16):
            Attention heads per block; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 4096):
            Width of the GELU MLP of every block.
        patch_size (`int`, *optional*, defaults to 16):
            Side in pixels of the tile decoded from one feature (the backbone's patch size).
        image_size (`int`, *optional*, defaults to 512):
            Side in pixels of the square images the decoder was trained on. It sets the fixed sin-cos position table
            (`image_size // patch_size` patches a side); other grids use a bicubic resize of that table.
        layer_norm_eps (`float`, *optional*, defaults to 1e-12):
            Epsilon of every LayerNorm of the decoder (the official value, inherited from ViT-MAE).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            MLP activation (`"gelu"` is the exact, erf-based GELU of the official head).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after attention and MLP in train mode (the official head has none).
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout of the attention probabilities in train mode (the official head has none).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the normal initialisation of linear weights and of the cls token for decoders trained from scratch.
        image_mean (`tuple[float]`, *optional*, defaults to the ImageNet mean):
            Per-channel mean added back to the decoded pixels (`pixels * image_std + image_mean`).
        image_std (`tuple[float]`, *optional*, defaults to the ImageNet std):
            Per-channel std the decoded pixels are multiplied by.

    Example:

    ```python
    >>> from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig

    >>> decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny())
    ```"""

    model_type = "deltatok_rgb_decoder"

    def __init__(
        self,
        feature_size: int = 768,
        hidden_size: int = 1152,
        num_hidden_layers: int = 28,
        num_attention_heads: int = 16,
        intermediate_size: int = 4096,
        patch_size: int = 16,
        image_size: int = 512,
        layer_norm_eps: float = 1e-12,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        initializer_range: float = 0.02,
        image_mean: tuple[float, float, float] | list[float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] | list[float] = IMAGENET_STD,
        **kwargs,
    ):
        self.feature_size = feature_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.patch_size = patch_size
        self.image_size = image_size
        self.layer_norm_eps = layer_norm_eps
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.image_mean = image_mean
        self.image_std = image_std
        self.check_values()
        self.image_mean = [float(value) for value in image_mean]
        self.image_std = [float(value) for value in image_std]
        # Read by the transformers ViT-MAE blocks the decoder is built from: the official projections all have a bias.
        if kwargs.pop("qkv_bias", True) is not True:
            raise ValueError("`qkv_bias` must be True: the official RGB head has biased query/key/value projections.")
        self.qkv_bias = True
        super().__init__(**kwargs)

    def check_values(self) -> None:
        """Raise `ValueError` naming the first field out of range."""
        for name in (
            "feature_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "patch_size",
            "image_size",
        ):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"`hidden_size={self.hidden_size}` must be divisible by `num_attention_heads={self.num_attention_heads}`."
            )
        if self.hidden_size % 4:
            # The 2-D sin-cos table spends a quarter of the width on each of sin/cos of the row and column.
            raise ValueError(f"`hidden_size` must be a multiple of 4 (2-D sin-cos table), got {self.hidden_size}.")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"`image_size={self.image_size}` must be a multiple of `patch_size={self.patch_size}` (the trained grid)."
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"`hidden_act` must be a transformers activation ({sorted(ACT2FN)}), got {self.hidden_act!r}.")
        check_positive_float("layer_norm_eps", self.layer_norm_eps)
        check_positive_float("initializer_range", self.initializer_range)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            check_finite_number(name, getattr(self, name), minimum=0, strict=False)
            if not getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be < 1, got {getattr(self, name)!r}.")
        for name in ("image_mean", "image_std"):
            values = getattr(self, name)
            if not isinstance(values, (list, tuple)) or len(values) != 3:
                raise ValueError(f"`{name}` needs 3 values (RGB), got {values!r}.")
            for value in values:
                (check_positive_float if name == "image_std" else check_finite_number)(name, value)

    @property
    def trained_grid_size(self) -> int:
        """Patches per side of the square grid the decoder was trained on (`image_size // patch_size`)."""
        return self.image_size // self.patch_size

    @classmethod
    def tiny(cls, **kwargs) -> "DeltaTokRGBDecoderConfig":
        """The sizes of the golden tensors in `shared/reference/rgb_head/`: 64 wide, 2 blocks, 4 heads, 64 px."""
        defaults = {
            "feature_size": 64,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "patch_size": 16,
            "image_size": 64,
        }
        defaults.update(kwargs)
        return cls(**defaults)


__all__ = ["DeltaTokRGBDecoderConfig"]
