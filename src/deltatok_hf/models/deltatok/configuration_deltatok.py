"""Configuration of the DeltaTok tokenizer."""

from __future__ import annotations

import math

from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import DINOv3ViTConfig, PretrainedConfig

# The DINOv3 ViT-B/16 configuration (facebook/dinov3-vitb16-pretrain-lvd1689m). The paper's backbone,
# and the template from which the official code sizes the tokenizer and predictor blocks.
DINOV3_VITB16_CONFIG = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_register_tokens": 4,
    "patch_size": 16,
    "image_size": 224,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "layerscale_value": 1.0,
    "rope_theta": 100.0,
    "query_bias": True,
    "key_bias": False,
    "value_bias": True,
    "proj_bias": True,
    "mlp_bias": True,
    "pos_embed_rescale": 2.0,
    "initializer_range": 0.02,
}
DINOV3_VITB16_ID = "facebook/dinov3-vitb16-pretrain-lvd1689m"
# The template's MLP width. With SwiGLU the official code keeps two thirds of it whatever the backbone.
TEMPLATE_INTERMEDIATE_SIZE = 3072
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RECONSTRUCTION_LOSSES = ("mse", "log_cosh")
ROLLOUT_MODES = ("closed_loop", "parallel")


# Value checks shared by every config of the package. A config is checked when it is built, which is also when a
# `config.json` is loaded (`from_dict` calls the constructor), so a bad file fails before any weight is read.
def check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_non_negative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")


