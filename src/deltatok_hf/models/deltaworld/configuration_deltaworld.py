"""Configuration of the DeltaWorld predictor."""

from __future__ import annotations

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

from ..deltatok.configuration_deltatok import (
    DeltaTokCheckedConfigMixin,
    DeltaTokConfig,
    check_bool,
    check_finite_number,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)


# The constructor arguments of the predictor, stored under the same names by every world-model config.
PREDICTOR_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "mlp_ratio",
    "intermediate_size",
    "hidden_act",
    "rope_axis_sizes",
    "rope_unrotated_size",
    "rope_min_exponent",
    "rope_max_exponent",
    "layer_norm_eps",
    "layer_scale_init",
    "initializer_range",
    "noise_std",
    "use_best_of_many",
    "num_samples_train",
    "num_samples_eval",
    "smooth_l1_beta",
    "candidate_chunk_size",
)


class DeltaWorldPredictorConfigMixin:
    """
    The predictor fields of every world model of the package (DeltaWorld, DINO-world share the predictor), how they
    are stored and how they are checked. The configs differ in the context (delta tokens or patch features) and in the
    RoPE axes.
    """

    # Names of the RoPE axes, one size each in `rope_axis_sizes`.
    rope_axis_names: tuple[str, ...] = ("time",)

    def _set_predictor_fields(self, arguments: dict) -> None:
        """Store the predictor fields from the constructor's arguments (its `locals()`)."""
        for name in PREDICTOR_FIELDS:
            setattr(self, name, arguments[name])
        if isinstance(self.rope_axis_sizes, (list, tuple)):
            self.rope_axis_sizes = list(self.rope_axis_sizes)
        if self.intermediate_size is None and isinstance(self.hidden_size, int) and isinstance(self.mlp_ratio, int):
            self.intermediate_size = self.hidden_size * self.mlp_ratio

    def _check_predictor_values(self) -> None:
        """Raise `ValueError` naming the first predictor field out of range."""
        for name in ("hidden_size", "num_attention_heads", "num_hidden_layers", "mlp_ratio", "intermediate_size"):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be a positive multiple of "
                f"num_attention_heads={self.num_attention_heads}."
            )
        rope_axis_sizes, axis_names = self.rope_axis_sizes, self.rope_axis_names
        if not isinstance(rope_axis_sizes, list) or len(rope_axis_sizes) != len(axis_names):
            count = ("one positive even size", "two positive even sizes", "three positive even sizes")[len(axis_names) - 1]
            raise ValueError(f"rope_axis_sizes must be {count} ({', '.join(axis_names)}), got {rope_axis_sizes!r}.")
        for index, size in enumerate(rope_axis_sizes):
            check_positive_int(f"rope_axis_sizes[{index}]", size)
        if any(size % 2 for size in rope_axis_sizes):
            raise ValueError(f"every RoPE axis size must be a positive even number, got {rope_axis_sizes}.")
        check_non_negative_int("rope_unrotated_size", self.rope_unrotated_size)
        head_size = self.hidden_size // self.num_attention_heads
        if sum(rope_axis_sizes) + self.rope_unrotated_size != head_size:
            raise ValueError(
                f"RoPE sizes must add up to the head size: {rope_axis_sizes} + {self.rope_unrotated_size} = "
                f"{sum(rope_axis_sizes) + self.rope_unrotated_size}, but head size = {self.hidden_size} // "
                f"{self.num_attention_heads} = {head_size}."
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"hidden_act must be one of the transformers activations, got {self.hidden_act!r}.")
        for name in ("rope_min_exponent", "rope_max_exponent", "layer_scale_init"):
            check_finite_number(name, getattr(self, name))
        for name in ("layer_norm_eps", "noise_std"):
            check_positive_float(name, getattr(self, name))
        check_finite_number("initializer_range", self.initializer_range, minimum=0, strict=False)
        check_finite_number("smooth_l1_beta", self.smooth_l1_beta, minimum=0, strict=False)
        check_bool("use_best_of_many", self.use_best_of_many)
        # `num_samples_train=0` is an error, never "use the default".
        check_positive_int("num_samples_train", self.num_samples_train)
        check_positive_int("num_samples_eval", self.num_samples_eval)
        if self.candidate_chunk_size is not None:
            check_positive_int("candidate_chunk_size", self.candidate_chunk_size)


