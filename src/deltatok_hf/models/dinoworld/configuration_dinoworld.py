"""Configuration of the DINO-world baseline (steps 0 and 1 of the paper's ablation ladder)."""

from __future__ import annotations

from transformers import DINOv3ViTConfig, PretrainedConfig

from ..deltatok.configuration_deltatok import (
    DINOV3_VITB16_CONFIG,
    DINOV3_VITB16_ID,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeltaTokConfig,
)


class DinoWorldConfig(PretrainedConfig):
    r"""
    Configuration of a [`DinoWorldForForecasting`]: a frozen DINOv3 backbone plus a cross-attention predictor over the
    full grid of patch features (no tokenizer). Defaults are the official `DINOWorld` settings at ViT-B sizes
    (`models/dinoworld.py` of github.com/amazon-far/deltatok).

    Args:
        backbone_config (`DINOv3ViTConfig` or `dict`, *optional*):
            The frozen vision foundation model. Defaults to DINOv3 ViT-B/16.
        backbone_name_or_path (`str`, *optional*):
            Hub id or local path of the backbone weights, loaded by `from_pretrained` when a checkpoint holds only the
            predictor (the official checkpoint filter keeps `predictor.*` and `q_embed.weight`). Defaults to the DINOv3
            ViT-B/16 id when `backbone_config` is not given.
        use_rope_augmentation (`bool`, *optional*, defaults to `True`):
            In train mode the frozen backbone follows the train mode, which turns on DINOv3's RoPE coordinate rescale
            (as the official training did). `False` keeps the backbone in eval mode.
        image_mean / image_std (`tuple[float]`, *optional*, default to ImageNet):
            Normalisation applied after scaling frames from 0..255 to 0..1.
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the predictor (`Dp`).
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of cross-attention blocks.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per block.
        intermediate_size (`int`, *optional*):
            MLP width; defaults to `hidden_size * mlp_ratio`.
        mlp_ratio (`int`, *optional*, defaults to 4):
            MLP width as a multiple of `hidden_size` when `intermediate_size` is not given.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            MLP activation.
        rope_axis_sizes (`tuple[int]`, *optional*, defaults to `(20, 20, 20)`):
            Head dims rotated by the (time, w, h) axes, in this order: columns (w) before rows (h).
        rope_unrotated_size (`int`, *optional*, defaults to 4):
            Trailing head dims left unrotated; `sum(rope_axis_sizes) + rope_unrotated_size` must equal the head size.
        rope_min_exponent / rope_max_exponent (`float`, *optional*, default to -2 / 2):
            Frequencies of each axis are `1 / 10**linspace(min, max, axis_size // 2)` per unit (seconds for time, half
            grid widths for w and h).
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every predictor LayerNorm.
        layer_scale_init (`float`, *optional*, defaults to 1e-5):
            Initial LayerScale value.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the truncated-normal initialisation of the predictor and the learned query.
        noise_std (`float`, *optional*, defaults to 0.02):
            Std of the noise queries (the backbone's `initializer_range` in the official code).
        use_best_of_many (`bool`, *optional*, defaults to `False`):
            `False` is DINO-world as published (step 0): one learned query shared by every patch and frame, one
            future. `True` is step 1: one noise query per sampled future and frame, trained with Best-of-Many.
        num_samples_train (`int`, *optional*, defaults to 16):
            Best-of-Many candidates `K` per target frame.
        num_samples_eval (`int`, *optional*, defaults to 20):
            Default number of sampled futures at inference (Best-of-Many only).
        smooth_l1_beta (`float`, *optional*, defaults to 0.1):
            `β` of the smooth-L1 loss, used for the training loss and to pick the Best-of-Many winner.
        candidate_chunk_size (`int`, *optional*, defaults to 4):
            Best-of-Many candidates per target frame scored in one predictor pass (under `no_grad`). Each candidate is
            `num_patches` query tokens, so scoring all `K` at once makes the step's peak memory grow with `K` (2.75x
            step 0's at K = 16, mid size, `examples/ablation/README.md`); 4 at a time keeps it at 1.12x. `None` scores
            all `K` in one pass, as the official code. The winners and the loss are the same (tested, and the golden
            tensors pass either way).
    """

    model_type = "dinoworld"
    sub_configs = {"backbone_config": DINOv3ViTConfig}

    def __init__(
        self,
        backbone_config: DINOv3ViTConfig | dict | None = None,
        backbone_name_or_path: str | None = None,
        use_rope_augmentation: bool = True,
        image_mean: tuple[float, float, float] | list[float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] | list[float] = IMAGENET_STD,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int | None = None,
        mlp_ratio: int = 4,
        hidden_act: str = "gelu",
        rope_axis_sizes: tuple[int, ...] | list[int] = (20, 20, 20),
        rope_unrotated_size: int = 4,
        rope_min_exponent: float = -2.0,
        rope_max_exponent: float = 2.0,
        layer_norm_eps: float = 1e-5,
        layer_scale_init: float = 1e-5,
        initializer_range: float = 0.02,
        noise_std: float = 0.02,
        use_best_of_many: bool = False,
        num_samples_train: int = 16,
        num_samples_eval: int = 20,
        smooth_l1_beta: float = 0.1,
        candidate_chunk_size: int | None = 4,
        **kwargs,
    ):
        if backbone_config is None:
            backbone_config = DINOv3ViTConfig(**DINOV3_VITB16_CONFIG)
            if backbone_name_or_path is None:
                backbone_name_or_path = DINOV3_VITB16_ID
        elif isinstance(backbone_config, dict):
            backbone_config = DINOv3ViTConfig(**{k: v for k, v in backbone_config.items() if k != "model_type"})
        elif not isinstance(backbone_config, DINOv3ViTConfig):
            raise TypeError(
                f"backbone_config must be a DINOv3ViTConfig or a dict, got {type(backbone_config).__name__}."
            )
        if len(image_mean) != 3 or len(image_std) != 3 or any(value <= 0 for value in image_std):
            raise ValueError(
                f"image_mean and image_std need 3 values (RGB) with positive stds, got {image_mean!r} and {image_std!r}."
            )
        if not isinstance(hidden_size, int) or not isinstance(num_attention_heads, int):
            raise ValueError(f"hidden_size and num_attention_heads must be integers, got {hidden_size!r}, {num_attention_heads!r}.")
        if hidden_size < 1 or num_attention_heads < 1 or hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be a positive multiple of num_attention_heads={num_attention_heads}."
            )
        if not isinstance(num_hidden_layers, int) or num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers must be a positive integer, got {num_hidden_layers!r}.")
        rope_axis_sizes = [int(size) for size in rope_axis_sizes]
        if len(rope_axis_sizes) != 3 or any(size <= 0 or size % 2 for size in rope_axis_sizes):
            raise ValueError(
                f"rope_axis_sizes must be three positive even sizes (time, w, h), got {rope_axis_sizes}."
            )
        head_size = hidden_size // num_attention_heads
        if sum(rope_axis_sizes) + rope_unrotated_size != head_size:
            raise ValueError(
                f"RoPE sizes must add up to the head size: {rope_axis_sizes} + {rope_unrotated_size} = "
                f"{sum(rope_axis_sizes) + rope_unrotated_size}, but head size = {hidden_size} // "
                f"{num_attention_heads} = {head_size}."
            )
        for name, value in (("num_samples_train", num_samples_train), ("num_samples_eval", num_samples_eval)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if candidate_chunk_size is not None and (
            not isinstance(candidate_chunk_size, int) or candidate_chunk_size < 1
        ):
            raise ValueError(f"candidate_chunk_size must be None or an integer >= 1, got {candidate_chunk_size!r}.")
        if noise_std <= 0:
            raise ValueError(f"noise_std must be positive, got {noise_std}.")
        if smooth_l1_beta < 0:
            raise ValueError(f"smooth_l1_beta must be >= 0, got {smooth_l1_beta}.")

        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.use_rope_augmentation = use_rope_augmentation
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.mlp_ratio = mlp_ratio
        self.intermediate_size = intermediate_size if intermediate_size is not None else hidden_size * mlp_ratio
        self.hidden_act = hidden_act
        self.rope_axis_sizes = rope_axis_sizes
        self.rope_unrotated_size = rope_unrotated_size
        self.rope_min_exponent = rope_min_exponent
        self.rope_max_exponent = rope_max_exponent
        self.layer_norm_eps = layer_norm_eps
        self.layer_scale_init = layer_scale_init
        self.initializer_range = initializer_range
        self.noise_std = noise_std
        self.use_best_of_many = use_best_of_many
        self.num_samples_train = num_samples_train
        self.num_samples_eval = num_samples_eval
        self.smooth_l1_beta = smooth_l1_beta
        self.candidate_chunk_size = candidate_chunk_size
        super().__init__(**kwargs)

    @property
    def feature_size(self) -> int:
        """Width `D` of the backbone patch features (context tokens and predictions)."""
        return self.backbone_config.hidden_size

    @property
    def delta_token_size(self) -> int:
        # The name under which the shared DeltaWorld predictor layers read the width of the context tokens and of the
        # head output. Here those are patch features, not delta tokens.
        return self.feature_size

    @property
    def patch_size(self) -> int:
        patch_size = self.backbone_config.patch_size
        return patch_size if isinstance(patch_size, int) else patch_size[0]

    @property
    def num_prefix_tokens(self) -> int:
        """CLS plus register tokens, dropped from the backbone output."""
        return 1 + self.backbone_config.num_register_tokens

    @classmethod
    def tiny(cls, **kwargs) -> "DinoWorldConfig":
        """The `tiny` preset of the reference tensors: the tiny DINOv3, a 64-wide 2-block predictor, RoPE 4+4+4 (+4)."""
        defaults = {
            "backbone_config": DeltaTokConfig.tiny().backbone_config,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "rope_axis_sizes": (4, 4, 4),
            "rope_unrotated_size": 4,
            "mlp_ratio": 2,
        }
        defaults.update(kwargs)
        return cls(**defaults)


__all__ = ["DinoWorldConfig"]
