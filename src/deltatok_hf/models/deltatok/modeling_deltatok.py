"""DeltaTok: a continuous auto-encoder that turns a pair of feature maps into one delta token.

Paper: "A Frame is Worth One Token: Efficient Generative World Modeling with Delta Tokens" (Kerssies et al., CVPR
2026), section 3. Official code: github.com/amazon-far/deltatok (`models/deltatok.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DINOv3ViTConfig, DINOv3ViTModel, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding
from transformers.utils import ModelOutput, logging

from .configuration_deltatok import DeltaTokConfig

logger = logging.get_logger(__name__)


@dataclass
class DeltaTokOutput(ModelOutput):
    """
    Output of [`DeltaTokModel.forward`]: one training step of the tokenizer on the last pair of frames.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Reconstruction loss (MSE or log-cosh, see `config.reconstruction_loss`), mean over all elements.
        reconstruction (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`):
            Decoded features of the last frame.
        target_features (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`):
            Backbone features of the last frame.
        delta_tokens (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            The delta token of the last pair.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    target_features: torch.FloatTensor | None = None
    delta_tokens: torch.FloatTensor | None = None


@dataclass
class DeltaTokReconstructionOutput(ModelOutput):
    """
    Output of [`DeltaTokModel.reconstruct`]: a multi-step reconstruction.

    Args:
        reconstructions (`torch.FloatTensor` of shape `(batch_size, num_steps, num_patches, hidden_size)`):
            Decoded features of the last `num_steps` frames.
        target_features (`torch.FloatTensor` of shape `(batch_size, num_steps, num_patches, hidden_size)`):
            Backbone features of the same frames.
        context_features (`torch.FloatTensor` of shape `(batch_size, num_frames - num_steps, num_patches, hidden_size)`):
            Backbone features of the frames before them.
        delta_tokens (`torch.FloatTensor` of shape `(batch_size, num_steps, hidden_size)`):
            The delta token of every step.
    """

    reconstructions: torch.FloatTensor | None = None
    target_features: torch.FloatTensor | None = None
    context_features: torch.FloatTensor | None = None
    delta_tokens: torch.FloatTensor | None = None


def log_cosh_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise log(cosh(prediction - target)), written in a form that cannot overflow."""
    difference = (prediction - target).abs()
    return difference + F.softplus(-2.0 * difference) - math.log(2.0)


def reconstruction_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str = "log_cosh") -> torch.Tensor:
    """Mean reconstruction loss: `"mse"` (the paper) or `"log_cosh"` (the released recipe)."""
    prediction, target = prediction.float(), target.float()
    if kind == "mse":
        return F.mse_loss(prediction, target)
    if kind == "log_cosh":
        return log_cosh_loss(prediction, target).mean()
    raise ValueError(f"Unknown reconstruction loss {kind!r}; expected 'mse' or 'log_cosh'.")


class DeltaTokLayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch."""

    def __init__(self, hidden_size: int, init_value: float) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.full((hidden_size,), float(init_value)))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states * self.lambda1


