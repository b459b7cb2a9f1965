"""Configuration of the DINO-world baseline (steps 0 and 1 of the paper's ablation ladder)."""

from __future__ import annotations

from transformers import DINOv3ViTConfig, PretrainedConfig

from ..deltatok.configuration_deltatok import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeltaTokBackboneGeometryMixin,
    DeltaTokCheckedConfigMixin,
    DeltaTokConfig,
    resolve_backbone_config,
)
from ..deltaworld.configuration_deltaworld import DeltaWorldPredictorConfigMixin


class DinoWorldConfig(
    DeltaTokBackboneGeometryMixin, DeltaWorldPredictorConfigMixin, DeltaTokCheckedConfigMixin, PretrainedConfig
):
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
    # Columns (w) before rows (h), as the official code.
    rope_axis_names = ("time", "w", "h")

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
        backbone_config, backbone_name_or_path = resolve_backbone_config(backbone_config, backbone_name_or_path)
        # Stored as given and checked by `check_values` (also after `from_pretrained` overrides), then made lists.
        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.use_rope_augmentation = use_rope_augmentation
        self.image_mean = image_mean
        self.image_std = image_std
        self._set_predictor_fields(locals())
        self.check_values()
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        super().__init__(**kwargs)

    def check_values(self) -> None:
        """Raise `ValueError` naming the first field out of range."""
        image_mean, image_std = self.image_mean, self.image_std
        if len(image_mean) != 3 or len(image_std) != 3 or any(value <= 0 for value in image_std):
            raise ValueError(
                f"image_mean and image_std need 3 values (RGB) with positive stds, got {image_mean!r} and {image_std!r}."
            )
        self._check_predictor_values()

    @property
    def feature_size(self) -> int:
        """Width `D` of the backbone patch features (context tokens and predictions)."""
        return self.backbone_config.hidden_size

    @property
    def delta_token_size(self) -> int:
        # The name under which the shared DeltaWorld predictor layers read the width of the context tokens and of the
        # head output. Here those are patch features, not delta tokens.
        return self.feature_size

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