def check_finite_number(name: str, value: object, minimum: float | None = None, strict: bool = True) -> None:
    """A finite real number, optionally `> minimum` (`strict`) or `>= minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"`{name}` must be {'>' if strict else '>='} {minimum}, got {value!r}.")


def check_positive_float(name: str, value: object) -> None:
    check_finite_number(name, value, minimum=0)


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")


class DeltaTokCheckedConfigMixin:
    """
    Runs `check_values()` once more after `from_pretrained` / `from_dict` applied keyword overrides: transformers sets
    those with `setattr` after the constructor, so without this `from_pretrained(path, num_samples_train=0)` would
    slip through.
    """

    def check_values(self) -> None:
        # Abstract hook: every config class using this mixin defines its own checks.
        raise NotImplementedError(f"{type(self).__name__} must define check_values().")

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        result = super().from_dict(config_dict, **kwargs)
        config = result[0] if isinstance(result, tuple) else result
        config.check_values()
        return result


def resolve_backbone_config(
    backbone_config: DINOv3ViTConfig | dict | None, backbone_name_or_path: str | None
) -> tuple[DINOv3ViTConfig, str | None]:
    """
    `backbone_config` as given (a `DINOv3ViTConfig` or its dict) or DINOv3 ViT-B/16 by default, whose weights then
    default to the ViT-B/16 Hub id. Shared by every config holding a backbone (DeltaTok, DINO-world).
    """
    if backbone_config is None:
        backbone_config = DINOv3ViTConfig(**DINOV3_VITB16_CONFIG)
        if backbone_name_or_path is None:
            backbone_name_or_path = DINOV3_VITB16_ID
    elif isinstance(backbone_config, dict):
        try:
            backbone_config = DINOv3ViTConfig(**{k: v for k, v in backbone_config.items() if k != "model_type"})
        except StrictDataclassFieldValidationError as error:
            # transformers' strict dataclass error is no ValueError/TypeError; name the nested field instead.
            raise TypeError(f"backbone_config: {error.__cause__}") from error
    elif not isinstance(backbone_config, DINOv3ViTConfig):
        raise TypeError(
            f"backbone_config must be a DINOv3ViTConfig or a dict, got {type(backbone_config).__name__}."
        )
    return backbone_config, backbone_name_or_path


class DeltaTokBackboneGeometryMixin:
    """Patch geometry that always follows the backbone (`self.backbone_config`), for every config holding one."""

    @property
    def patch_size(self) -> int:
        patch_size = self.backbone_config.patch_size
        return patch_size if isinstance(patch_size, int) else patch_size[0]

    @property
    def num_prefix_tokens(self) -> int:
        """CLS plus register tokens, dropped from the backbone output."""
        return 1 + self.backbone_config.num_register_tokens


class DeltaTokConfig(DeltaTokBackboneGeometryMixin, DeltaTokCheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`DeltaTokModel`]: a frozen DINOv3 backbone plus the delta-token encoder and decoder.

    Every default is the setting of the released `deltatok-kinetics` checkpoint. Hidden size, number of heads and patch
    size of the tokenizer blocks are taken from the backbone.

    Args:
        backbone_config (`DINOv3ViTConfig` or `dict`, *optional*):
            Configuration of the frozen vision foundation model. Defaults to DINOv3 ViT-B/16.
        backbone_name_or_path (`str`, *optional*):
            Hub id or local path of backbone weights. [`DeltaTokModel.from_pretrained`] loads the backbone from here
            when the checkpoint does not contain it (the official releases do not).
        num_encoder_layers (`int`, *optional*, defaults to 12):
            Number of encoder blocks.
        num_decoder_layers (`int`, *optional*, defaults to 12):
            Number of decoder blocks.
        use_delta (`bool`, *optional*, defaults to `True`):
            `True` encodes the pair `(x_{t-1}, x_t)` and decodes from `x_{t-1}` (delta tokens). `False` is the
            frame-token ablation: the encoder sees `x_t` alone and the decoder starts from a learned constant.
        use_swiglu (`bool`, *optional*, defaults to `True`):
            SwiGLU MLP (`gate_proj`, `up_proj`, `down_proj`) instead of a GELU MLP.
        intermediate_size (`int`, *optional*):
            MLP width. Defaults to the official sizing from the ViT-B template: 2048 with SwiGLU, 3072 without.
        use_qk_norm (`bool`, *optional*, defaults to `True`):
            Bias-free LayerNorm over each head of queries and keys, applied after RoPE.
        use_gated_attention (`bool`, *optional*, defaults to `True`):
            Per-head sigmoid gate on the attention output, computed from the normed block input.
        key_bias (`bool`, *optional*, defaults to `False`):
            Bias on the key projection (off in DINOv3 and in the released tokenizer).
        layer_scale_init (`float`, *optional*, defaults to 1e-5):
            Initial LayerScale value.
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every LayerNorm of the tokenizer, the qk-norms included.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the truncated-normal initialisation of linear layers and embeddings.
        rope_theta (`float`, *optional*, defaults to 100.0):
            Base period of the 2-D patch RoPE.
        use_rope_augmentation (`bool`, *optional*, defaults to `True`):
            In train mode, rescale the RoPE patch coordinates by a log-uniform factor in
            `[1/rope_rescale, rope_rescale]`, in the tokenizer and in the frozen backbone. The official training did
            this (it put the frozen backbone in train mode); `False` keeps both deterministic.
        rope_rescale (`float`, *optional*, defaults to 2.0):
            Range of the RoPE rescale augmentation.
        image_mean (`tuple[float]`, *optional*, defaults to ImageNet mean):
            Per-channel mean applied after scaling frames from 0..255 to 0..1.
        image_std (`tuple[float]`, *optional*, defaults to ImageNet std):
            Per-channel std.
        reconstruction_loss (`str`, *optional*, defaults to `"log_cosh"`):
            `"log_cosh"` (the released recipe, `training/deltatok.py` of the official code) or `"mse"` (the paper).
        rollout_mode (`str`, *optional*, defaults to `"closed_loop"`):
            How [`DeltaTokModel.reconstruct`] runs several steps: `"closed_loop"` encodes each step from the previous
            reconstruction (what the official evaluation code does), `"parallel"` encodes every step from
            ground-truth pairs and only decodes step by step (what the official README footnote describes).
    """

    model_type = "deltatok"
    sub_configs = {"backbone_config": DINOv3ViTConfig}

    def __init__(
        self,
        backbone_config: DINOv3ViTConfig | dict | None = None,
        backbone_name_or_path: str | None = None,
        num_encoder_layers: int = 12,
        num_decoder_layers: int = 12,
        use_delta: bool = True,
        use_swiglu: bool = True,
        intermediate_size: int | None = None,
        use_qk_norm: bool = True,
        use_gated_attention: bool = True,
        key_bias: bool = False,
        layer_scale_init: float = 1e-5,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        rope_theta: float = 100.0,
        use_rope_augmentation: bool = True,
        rope_rescale: float = 2.0,
        image_mean: tuple[float, float, float] | list[float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] | list[float] = IMAGENET_STD,
        reconstruction_loss: str = "log_cosh",
        rollout_mode: str = "closed_loop",
        **kwargs,
    ):
        backbone_config, backbone_name_or_path = resolve_backbone_config(backbone_config, backbone_name_or_path)
        hidden_size = kwargs.pop("hidden_size", None)
        if hidden_size is not None and hidden_size != backbone_config.hidden_size:
            raise ValueError(
                f"hidden_size={hidden_size} does not match the backbone's hidden_size={backbone_config.hidden_size}; "
                "the tokenizer width is always the backbone width."
            )
        if intermediate_size is None:
            intermediate_size = (2 * TEMPLATE_INTERMEDIATE_SIZE) // 3 if use_swiglu else TEMPLATE_INTERMEDIATE_SIZE

        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.use_delta = use_delta
        self.use_swiglu = use_swiglu
        self.intermediate_size = intermediate_size
        self.use_qk_norm = use_qk_norm
        self.use_gated_attention = use_gated_attention
        self.key_bias = key_bias
        self.layer_scale_init = layer_scale_init
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.rope_theta = rope_theta
        self.use_rope_augmentation = use_rope_augmentation
        self.rope_rescale = rope_rescale
        self.image_mean = image_mean
        self.image_std = image_std
        self.reconstruction_loss = reconstruction_loss
        self.rollout_mode = rollout_mode
        self.check_values()
        self.image_mean = [float(value) for value in image_mean]
        self.image_std = [float(value) for value in image_std]
        super().__init__(**kwargs)

    def check_values(self) -> None:
        """Raise `ValueError` naming the first field out of range (also the backbone's sizes the blocks copy)."""
        backbone = self.backbone_config
        for name in ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers"):
            check_positive_int(f"backbone_config.{name}", getattr(backbone, name))
        patch_size = backbone.patch_size
        for value in patch_size if isinstance(patch_size, (list, tuple)) else (patch_size,):
            check_positive_int("backbone_config.patch_size", value)
        check_non_negative_int("backbone_config.num_register_tokens", backbone.num_register_tokens)
        if backbone.hidden_size % backbone.num_attention_heads != 0:
            raise ValueError(
                f"backbone hidden_size={backbone.hidden_size} is not divisible by "
                f"num_attention_heads={backbone.num_attention_heads}."
            )
        head_size = backbone.hidden_size // backbone.num_attention_heads
        if head_size % 4 != 0:
            # The 2-D patch RoPE gives a quarter of every head to each of (row, column) x (cos, sin).
            raise ValueError(
                f"The 2-D patch RoPE needs a head size divisible by 4; backbone hidden_size={backbone.hidden_size} / "
                f"num_attention_heads={backbone.num_attention_heads} = {head_size}."
            )
        for name in ("num_encoder_layers", "num_decoder_layers", "intermediate_size"):
            check_positive_int(name, getattr(self, name))
        for name in ("use_delta", "use_swiglu", "use_qk_norm", "use_gated_attention", "key_bias", "use_rope_augmentation"):
            check_bool(name, getattr(self, name))
        check_positive_float("layer_norm_eps", self.layer_norm_eps)
        check_positive_float("rope_theta", self.rope_theta)
        check_finite_number("layer_scale_init", self.layer_scale_init)
        check_finite_number("initializer_range", self.initializer_range, minimum=0, strict=False)
        if self.rope_rescale is not None:
            check_finite_number("rope_rescale", self.rope_rescale, minimum=1, strict=False)
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}, got {self.reconstruction_loss!r}."
            )
        if self.rollout_mode not in ROLLOUT_MODES:
            raise ValueError(f"rollout_mode must be one of {ROLLOUT_MODES}, got {self.rollout_mode!r}.")
        for name in ("image_mean", "image_std"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != 3:
                raise ValueError(f"`{name}` needs 3 values (RGB), got {values!r}.")
            for value in values:
                if name == "image_std":
                    check_positive_float(name, value)
                else:
                    check_finite_number(name, value)

    # Sizes that always follow the backbone.
    @property
    def hidden_size(self) -> int:
        return self.backbone_config.hidden_size

    @property
    def num_attention_heads(self) -> int:
        return self.backbone_config.num_attention_heads

    @classmethod
    def tiny(cls, **kwargs) -> "DeltaTokConfig":
        """The `tiny` preset of the reference tensors: a 2-layer, 64-wide DINOv3 and 2 + 2 tokenizer blocks."""
        backbone = DINOv3ViTConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_register_tokens=1,
            patch_size=16,
            key_bias=False,
        )
        defaults = {"backbone_config": backbone, "num_encoder_layers": 2, "num_decoder_layers": 2}
        defaults.update(kwargs)
        return cls(**defaults)


__all__ = ["DeltaTokConfig", "DINOV3_VITB16_CONFIG", "DINOV3_VITB16_ID"]