class DeltaWorldConfig(DeltaWorldPredictorConfigMixin, DeltaTokCheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`DeltaWorldForForecasting`]: a frozen [`DeltaTokModel`] plus a cross-attention predictor over
    delta tokens. Defaults are the released `deltaworld-kinetics` settings (ViT-B sizes).

    Args:
        tokenizer_config (`DeltaTokConfig` or `dict`, *optional*):
            Configuration of the frozen tokenizer (with its backbone). Defaults to the ViT-B/16 DeltaTok.
        tokenizer_name_or_path (`str`, *optional*):
            Hub id or local path of DeltaTok weights, loaded by `from_pretrained` when the checkpoint holds only the
            predictor (as the official `deltaworld-kinetics` release does).
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the predictor (`Dp`); queries are this wide.
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of cross-attention blocks.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per block.
        intermediate_size (`int`, *optional*):
            MLP width; defaults to `hidden_size * mlp_ratio`.
        mlp_ratio (`int`, *optional*, defaults to 4):
            MLP width as a multiple of `hidden_size` when `intermediate_size` is not given.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            MLP activation (exact erf GELU in the released model).
        rope_axis_sizes (`tuple[int]`, *optional*, defaults to `(60,)`):
            Dims of every head rotated by the 1-D time RoPE (one axis: time).
        rope_unrotated_size (`int`, *optional*, defaults to 4):
            Trailing dims of every head left unrotated. `sum(rope_axis_sizes) + rope_unrotated_size` must equal the
            head size.
        rope_min_exponent / rope_max_exponent (`float`, *optional*, defaults to -2 / 2):
            Time-RoPE frequencies are `1 / 10**linspace(min, max, axis_size // 2)` cycles per second (100 Hz to 0.01 Hz).
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every predictor LayerNorm (the noise queries have variance 4e-4, so this matters).
        layer_scale_init (`float`, *optional*, defaults to 1e-5):
            Initial LayerScale value.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the truncated-normal initialisation.
        noise_std (`float`, *optional*, defaults to 0.02):
            Std `σ` of the noise queries `q ~ N(0, σ²I)` (the backbone's `initializer_range` in the official code).
        use_best_of_many (`bool`, *optional*, defaults to `True`):
            Noise queries trained with Best-of-Many. `False` is the deterministic (discriminative) ablation: one learned
            query, one future.
        num_samples_train (`int`, *optional*, defaults to 256):
            Candidates `K` per target in Best-of-Many training.
        num_samples_eval (`int`, *optional*, defaults to 20):
            Default number of sampled futures at inference.
        smooth_l1_beta (`float`, *optional*, defaults to 0.1):
            `β` of the smooth-L1 loss used both to pick the Best-of-Many winner and as the training loss.
        delta_token_size (`int`, *optional*):
            Width of the delta tokens; must equal the tokenizer's hidden size (checked), kept for explicit configs.
        candidate_chunk_size (`int`, *optional*, defaults to 4096):
            Most Best-of-Many candidate queries (summed over the batch and the targets) scored per predictor pass, under
            `no_grad`; a pass holds at least one candidate per target. Scoring all `batch x (num_frames - 1) x K` at
            once made the step's peak memory grow with `K`; in passes it is bounded (`benchmarks/RESULTS.md`, "Memory
            that does not grow with K"). A candidate's prediction does not depend on the others in its pass, so the
            winners are the same as in one pass (tested); `None` scores all candidates in one pass, as the official
            code does.
    """

    model_type = "deltaworld"
    sub_configs = {"tokenizer_config": DeltaTokConfig}

    def __init__(
        self,
        tokenizer_config: DeltaTokConfig | dict | None = None,
        tokenizer_name_or_path: str | None = None,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int | None = None,
        mlp_ratio: int = 4,
        hidden_act: str = "gelu",
        rope_axis_sizes: tuple[int, ...] | list[int] = (60,),
        rope_unrotated_size: int = 4,
        rope_min_exponent: float = -2.0,
        rope_max_exponent: float = 2.0,
        layer_norm_eps: float = 1e-5,
        layer_scale_init: float = 1e-5,
        initializer_range: float = 0.02,
        noise_std: float = 0.02,
        use_best_of_many: bool = True,
        num_samples_train: int = 256,
        num_samples_eval: int = 20,
        smooth_l1_beta: float = 0.1,
        delta_token_size: int | None = None,
        candidate_chunk_size: int | None = 4096,
        **kwargs,
    ):
        if tokenizer_config is None:
            tokenizer_config = DeltaTokConfig()
        elif isinstance(tokenizer_config, dict):
            tokenizer_config = DeltaTokConfig(**{k: v for k, v in tokenizer_config.items() if k != "model_type"})
        elif not isinstance(tokenizer_config, DeltaTokConfig):
            raise TypeError(
                f"tokenizer_config must be a DeltaTokConfig or a dict, got {type(tokenizer_config).__name__}."
            )
        if delta_token_size is not None and delta_token_size != tokenizer_config.hidden_size:
            raise ValueError(
                f"delta_token_size={delta_token_size} does not match the tokenizer's hidden_size="
                f"{tokenizer_config.hidden_size}: the predictor reads and writes delta tokens of the tokenizer width."
            )
        self.tokenizer_config = tokenizer_config
        self.tokenizer_name_or_path = tokenizer_name_or_path
        self._set_predictor_fields(locals())
        self.check_values()
        super().__init__(**kwargs)

    def check_values(self) -> None:
        """Raise `ValueError` naming the first field out of range."""
        self.tokenizer_config.check_values()
        self._check_predictor_values()

    @property
    def delta_token_size(self) -> int:
        return self.tokenizer_config.hidden_size

    @classmethod
    def tiny(cls, **kwargs) -> "DeltaWorldConfig":
        """The `tiny` preset of the reference tensors (64-wide, 2 blocks, 4 heads, RoPE (12,) + 4, MLP ratio 2)."""
        tokenizer_kwargs = kwargs.pop("tokenizer_kwargs", {})
        defaults = {
            "tokenizer_config": DeltaTokConfig.tiny(**tokenizer_kwargs),
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "rope_axis_sizes": (12,),
            "rope_unrotated_size": 4,
            "mlp_ratio": 2,
        }
        defaults.update(kwargs)
        return cls(**defaults)


__all__ = ["DeltaWorldConfig"]