def apply_patch_rope(states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """
    DINOv3's 2-D RoPE (`x * cos + rotate_half(x) * sin`) on the last `cos.shape[-2]` tokens of `states`
    `(batch, num_heads, seq_len, head_dim)`; the leading (delta) tokens pass through unchanged.

    Bit-identical to `transformers`' `apply_rotary_pos_emb` (the same products and sum, each rounded once), written
    with two new tensors instead of six: the tables get a leading identity row per unrotated token (cos 1, sin 0),
    the sign of `rotate_half` moves into the sine table, and the product and sum happen in place. Every full pass
    over q and k costs about as much in bf16 as in fp32, while the GEMMs around it run twice as fast, so these passes
    (and the page faults of fresh buffers) weigh twice as much in bf16 (benchmarks/RESULTS.md, bf16 section).
    """
    num_prefix, half = states.shape[-2] - cos.shape[-2], states.shape[-1] // 2
    # (num_prefix + num_patches, head_dim) tables; rotate_half(x) * sin == cat(x2, x1) * cat(-sin1, sin2) exactly.
    cos = F.pad(cos, (0, 0, num_prefix, 0), value=1.0)
    sin = F.pad(torch.cat((-sin[..., :half], sin[..., half:]), dim=-1), (0, 0, num_prefix, 0), value=0.0)
    swapped = torch.cat((states[..., half:], states[..., :half]), dim=-1)  # (batch, heads, seq_len, head_dim)
    return (states * cos).add_(swapped.mul_(sin))


class DeltaTokAttention(nn.Module):
    """
    DINOv3-style self-attention with the options of the released tokenizer: patch RoPE on the last `num_patches`
    tokens, qk-norm applied *after* RoPE, and a per-head sigmoid output gate computed from the (normed) block input.
    """

    def __init__(self, config: DeltaTokConfig) -> None:
        super().__init__()
        hidden_size = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = hidden_size // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=True)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=config.key_bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=True)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=True)
        if config.use_qk_norm:
            self.q_norm = nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps, bias=False)
            self.k_norm = nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps, bias=False)
        else:
            self.q_norm = self.k_norm = None
        self.attn_gate = nn.Linear(hidden_size, self.num_heads) if config.use_gated_attention else None

    def forward(
        self, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        batch_size, seq_len, _ = hidden_states.shape
        # (batch_size, seq_len, hidden_size) -> (batch_size, num_heads, seq_len, head_dim)
        query = self.q_proj(hidden_states).view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        key = self.k_proj(hidden_states).view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        value = self.v_proj(hidden_states).view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        cos, sin = position_embeddings
        # Rotates the last cos.shape[-2] tokens (the patches); the leading delta token is left unrotated.
        query, key = apply_patch_rope(query, cos, sin), apply_patch_rope(key, cos, sin)
        if self.q_norm is not None:
            # Note: after RoPE, as in the released checkpoints (many qk-norm models normalise before rotating).
            query = self.q_norm(query)
            key = self.k_norm(key)
        attention = F.scaled_dot_product_attention(query, key, value, scale=self.scaling)
        if self.attn_gate is not None:
            # (batch_size, seq_len, num_heads) -> (batch_size, num_heads, seq_len, 1)
            gate = torch.sigmoid(self.attn_gate(hidden_states)).transpose(1, 2).unsqueeze(-1)
            # Without autograd, gate in place: the CPU SDPA kernel returns a (batch, seq_len, heads, head_dim) buffer
            # seen through a transpose, so the reshape below is then free (no copy, no new buffer).
            attention = attention * gate if torch.is_grad_enabled() else attention.mul_(gate)
        # (batch_size, num_heads, seq_len, head_dim) -> (batch_size, seq_len, hidden_size)
        attention = attention.transpose(1, 2).reshape(batch_size, seq_len, -1)
        return self.o_proj(attention)


class DeltaTokMLP(nn.Module):
    """SwiGLU (`down(silu(gate(x)) * up(x))`) or plain GELU MLP (`down(gelu(up(x)))`)."""

    def __init__(self, config: DeltaTokConfig) -> None:
        super().__init__()
        hidden_size, intermediate_size = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(hidden_size, intermediate_size) if config.use_swiglu else None
        self.up_proj = nn.Linear(hidden_size, intermediate_size)
        self.down_proj = nn.Linear(intermediate_size, hidden_size)
        self.act_fn = ACT2FN["silu" if config.use_swiglu else "gelu"]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.gate_proj is not None:
            if torch.is_grad_enabled():
                return self.down_proj(self.act_fn(self.gate_proj(hidden_states)) * self.up_proj(hidden_states))
            # Inference: the same arithmetic in place, which saves two (tokens, intermediate_size) buffers per block.
            gate = F.silu(self.gate_proj(hidden_states), inplace=True)  # (batch, seq_len, intermediate_size)
            return self.down_proj(gate.mul_(self.up_proj(hidden_states)))
        return self.down_proj(self.act_fn(self.up_proj(hidden_states)))


class DeltaTokLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block with LayerScale, shaped like `DINOv3ViTLayer` (same parameter names)."""

    def __init__(self, config: DeltaTokConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = DeltaTokAttention(config)
        self.layer_scale1 = DeltaTokLayerScale(config.hidden_size, config.layer_scale_init)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = DeltaTokMLP(config)
        self.layer_scale2 = DeltaTokLayerScale(config.hidden_size, config.layer_scale_init)

    def forward(
        self, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        if torch.is_grad_enabled():
            hidden_states = hidden_states + self.layer_scale1(self.attention(self.norm1(hidden_states), position_embeddings))
            return hidden_states + self.layer_scale2(self.mlp(self.norm2(hidden_states)))
        # Inference: the same products and sums (bit-identical), in place on buffers this block owns; the input is
        # never written (it may be the caller's features).
        attention = self.attention(self.norm1(hidden_states), position_embeddings)
        hidden_states = hidden_states + attention.mul_(self.layer_scale1.lambda1)
        return hidden_states.add_(self.mlp(self.norm2(hidden_states)).mul_(self.layer_scale2.lambda1))


@torch.no_grad()
def init_official_weights(module: nn.Module, std: float, layer_scale_init: float) -> None:
    """
    The official initialisation of tokenizer and predictor modules: linear weights and embeddings
    `trunc_normal_(std)` (default absolute bounds of ±2, as the official code), zero biases, LayerNorms at identity,
    LayerScales at `layer_scale_init`.
    """
    if isinstance(module, nn.Linear):
        init.trunc_normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.trunc_normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, DeltaTokLayerScale):
        init.constant_(module.lambda1, layer_scale_init)


def _tokenizer_rope_config(config: DeltaTokConfig) -> DINOv3ViTConfig:
    """A DINOv3 config carrying only what the tokenizer's 2-D patch RoPE needs."""
    return DINOv3ViTConfig(
        hidden_size=config.hidden_size,
        num_attention_heads=config.num_attention_heads,
        patch_size=config.patch_size,
        rope_theta=config.rope_theta,
        pos_embed_rescale=config.rope_rescale if config.use_rope_augmentation else None,
        pos_embed_shift=None,
        pos_embed_jitter=None,
    )


def check_finite_tensor(name: str, value: object) -> None:
    """Boundary check of a continuous input: a real floating-point tensor (else `TypeError`) without NaN or inf."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}.")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values.")


def _grid_from_num_patches(num_patches: int) -> tuple[int, int]:
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(
            f"Cannot infer the patch grid of {num_patches} patches (not a square); pass grid_size=(rows, columns)."
        )
    return side, side


class DeltaTokPreTrainedModel(PreTrainedModel):
    config: DeltaTokConfig
    config_class = DeltaTokConfig
    base_model_prefix = "deltatok"
    main_input_name = "frames"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["DeltaTokLayer", "DINOv3ViTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The official initialisation: truncated normal (std `initializer_range`), zero biases, LayerScale 1e-5."""
        init_official_weights(module, self.config.initializer_range, self.config.layer_scale_init)
        if isinstance(module, DINOv3ViTRopePositionEmbedding):
            inv_freq = 1 / module.base ** torch.arange(0, 1, 4 / module.head_dim, dtype=torch.float32)
            init.copy_(module.inv_freq, inv_freq)


class NamedMismatchLoadingMixin:
    """`from_pretrained` that names every wrong-shape key in a `ValueError` (heads, RGB decoder)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """
        Like [`PreTrainedModel.from_pretrained`]; wrong-shape weights raise a `ValueError` naming every key (unless
        `ignore_mismatched_sizes=True`) instead of transformers' bare size-mismatch `RuntimeError`.
        """
        output_loading_info = kwargs.pop("output_loading_info", False)
        model, loading_info = _from_pretrained_naming_mismatches(
            super().from_pretrained, pretrained_model_name_or_path, *model_args, **kwargs
        )
        return (model, loading_info) if output_loading_info else model


class DeltaTokBackboneLoadingMixin:
    """`from_pretrained` of every model holding the DINOv3 backbone itself (DeltaTok, DINO-world)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """
        Like [`PreTrainedModel.from_pretrained`]; when the checkpoint holds no backbone weights (as the official
        releases), they are loaded from `config.backbone_name_or_path`. Wrong-shape weights raise a `ValueError`
        naming every key (unless `ignore_mismatched_sizes=True`).
        """
        output_loading_info = kwargs.pop("output_loading_info", False)
        model, loading_info = _from_pretrained_naming_mismatches(
            super().from_pretrained, pretrained_model_name_or_path, *model_args, **kwargs
        )
        loading_info = _fill_missing_backbone(model, loading_info, kwargs)
        return (model, loading_info) if output_loading_info else model


class DeltaTokModel(DeltaTokBackboneLoadingMixin, DeltaTokPreTrainedModel):
    r"""
    DeltaTok: frozen DINOv3 backbone + delta-token encoder `g(x_{t-1}, x_t) -> z_t` + decoder `h(x_{t-1}, z_t) -> x_t`.

    Frames are RGB with values in 0..255 (`uint8` or float), shape `(batch_size, num_frames, 3, height, width)`;
    height and width must be multiples of the patch size (16). Features are `(batch_size, num_frames, num_patches,
    hidden_size)` with the patches in raster order.
    """

    def __init__(self, config: DeltaTokConfig) -> None:
        super().__init__(config)
        self.backbone = DINOv3ViTModel(config.backbone_config)
        self.backbone.requires_grad_(False)
        self.rope_embeddings = DINOv3ViTRopePositionEmbedding(_tokenizer_rope_config(config))
        # Official names: `z_embed` is the learned input of the delta-token slot, `xy_embed` the two frame embeddings
        # (row 0: previous frame, row 1: current frame).
        self.z_embed = nn.Embedding(1, config.hidden_size)
        self.xy_embed = nn.Embedding(2, config.hidden_size)
        self.encoder_blocks = nn.ModuleList([DeltaTokLayer(config) for _ in range(config.num_encoder_layers)])
        self.decoder_blocks = nn.ModuleList([DeltaTokLayer(config) for _ in range(config.num_decoder_layers)])
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # Black-frame features per (resolution, device, dtype, backbone weights); see `black_frame_features`.
        self._black_frame_cache: dict = {}
        # Patch RoPE tables per (height, width, device, dtype), outside train-mode augmentation; see `position_embeddings`.
        self._position_cache: dict = {}
        self.post_init()

    # ------------------------------------------------------------------ modes and loading

    def train(self, mode: bool = True) -> "DeltaTokModel":
        # Note: like the official training, the frozen backbone follows the train mode, which only switches on
        # DINOv3's RoPE rescale augmentation (it has no dropout). `use_rope_augmentation=False` keeps it in eval.
        super().train(mode)
        if not self.config.use_rope_augmentation:
            self.backbone.eval()
            self.rope_embeddings.eval()
        return self

    @property
    def rope_augmentation_active(self) -> bool:
        return self.training and self.config.use_rope_augmentation

    # ------------------------------------------------------------------ features

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid `(rows, columns)` of a frame; raises if the frame is not a multiple of the patch size."""
        patch = self.patch_size
        if height % patch or width % patch or height <= 0 or width <= 0:
            raise ValueError(
                f"Frame size {height}x{width} (height x width) is not a positive multiple of the patch size {patch}; "
                "resize or crop the frames first (the pipeline does this with a named option)."
            )
        return height // patch, width // patch

    def _check_frames(self, frames: torch.Tensor) -> None:
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}.")
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(
                f"frames must have shape (batch_size, num_frames, 3, height, width), got {tuple(frames.shape)}."
            )
        self.grid_size(frames.shape[-2], frames.shape[-1])
        if frames.shape[0] == 0 or frames.shape[1] == 0:
            raise ValueError(f"frames must hold at least one clip of at least one frame, got {tuple(frames.shape)}.")
        if frames.is_complex() or frames.dtype == torch.bool:
            raise TypeError(f"frames must be real RGB values (uint8 or float), got dtype {frames.dtype}.")
        if frames.is_floating_point() and not torch.isfinite(frames).all():
            raise ValueError("frames contain NaN or infinite values.")
        if frames.dtype != torch.uint8:
            low, high = frames.min().item(), frames.max().item()
            # Half a level of slack: resampled float frames overshoot 0..255 by rounding (~1e-4 after a bilinear resize).
            if low < -0.5 or high > 255.5:
                raise ValueError(f"frames must hold RGB values in 0..255, got values in [{low}, {high}].")

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """`(..., 3, H, W)` RGB in 0..255 -> ImageNet-normalised float32 `(..., 3, H, W)` (no resize, no crop)."""
        mean = torch.tensor(self.config.image_mean, dtype=torch.float32, device=frames.device).view(3, 1, 1)
        std = torch.tensor(self.config.image_std, dtype=torch.float32, device=frames.device).view(3, 1, 1)
        pixel_values = frames.to(torch.float32) * (1.0 / 255.0)
        return (pixel_values - mean) / std

    @torch.no_grad()
    def extract_features(self, frames: torch.Tensor) -> torch.Tensor:
        """
        Frozen backbone features.

        Args:
            frames: `(batch_size, num_frames, 3, height, width)`, RGB values in 0..255.
        Returns:
            `(batch_size, num_frames, num_patches, hidden_size)`, CLS and register tokens dropped. One backbone call
            for all frames (in train mode: one RoPE rescale draw shared by all of them, as the official code).
        """
        self._check_frames(frames)
        batch_size, num_frames = frames.shape[:2]
        pixel_values = self.preprocess(frames.flatten(0, 1)).to(self.backbone.dtype)
        hidden = self.backbone(pixel_values=pixel_values).last_hidden_state
        # (batch_size * num_frames, prefix + num_patches, hidden) -> (batch_size, num_frames, num_patches, hidden)
        features = hidden[:, self.config.num_prefix_tokens :]
        return features.unflatten(0, (batch_size, num_frames))

    def _backbone_version(self) -> int:
        return sum(parameter._version for parameter in self.backbone.parameters())

    def black_frame_features(
        self, height: int, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """
        Backbone features of an all-black frame, `(num_patches, hidden_size)`: the "previous frame" of the first delta
        token. Cached per resolution, device, dtype and backbone weights when no augmentation is active; in train mode
        with RoPE augmentation the backbone is run (one random draw), as the official training does.
        """
        device = device if device is not None else self.backbone.device
        dtype = dtype if dtype is not None else self.backbone.dtype
        if self.rope_augmentation_active:
            black = torch.zeros(1, 1, 3, height, width, device=device)
            return self.extract_features(black)[0, 0].to(dtype)
        key = (height, width, str(device), dtype, self._backbone_version())
        cached = self._black_frame_cache.get(key)
        if cached is None:
            self._black_frame_cache.clear()
            black = torch.zeros(1, 1, 3, height, width, device=device)
            cached = self.extract_features(black)[0, 0].to(dtype)
            self._black_frame_cache[key] = cached
        return cached

    def position_embeddings(self, height: int, width: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """
        2-D patch RoPE `(cos, sin)`, each `(num_patches, head_dim)`; one random rescale draw in train mode. Without the
        augmentation the tables only depend on the frame size, device and dtype, so they are computed once per size
        (a rollout asks for them at every call).
        """
        self.grid_size(height, width)
        device = torch.device(device) if device is not None else self.z_embed.weight.device
        dtype = self.z_embed.weight.dtype
        cacheable = not self.rope_embeddings.training
        # Tables made under inference_mode cannot be saved for a later backward pass, so they are kept apart.
        key = (height, width, str(device), dtype, torch.is_inference_mode_enabled())
        if cacheable and key in self._position_cache:
            return self._position_cache[key]
        placeholder = torch.zeros(1, 3, height, width, device=device)
        cos, sin = self.rope_embeddings(placeholder)
        tables = (cos.to(dtype), sin.to(dtype))
        if cacheable:
            if len(self._position_cache) >= 8:
                self._position_cache.clear()
            self._position_cache[key] = tables
        return tables

    def _resolve_position_embeddings(self, position_embeddings, grid_size, num_patches: int):
        if position_embeddings is not None:
            return position_embeddings
        rows, columns = grid_size if grid_size is not None else _grid_from_num_patches(num_patches)
        if rows * columns != num_patches:
            raise ValueError(f"grid_size={grid_size} has {rows * columns} patches but the features have {num_patches}.")
        return self.position_embeddings(rows * self.patch_size, columns * self.patch_size)

    def _check_features(self, name: str, features: torch.Tensor, min_ndim: int) -> None:
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(features).__name__}.")
        if features.ndim < min_ndim or features.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f"{name} must have shape (..., {'num_patches, ' if min_ndim > 2 else ''}{self.config.hidden_size}) "
                f"with at least {min_ndim} dimensions, got {tuple(features.shape)}."
            )
        if features.numel() == 0:
            raise ValueError(f"{name} is empty: got shape {tuple(features.shape)}.")
        check_finite_tensor(name, features)

    # ------------------------------------------------------------------ encoder / decoder

    def encode(
        self,
        previous_features: torch.Tensor | None,
        current_features: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        grid_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """
        `g(x_{t-1}, x_t) -> z_t`.

        Args:
            previous_features: `(..., num_patches, hidden_size)`; ignored (may be `None`) when `use_delta=False`.
            current_features: `(..., num_patches, hidden_size)`.
            position_embeddings: RoPE `(cos, sin)` from [`position_embeddings`]; built from `grid_size` otherwise.
            grid_size: patch grid `(rows, columns)`; may be omitted for square grids.
        Returns:
            delta tokens `(..., hidden_size)`.
        """
        self._check_features("current_features", current_features, 3)
        leading_shape, (num_patches, hidden_size) = current_features.shape[:-2], current_features.shape[-2:]
        current = current_features.reshape(-1, num_patches, hidden_size)
        cos, sin = self._resolve_position_embeddings(position_embeddings, grid_size, num_patches)
        delta_slot = self.z_embed.weight[None].expand(current.shape[0], 1, hidden_size)
        if self.config.use_delta:
            if previous_features is None or previous_features.shape != current_features.shape:
                raise ValueError(
                    "previous_features must have the shape of current_features "
                    f"{tuple(current_features.shape)}, got {None if previous_features is None else tuple(previous_features.shape)}."
                )
            previous = previous_features.reshape(-1, num_patches, hidden_size)
            # (batch, 1 + 2 * num_patches, hidden): [z; x_{t-1} + e_prev; x_t + e_cur]; both halves share the RoPE table.
            hidden_states = torch.cat(
                (delta_slot, previous + self.xy_embed.weight[0], current + self.xy_embed.weight[1]), dim=1
            )
            cos, sin = torch.cat((cos, cos), dim=-2), torch.cat((sin, sin), dim=-2)
        else:
            # Frame-token ablation: [z; x_t + e_cur].
            hidden_states = torch.cat((delta_slot, current + self.xy_embed.weight[1]), dim=1)
        for block in self.encoder_blocks:
            hidden_states = block(hidden_states, (cos, sin))
        delta_tokens = self.norm(hidden_states[:, 0])
        return delta_tokens.reshape(*leading_shape, hidden_size)

    def decode(
        self,
        delta_tokens: torch.Tensor,
        previous_features: torch.Tensor | None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        grid_size: tuple[int, int] | None = None,
        num_patches: int | None = None,
    ) -> torch.Tensor:
        """
        `h(x_{t-1}, z_t) -> x̂_t`.

        Args:
            delta_tokens: `(..., hidden_size)`.
            previous_features: `(..., num_patches, hidden_size)` with the same leading shape. With `use_delta=False`
                it may be `None` (then `num_patches` or `grid_size` is needed): the decoder starts from the learned
                previous-frame embedding broadcast over the grid.
        Returns:
            features `(..., num_patches, hidden_size)`.
        """
        self._check_features("delta_tokens", delta_tokens, 1)
        hidden_size = self.config.hidden_size
        leading_shape = delta_tokens.shape[:-1]
        tokens = delta_tokens.reshape(-1, 1, hidden_size)
        if previous_features is not None:
            self._check_features("previous_features", previous_features, 2)
            if previous_features.shape[:-2] != leading_shape:
                raise ValueError(
                    f"previous_features {tuple(previous_features.shape)} and delta_tokens {tuple(delta_tokens.shape)} "
                    "must share their leading dimensions."
                )
            num_patches = previous_features.shape[-2]
        elif self.config.use_delta:
            raise ValueError("previous_features is required when use_delta=True.")
        elif num_patches is None:
            if grid_size is None:
                raise ValueError("Pass previous_features, num_patches or grid_size to decode frame tokens.")
            num_patches = grid_size[0] * grid_size[1]
        position_embeddings = self._resolve_position_embeddings(position_embeddings, grid_size, num_patches)
        previous = None if previous_features is None else previous_features.reshape(-1, num_patches, hidden_size)
        features = self.decode_step(tokens[:, 0], previous, position_embeddings, num_patches=num_patches)
        return features.reshape(*leading_shape, num_patches, hidden_size)

    def decode_step(
        self,
        delta_tokens: torch.Tensor,
        previous_features: torch.Tensor | None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        num_patches: int | None = None,
    ) -> torch.Tensor:
        """
        [`decode`] without its input checks, for rollouts that feed the decoder its own outputs step after step (their
        inputs were checked once, where they entered): delta tokens `(batch, hidden_size)` and previous features
        `(batch, num_patches, hidden_size)` -> features `(batch, num_patches, hidden_size)`. With `use_delta=False` the
        previous features only give the grid size (or `num_patches` does).
        """
        if self.config.use_delta:
            previous = previous_features
        else:
            # Frame-token ablation: every patch input is the previous-frame embedding.
            num_patches = previous_features.shape[-2] if previous_features is not None else num_patches
            previous = self.xy_embed.weight[0].expand(delta_tokens.shape[0], num_patches, self.config.hidden_size)
        # (batch, 1 + num_patches, hidden): [z; x_{t-1}], no frame embedding in the decoder.
        hidden_states = torch.cat((delta_tokens[:, None].to(previous.dtype), previous), dim=1)
        for block in self.decoder_blocks:
            hidden_states = block(hidden_states, position_embeddings)
        return hidden_states[:, 1:]

    def tokenize(
        self,
        features: torch.Tensor,
        first_previous_features: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        grid_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """
        Delta tokens of a feature sequence: `z_1 = g(x_black, x_1)`, `z_t = g(x_{t-1}, x_t)`.

        Args:
            features: `(batch_size, num_frames, num_patches, hidden_size)`.
            first_previous_features: `(batch_size, num_patches, hidden_size)` or `(num_patches, hidden_size)`, the
                "previous frame" of the first token; defaults to the black frame (needs `grid_size` or a square grid).
        Returns:
            `(batch_size, num_frames, hidden_size)`. All pairs go through the encoder in one batched call (as the
            official `tokenize_offline`; frame-by-frame calls differ at the 1e-7 level).
        """
        self._check_features("features", features, 4)
        if features.ndim != 4:
            raise ValueError(f"features must be (batch_size, num_frames, num_patches, hidden_size), got {tuple(features.shape)}.")
        batch_size, _, num_patches, hidden_size = features.shape
        if first_previous_features is None:
            rows, columns = grid_size if grid_size is not None else _grid_from_num_patches(num_patches)
            first_previous_features = self.black_frame_features(
                rows * self.patch_size, columns * self.patch_size, device=features.device, dtype=features.dtype
            )
        if first_previous_features.ndim == 2:
            first_previous_features = first_previous_features.expand(batch_size, num_patches, hidden_size)
        # (batch_size, num_frames, num_patches, hidden): x_black, x_1, ..., x_{T-1}
        previous = torch.cat((first_previous_features[:, None].to(features.dtype), features[:, :-1]), dim=1)
        return self.encode(previous, features, position_embeddings, grid_size)

    # ------------------------------------------------------------------ sequences

    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Frames -> `(delta_tokens (batch, num_frames, hidden), features (batch, num_frames, num_patches, hidden))`, the
        first token taken against the black frame.
        """
        self._check_frames(frames)
        height, width = frames.shape[-2:]
        features = self.extract_features(frames)
        black = self.black_frame_features(height, width, device=features.device, dtype=features.dtype)
        rope = self.position_embeddings(height, width, device=features.device)
        return self.tokenize(features, black, rope), features

    @torch.no_grad()
    def reconstruct(
        self, frames: torch.Tensor, num_steps: int | None = None, mode: str | None = None
    ) -> DeltaTokReconstructionOutput:
        """
        Multi-step reconstruction of the last `num_steps` frames.

        The rollout starts from the ground-truth features of the frame before the first reconstructed one, or from the
        black frame when `num_steps == num_frames`. `mode="closed_loop"` (official evaluation code) encodes each step
        from the previous *reconstruction*; `mode="parallel"` encodes every step from ground-truth pairs and only chains
        the decoder. Defaults to `config.rollout_mode`.
        """
        self._check_frames(frames)
        num_frames = frames.shape[1]
        num_steps = num_frames if num_steps is None else num_steps
        if not 1 <= num_steps <= num_frames:
            raise ValueError(f"num_steps must be in [1, {num_frames}] for {num_frames} frames, got {num_steps}.")
        mode = mode or self.config.rollout_mode
        if mode not in ("closed_loop", "parallel"):
            raise ValueError(f"mode must be 'closed_loop' or 'parallel', got {mode!r}.")
        height, width = frames.shape[-2:]
        features = self.extract_features(frames)
        rope = self.position_embeddings(height, width, device=features.device)
        first_target = num_frames - num_steps
        if first_target == 0:
            black = self.black_frame_features(height, width, device=features.device, dtype=features.dtype)
            previous = black.expand(features.shape[0], *black.shape)
        else:
            previous = features[:, first_target - 1]
        targets = features[:, first_target:]
        if mode == "parallel":
            ground_truth_previous = torch.cat((previous[:, None], targets[:, :-1]), dim=1)
            parallel_tokens = self.encode(ground_truth_previous, targets, rope)
        reconstructions, tokens = [], []
        for step in range(num_steps):
            if mode == "closed_loop":
                token = self.encode(previous, targets[:, step], rope)
            else:
                token = parallel_tokens[:, step]
            previous = self.decode(token, previous, rope)
            reconstructions.append(previous)
            tokens.append(token)
        return DeltaTokReconstructionOutput(
            reconstructions=torch.stack(reconstructions, dim=1),
            target_features=targets,
            context_features=features[:, :first_target],
            delta_tokens=torch.stack(tokens, dim=1),
        )

    def forward(
        self,
        frames: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        grid_size: tuple[int, int] | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DeltaTokOutput | tuple:
        """
        One training step: reconstruct the last frame from the one before it (from the black frame when given a single
        frame) and return the reconstruction loss.

        Args:
            frames: `(batch_size, num_frames, 3, height, width)`, RGB in 0..255; or
            features: precomputed backbone features `(batch_size, num_frames, num_patches, hidden_size)` with
                `grid_size`.
        """
        if (frames is None) == (features is None):
            raise ValueError("Pass exactly one of frames or features.")
        if frames is not None:
            self._check_frames(frames)
            height, width = frames.shape[-2:]
            # Official order of the random draws in train mode: tokenizer RoPE first, then the backbone.
            rope = self.position_embeddings(height, width, device=frames.device)
            features = self.extract_features(frames)
        else:
            self._check_features("features", features, 4)
            rows, columns = grid_size if grid_size is not None else _grid_from_num_patches(features.shape[-2])
            if rows * columns != features.shape[-2]:
                raise ValueError(f"grid_size={grid_size} has {rows * columns} patches but the features have {features.shape[-2]}.")
            height, width = rows * self.patch_size, columns * self.patch_size
            rope = self.position_embeddings(height, width, device=features.device)
        if features.shape[1] >= 2:
            previous = features[:, -2]
        else:
            black = self.black_frame_features(height, width, device=features.device, dtype=features.dtype)
            previous = black.expand_as(features[:, -1])
        target = features[:, -1]
        delta_tokens = self.encode(previous, target, rope)
        reconstruction = self.decode(delta_tokens, previous, rope)
        loss = reconstruction_loss(reconstruction, target, self.config.reconstruction_loss)
        output = DeltaTokOutput(
            loss=loss, reconstruction=reconstruction, target_features=target, delta_tokens=delta_tokens
        )
        return output if return_dict is not False else output.to_tuple()


def _from_pretrained_naming_mismatches(load, pretrained_model_name_or_path, *model_args, **kwargs):
    """
    `load` is a `PreTrainedModel.from_pretrained`; returns `(model, loading_info)`. transformers raises a bare
    `RuntimeError` on wrong-shape weights and names the keys only in a logged table, so this loads with
    `ignore_mismatched_sizes=True` and, unless the caller asked for that, raises a `ValueError` naming every key.
    """
    ignore_mismatched_sizes = kwargs.pop("ignore_mismatched_sizes", False)
    kwargs.pop("output_loading_info", None)
    model, loading_info = load(
        pretrained_model_name_or_path, *model_args, ignore_mismatched_sizes=True, output_loading_info=True, **kwargs
    )
    mismatched = sorted(loading_info.get("mismatched_keys") or [], key=lambda item: item[0])
    if mismatched and not ignore_mismatched_sizes:
        details = "\n".join(
            f"  {key}: checkpoint {tuple(checkpoint_shape)} vs model {tuple(model_shape)}"
            for key, checkpoint_shape, model_shape in mismatched
        )
        raise ValueError(
            f"Weights in {pretrained_model_name_or_path} do not fit the model built from its config.json "
            f"({len(mismatched)} keys):\n{details}\nPass ignore_mismatched_sizes=True to re-initialise them instead."
        )
    return model, loading_info


def _fill_missing_backbone(model: nn.Module, loading_info: dict, kwargs: dict, prefix: str = "backbone.") -> dict:
    """
    Load backbone weights from `backbone_name_or_path` when a checkpoint does not contain them. `model` is any model
    of the package holding the backbone itself (DeltaTok, DINO-world) or through its `tokenizer` (DeltaWorld).
    """
    missing = [key for key in loading_info.get("missing_keys", []) if key.startswith(prefix)]
    if not missing:
        return loading_info
    tokenizer = getattr(model, "tokenizer", model)
    source = tokenizer.config.backbone_name_or_path
    if source is None:
        raise ValueError(
            f"The checkpoint has no backbone weights ({len(missing)} missing keys such as {missing[0]!r}) and "
            "config.backbone_name_or_path is not set; set it to a DINOv3 Hub id or local path."
        )
    hub_kwargs = {k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only") if k in kwargs}
    backbone = DINOv3ViTModel.from_pretrained(source, **hub_kwargs)
    tokenizer.backbone.load_state_dict(backbone.state_dict(), strict=True)
    tokenizer.backbone.requires_grad_(False)
    tokenizer.backbone.to(next(tokenizer.parameters()).dtype)
    logger.info("Loaded backbone weights from %s", source)
    loading_info = dict(loading_info)
    loading_info["missing_keys"] = [key for key in loading_info["missing_keys"] if not key.startswith(prefix)]
    loading_info["backbone_loaded_from"] = source
    return loading_info


__all__ = [
    "DeltaTokModel",
    "DeltaTokPreTrainedModel",
    "DeltaTokOutput",
    "DeltaTokReconstructionOutput",
    "reconstruction_loss",
    "log_cosh_loss",
]
