"""DeltaWorld: a generative world model over delta tokens.

Paper: "A Frame is Worth One Token" (Kerssies et al., CVPR 2026), section 4. Official code: github.com/amazon-far/deltatok
(`models/deltaworld.py`, `models/predictor.py`, `models/world.py`).

A predictor `f(q, z_1..z_t, τ_1..τ_t, τ_{t+1}) -> ẑ_{t+1}` made of cross-attention blocks: the query is a noise vector
(one future per noise draw), keys and values are the past delta tokens rotated by a 1-D RoPE on their timestamps in
seconds. Training uses Best-of-Many; inference samples many futures in one batch and decodes them with DeltaTok.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

from ..deltatok.modeling_deltatok import (
    DeltaTokLayerScale,
    DeltaTokModel,
    _fill_missing_backbone,
    _from_pretrained_naming_mismatches,
    _grid_from_num_patches,
    check_finite_tensor,
    init_official_weights,
)
from .configuration_deltaworld import DeltaWorldConfig

logger = logging.get_logger(__name__)

# Per-layer (key, value) of the context tokens, each `(batch, num_heads, num_context, head_size)`, keys already rotated.
ContextStates = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class DeltaWorldOutput(ModelOutput):
    """
    Output of [`DeltaWorldForForecasting.forward`] (one training step, teacher-forced over all frames).

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Smooth-L1 (β = `config.smooth_l1_beta`) between the predicted and target delta tokens, mean over all.
        predicted_delta_tokens (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, hidden_size)`):
            Prediction for frames 2..T from the chosen query (with gradient).
        target_delta_tokens (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, hidden_size)`):
            Delta tokens of frames 2..T.
        selected_queries (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, predictor_hidden_size)`):
            The query used for every target: the Best-of-Many winner, or the learned query.
        candidate_losses (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_samples_train)`, *optional*):
            Smooth-L1 of every candidate (mean over the token), Best-of-Many only.
        best_candidate_indices (`torch.LongTensor` of shape `(batch_size, num_frames - 1)`, *optional*):
            Index of the winning candidate (first argmin), Best-of-Many only.
        candidate_queries (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_samples_train, predictor_hidden_size)`, *optional*):
            All noise queries drawn, Best-of-Many only.
        candidate_predictions (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_samples_train, hidden_size)`, *optional*):
            Prediction of every candidate; returned with `output_candidates=True`.
    """

    loss: torch.FloatTensor | None = None
    predicted_delta_tokens: torch.FloatTensor | None = None
    target_delta_tokens: torch.FloatTensor | None = None
    selected_queries: torch.FloatTensor | None = None
    candidate_losses: torch.FloatTensor | None = None
    best_candidate_indices: torch.LongTensor | None = None
    candidate_queries: torch.FloatTensor | None = None
    candidate_predictions: torch.FloatTensor | None = None


@dataclass
class DeltaWorldForecastOutput(ModelOutput):
    """
    Output of [`DeltaWorldForForecasting.generate`].

    Args:
        future_features (`torch.FloatTensor` of shape `(batch_size, num_samples, num_future_frames, num_patches, hidden_size)`, *optional*):
            Decoded features of every sampled future (absent with `decode=False`).
        future_delta_tokens (`torch.FloatTensor` of shape `(batch_size, num_samples, num_future_frames, hidden_size)`):
            Predicted delta tokens.
        context_delta_tokens (`torch.FloatTensor` of shape `(batch_size, num_context_frames, hidden_size)`):
            Delta tokens of the context (the first against the black frame).
        context_features (`torch.FloatTensor` of shape `(batch_size, num_context_frames, num_patches, hidden_size)`, *optional*):
            Backbone features of the context frames (when frames were given).
        noise (`torch.FloatTensor` of shape `(batch_size, num_samples, num_future_frames, predictor_hidden_size)`, *optional*):
            The noise queries used (Best-of-Many models).
        future_timestamps (`torch.FloatTensor` of shape `(batch_size, num_future_frames)`):
            Times of the predicted frames, in seconds.
    """

    future_features: torch.FloatTensor | None = None
    future_delta_tokens: torch.FloatTensor | None = None
    context_delta_tokens: torch.FloatTensor | None = None
    context_features: torch.FloatTensor | None = None
    noise: torch.FloatTensor | None = None
    future_timestamps: torch.FloatTensor | None = None


class DeltaWorldTimeRotaryEmbedding(nn.Module):
    """
    1-D RoPE over continuous timestamps in seconds, split-half convention, on the first `sum(rope_axis_sizes)` dims of
    every head. Angle `= (2π·t) · f` with `f = 1 / 10**linspace(min, max, axis/2)`, computed in float32 in exactly this
    order (other orders move ViT-B outputs by ~1e-5, see the reference README's precision notes).
    """

    def __init__(self, config: DeltaWorldConfig) -> None:
        super().__init__()
        self.rotary_size = sum(config.rope_axis_sizes)
        self.half_size = self.rotary_size // 2
        self.min_exponent = config.rope_min_exponent
        self.max_exponent = config.rope_max_exponent

    def frequencies(self, device: torch.device) -> torch.Tensor:
        exponents = torch.linspace(self.min_exponent, self.max_exponent, self.half_size, device=device)
        return 1.0 / (10.0**exponents)

    def forward(self, timestamps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(batch, seq_len)` seconds -> `(cos, sin)`, each `(batch, 1, seq_len, rotary_size // 2)` in float32."""
        angle = (2 * torch.pi) * timestamps.to(torch.float32)[:, None, :, None] * self.frequencies(timestamps.device)
        return angle.cos(), angle.sin()

    def rotate(self, states: torch.Tensor, rotation: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Rotate `(batch, num_heads, seq_len, head_size)`; pair `(j, j + half)` turns by angle `j`."""
        cos, sin = rotation
        cos, sin = cos.to(states.dtype), sin.to(states.dtype)
        first = states[..., : self.half_size]
        second = states[..., self.half_size : self.rotary_size]
        unrotated = states[..., self.rotary_size :]
        return torch.cat((first * cos - second * sin, first * sin + second * cos, unrotated), dim=-1)


class DeltaWorldCrossAttention(nn.Module):
    """Queries attend to context tokens only (never to each other). `kv_proj` maps raw `D`-wide tokens to `2·Dp`."""

    def __init__(self, config: DeltaWorldConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.kv_proj = nn.Linear(config.delta_token_size, 2 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        # (batch, seq_len, hidden) -> (batch, num_heads, seq_len, head_size)
        return states.unflatten(-1, (self.num_heads, self.head_size)).transpose(1, 2)

    def project_context(
        self, context: torch.Tensor, rotation: tuple[torch.Tensor, torch.Tensor], rope: DeltaWorldTimeRotaryEmbedding
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context tokens `(batch, num_context, D)` -> rotated keys and values, each `(batch, heads, num_context, head)`."""
        # The first Dp channels are keys, the last Dp values (not interleaved per head).
        key, value = self.kv_proj(context).chunk(2, dim=-1)
        return rope.rotate(self._split_heads(key), rotation), self._split_heads(value)

    def forward(
        self,
        queries: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        query_rotation: tuple[torch.Tensor, torch.Tensor],
        rope: DeltaWorldTimeRotaryEmbedding,
        attention_mask: torch.Tensor | None = None,
        sample_states: tuple[torch.Tensor, torch.Tensor] | None = None,
        num_samples: int = 1,
    ) -> torch.Tensor:
        """
        `queries (batch, num_queries, Dp)` attend to `key`/`value` `(batch, heads, num_context, head)`. In a rollout
        ([`DeltaWorldPredictor`] with `num_samples`), `queries` are per clip, `(clips, num_samples * Q, Dp)` (the
        samples' queries side by side), `key`/`value` are the clip's context, shared by its samples, and
        `sample_states` holds each sample's own keys/values `(clips * num_samples, heads, num_own, head)` (the tokens
        it predicted so far), so the shared context is never copied per sample.
        """
        batch_size, num_queries, hidden_size = queries.shape
        query = rope.rotate(self._split_heads(self.q_proj(queries)), query_rotation)
        if sample_states is None:
            attention = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        else:  # a rollout step (the predictor refuses an attention_mask there)
            attention = self._attend_with_own_states(query, key, value, sample_states, num_samples)
        # (batch, heads, num_queries, head_size) -> (batch, num_queries, hidden)
        return self.out_proj(attention.transpose(1, 2).reshape(batch_size, num_queries, hidden_size))

    @staticmethod
    def _attend_with_own_states(query, key, value, sample_states, num_samples: int) -> torch.Tensor:
        """
        `query (clips, heads, S * Q, head)` over the clip's `key`/`value` plus each sample's own states `(clips * S,
        heads, own, head)`, as one softmax over [shared context; own tokens] per query.
        """
        clips, _, rows, head_size = key.shape[0], key.shape[1], query.shape[2], key.shape[3]
        per_sample = query.unflatten(2, (num_samples, rows // num_samples))  # (clips, heads, S, Q, head)
        own_key, own_value = (
            states.unflatten(0, (clips, num_samples)).transpose(1, 2) for states in sample_states
        )  # (clips, heads, S, own, head)
        shared_scores = (query @ key.transpose(-1, -2)).unflatten(2, per_sample.shape[2:4])  # (clips, heads, S, Q, C)
        own_scores = per_sample @ own_key.transpose(-1, -2)  # (clips, heads, S, Q, own)
        # The softmax in float32 (what SDPA accumulates in), over both parts as one distribution.
        weights = (torch.cat((shared_scores, own_scores), dim=-1) * head_size**-0.5).softmax(-1, dtype=torch.float32)
        weights = weights.to(value.dtype)
        num_shared = key.shape[2]
        shared = weights[..., :num_shared].flatten(2, 3) @ value  # (clips, heads, S * Q, head)
        return shared + (weights[..., num_shared:] @ own_value).flatten(2, 3)


class DeltaWorldMLP(nn.Module):
    def __init__(self, config: DeltaWorldConfig) -> None:
        super().__init__()
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.up_proj(hidden_states)))


class DeltaWorldLayer(GradientCheckpointingLayer):
    """Pre-norm on the queries only (context tokens are used raw), cross-attention, GELU MLP, LayerScale on both."""

    def __init__(self, config: DeltaWorldConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = DeltaWorldCrossAttention(config)
        self.layer_scale1 = DeltaTokLayerScale(config.hidden_size, config.layer_scale_init)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = DeltaWorldMLP(config)
        self.layer_scale2 = DeltaTokLayerScale(config.hidden_size, config.layer_scale_init)

    def project_context(self, context: torch.Tensor, rotation, rope: DeltaWorldTimeRotaryEmbedding):
        """This block's rotated keys and values of raw context tokens (see [`DeltaWorldCrossAttention.project_context`])."""
        return self.attention.project_context(context, rotation, rope)

    def forward(
        self,
        queries,
        context_states,
        query_rotation,
        rope,
        attention_mask=None,
        sample_states=None,
        num_samples: int = 1,
        context=None,
        context_rotation=None,
    ) -> torch.Tensor:
        """
        `context_states`: this block's `(key, value)`; or `None` with the raw `context` tokens and their
        `context_rotation`, projected here inside `forward` (training: so that a block can be its own FSDP unit).
        """
        # `self.attention`'s method, not `self.project_context`: under FSDP the latter may be registered as a forward
        # method of its own, which would reshard this block's parameters when it returns, in the middle of `forward`.
        if context_states is None:
            key, value = self.attention.project_context(context, context_rotation, rope)
        else:
            key, value = context_states
        attention = self.attention(
            self.norm1(queries), key, value, query_rotation, rope, attention_mask, sample_states, num_samples
        )
        queries = queries + self.layer_scale1(attention)
        return queries + self.layer_scale2(self.mlp(self.norm2(queries)))


class DeltaWorldPredictor(nn.Module):
    """Stack of [`DeltaWorldLayer`]s, a final LayerNorm and a linear head from `Dp` back to the token width `D`."""

    def __init__(self, config: DeltaWorldConfig) -> None:
        super().__init__()
        self.rotary = DeltaWorldTimeRotaryEmbedding(config)
        self.blocks = nn.ModuleList([DeltaWorldLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.hidden_size, config.delta_token_size)

    def project_context(self, context: torch.Tensor, context_timestamps: torch.Tensor) -> ContextStates:
        """
        Keys and values of every block for `context (batch, num_context, D)` at `context_timestamps (batch,
        num_context)`. They do not depend on the queries, so a rollout computes them once and extends them per step.
        """
        rotation = self.rotary(context_timestamps)
        return [block.project_context(context, rotation, self.rotary) for block in self.blocks]

    def forward(
        self,
        queries: torch.Tensor,
        query_timestamps: torch.Tensor,
        context: torch.Tensor | None = None,
        context_timestamps: torch.Tensor | None = None,
        context_states: ContextStates | None = None,
        attention_mask: torch.Tensor | None = None,
        sample_states: ContextStates | None = None,
        num_samples: int = 1,
    ) -> torch.Tensor:
        """
        Args:
            queries: `(batch, num_queries, Dp)`.
            query_timestamps: `(batch, num_queries)` seconds.
            context / context_timestamps: `(batch, num_context, D)` / `(batch, num_context)`, projected inside every
                block's `forward` (so each block can be an FSDP unit); or
            context_states: precomputed [`project_context`] output (a rollout computes them once per clip; under
                per-block FSDP, register `project_context` of every block with `register_fsdp_forward_method`).
            attention_mask: additive float mask broadcastable to `(batch, heads, num_queries, num_context)`.
            sample_states / num_samples: a rollout of `num_samples` futures per clip: `queries` and `query_timestamps`
                have `clips * num_samples` rows (sample index fastest), the context is per clip (shared by its
                samples, never copied), and `sample_states` (per block, like `context_states`, with `clips *
                num_samples` rows) are the samples' own predicted tokens so far.
        Returns:
            `(batch, num_queries, D)` predicted delta tokens.
        """
        context_rotation = None
        if context_states is None:
            if context is None or context_timestamps is None:
                raise ValueError("Pass context and context_timestamps, or context_states.")
            context_rotation = self.rotary(context_timestamps)
        rollout = num_samples > 1 or sample_states is not None
        if rollout:
            if attention_mask is not None:
                raise ValueError("A rollout over shared context states takes no attention_mask.")
            # One row of queries per clip, its samples side by side: (clips, S * Q, Dp). Row-wise layers do not care,
            # and attention then reads the clip's context without a copy per sample.
            clips_samples, num_queries = queries.shape[:2]
            clips = clips_samples // num_samples
            queries = queries.reshape(clips, num_samples * num_queries, queries.shape[-1])
            query_timestamps = query_timestamps.reshape(clips, num_samples * num_queries, *query_timestamps.shape[2:])
        query_rotation = self.rotary(query_timestamps)
        hidden_states = queries
        own_states = sample_states if sample_states is not None else [None] * len(self.blocks)
        block_states = context_states if context_states is not None else [None] * len(self.blocks)
        for block, states, own in zip(self.blocks, block_states, own_states):
            hidden_states = block(
                hidden_states, states, query_rotation, self.rotary, attention_mask, own, num_samples, context,
                context_rotation,
            )  # fmt: skip
        predictions = self.head(self.norm(hidden_states))
        return predictions.reshape(clips_samples, num_queries, -1) if rollout else predictions


def causal_context_mask(num_queries: int, num_context: int, device, dtype=torch.float32) -> torch.Tensor:
    """Additive mask `(num_queries, num_context)`: query `i` (predicting token `i + 1`) sees context tokens `0..i`."""
    query_index = torch.arange(num_queries, device=device)[:, None] + 1
    context_index = torch.arange(num_context, device=device)[None, :]
    return torch.zeros((), dtype=dtype, device=device).masked_fill(context_index >= query_index, float("-inf"))


def smooth_l1(prediction: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Element-wise smooth-L1 (Huber with threshold `beta`), computed in float32."""
    return F.smooth_l1_loss(prediction.float(), target.float(), beta=beta, reduction="none")


class DeltaWorldPreTrainedModel(PreTrainedModel):
    config: DeltaWorldConfig
    config_class = DeltaWorldConfig
    base_model_prefix = "deltaworld"
    main_input_name = "frames"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["DeltaWorldLayer", "DeltaTokLayer", "DINOv3ViTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Official predictor init: truncated normal 0.02 for linear weights and the query, zero biases, LayerScale."""
        init_official_weights(module, self.config.initializer_range, self.config.layer_scale_init)


def _as_float_timestamps(name: str, timestamps, batch_size: int, length: int | None, device) -> torch.Tensor:
    if not isinstance(timestamps, torch.Tensor):
        try:
            timestamps = torch.as_tensor(timestamps, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be a tensor or a (nested) sequence of numbers in seconds, got {timestamps!r}.") from error
    if timestamps.is_complex() or timestamps.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers of seconds, got dtype {timestamps.dtype}.")
    timestamps = timestamps.to(device=device, dtype=torch.float32)
    if timestamps.ndim == 1:
        timestamps = timestamps.expand(batch_size, -1)
    if timestamps.ndim != 2 or timestamps.shape[0] != batch_size or (length is not None and timestamps.shape[1] != length):
        expected = f"({batch_size}, {length if length is not None else 'num_future_frames'})"
        raise ValueError(f"{name} must have shape {expected} (or be 1-D for the whole batch), got {tuple(timestamps.shape)}.")
    if not torch.isfinite(timestamps).all():
        raise ValueError(f"{name} must be finite, got {timestamps.tolist()}.")
    if timestamps.shape[1] > 1 and not (timestamps[:, 1:] > timestamps[:, :-1]).all():
        raise ValueError(f"{name} must be strictly increasing along each row, got {timestamps.tolist()}.")
    return timestamps


# ---------------------------------------------------------------------- shared by every world model of the package
# DeltaWorld and DINO-world validate generate/forward inputs and run the rollout bookkeeping the same way; these
# helpers are that one implementation (DINO-world imports them).


def _check_timestamps(timestamps, batch_size: int, num_frames: int, device, frames_name: str = "num_frames") -> torch.Tensor:
    """Required context times `(batch_size, num_frames)` (or 1-D) in seconds -> float32, strictly increasing."""
    if timestamps is None:
        raise ValueError(f"timestamps (batch_size, {frames_name}) in seconds are required.")
    return _as_float_timestamps("timestamps", timestamps, batch_size, num_frames, device)


def _check_future_timestamps(future_timestamps, timestamps: torch.Tensor, device) -> torch.Tensor:
    """Required times to predict -> `(batch_size, num_future_frames)` float32, at least one, after the last context time."""
    if future_timestamps is None:
        raise ValueError("future_timestamps (seconds) are required.")
    future_timestamps = _as_float_timestamps("future_timestamps", future_timestamps, timestamps.shape[0], None, device)
    if future_timestamps.shape[1] < 1:
        raise ValueError("future_timestamps must hold at least one time.")
    if not (future_timestamps[:, 0] > timestamps[:, -1]).all():
        raise ValueError(
            f"future_timestamps must be after the last context time: first future times "
            f"{future_timestamps[:, 0].tolist()} vs last context times {timestamps[:, -1].tolist()}."
        )
    return future_timestamps


def _resolve_num_samples(config, num_samples, noise) -> int:
    """
    Futures per clip: `num_samples`, else the sample axis of 4-D `noise`, else `config.num_samples_eval` (1 for a
    deterministic model, which cannot predict more than one).
    """
    if num_samples is None and isinstance(noise, torch.Tensor) and noise.ndim == 4:
        num_samples = noise.shape[1]
    elif num_samples is None:
        num_samples = config.num_samples_eval if config.use_best_of_many else 1
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}.")
    if not config.use_best_of_many and num_samples != 1:
        raise ValueError(
            f"This model is deterministic (use_best_of_many=False): it predicts one future, got num_samples={num_samples}."
        )
    return num_samples


def _check_noise_shape(noise: torch.Tensor, batch_size: int, num_samples: int, num_future: int, hidden_size: int) -> None:
    expected = (batch_size, num_samples, num_future, hidden_size)
    if tuple(noise.shape) != expected:
        raise ValueError(f"noise must have shape {expected}, got {tuple(noise.shape)}.")


def _resolve_num_candidates(config, num_samples_train) -> int:
    """Best-of-Many candidates `K`: `num_samples_train` or `config.num_samples_train` (`0` is an error, not the default)."""
    num_candidates = config.num_samples_train if num_samples_train is None else num_samples_train
    if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
        raise ValueError(f"num_samples_train must be an integer >= 1, got {num_candidates!r}.")
    return num_candidates


def _draw_noise(config, shape: tuple[int, ...], device, generator: torch.Generator | None) -> torch.Tensor:
    """Noise queries `(*shape, hidden_size)`, N(0, noise_std²)."""
    noise = torch.randn(*shape, config.hidden_size, device=device, generator=generator)
    return noise * config.noise_std


def _select_training_queries(
    model, num_samples_train, batch_size: int, num_queries: int, device, dtype, generator, score_candidates
) -> tuple[torch.Tensor, dict]:
    """
    The query vector of every training target `(batch, Q, Dp)`: the learned query, or the Best-of-Many winner (first
    argmin, as the official code) among `K` noise vectors `(batch, Q, K, Dp)` scored by
    `score_candidates(candidate_queries) -> (losses (batch, Q, K), predictions or None)`.

    Returns `(selected, query_fields)`: `query_fields` are the query fields of the training outputs
    (`selected_queries`, `candidate_losses`, `best_candidate_indices`, `candidate_queries`, `candidate_predictions`;
    the last four `None` for the learned query).
    """
    if not model.config.use_best_of_many:
        selected = model.query_embed.weight.expand(batch_size, num_queries, -1)
        return selected, _training_query_fields(selected, None, None, None, None)
    num_candidates = _resolve_num_candidates(model.config, num_samples_train)
    candidate_queries = _draw_noise(model.config, (batch_size, num_queries, num_candidates), device, generator)
    candidate_queries = candidate_queries.to(dtype)  # (batch, Q, K, Dp)
    candidate_losses, candidate_predictions = score_candidates(candidate_queries)
    best_indices = candidate_losses.argmin(-1)  # (batch, Q)
    selected = torch.gather(
        candidate_queries, 2, best_indices[:, :, None, None].expand(-1, -1, 1, candidate_queries.shape[-1])
    ).squeeze(2)  # (batch, Q, Dp)
    return selected, _training_query_fields(
        selected, candidate_losses, best_indices, candidate_queries, candidate_predictions
    )


def _training_query_fields(selected, candidate_losses, best_indices, candidate_queries, candidate_predictions) -> dict:
    return {
        "selected_queries": selected,
        "candidate_losses": candidate_losses,
        "best_candidate_indices": best_indices,
        "candidate_queries": candidate_queries,
        "candidate_predictions": candidate_predictions,
    }


def _append_context_states(context_states: ContextStates, new_states: ContextStates) -> ContextStates:
    """Append a step's keys/values to the context along the token axis."""
    return [
        (torch.cat((key, new_key), dim=2), torch.cat((value, new_value), dim=2))
        for (key, value), (new_key, new_value) in zip(context_states, new_states)
    ]


def _rollout_step_queries(
    model, step: int, noise, batch_size: int, num_samples: int, device, dtype, generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    The query vector of rollout step `step` per (clip, sample) `(batch * samples, 1, Dp)`, and the step's noise
    `(batch, samples, Dp)` (`None` for the learned query): the given `noise`, else one fresh draw per step.
    """
    hidden_size = model.config.hidden_size
    if not model.config.use_best_of_many:
        # Detached: a view of a parameter made under no_grad still says requires_grad, which trips autograd hooks
        # such as FlopCounterMode's module tracker.
        return model.query_embed.weight.detach()[None].expand(batch_size * num_samples, 1, hidden_size), None
    if noise is not None:
        step_noise = noise[:, :, step].to(device=device, dtype=dtype)
    else:
        step_noise = _draw_noise(model.config, (batch_size, num_samples), device, generator).to(dtype)
    return step_noise.reshape(batch_size * num_samples, 1, hidden_size), step_noise


class DeltaWorldForForecasting(DeltaWorldPreTrainedModel):
    r"""
    DeltaWorld: frozen [`DeltaTokModel`] + predictor over delta tokens.

    - [`forward`]: training loss (Best-of-Many over `num_samples_train` noise queries, or the learned query of the
      deterministic ablation), from frames or from precomputed delta tokens (no backbone call).
    - [`generate`]: `num_samples` futures of a context, as delta tokens and decoded features.
    """

    def __init__(self, config: DeltaWorldConfig) -> None:
        super().__init__(config)
        self.tokenizer = DeltaTokModel(config.tokenizer_config)
        self.tokenizer.requires_grad_(False)
        self.predictor = DeltaWorldPredictor(config)
        # Deterministic ablation: one learned query (official key `q_embed.weight`).
        self.query_embed = None if config.use_best_of_many else nn.Embedding(1, config.hidden_size)
        self.post_init()

    @classmethod
    def from_tokenizer(cls, tokenizer: DeltaTokModel, config: DeltaWorldConfig | None = None) -> "DeltaWorldForForecasting":
        """
        A new DeltaWorld (predictor from `config`'s initialisation, default [`DeltaWorldConfig`]) over a trained
        [`DeltaTokModel`]: a copy of `config` takes a copy of the tokenizer's config, the tokenizer weights are loaded
        (strictly) and frozen. `config` itself is not changed.
        """
        if not isinstance(tokenizer, DeltaTokModel):
            raise TypeError(f"tokenizer must be a DeltaTokModel, got {type(tokenizer).__name__}.")
        config = copy.deepcopy(config) if config is not None else DeltaWorldConfig()
        config.tokenizer_config = copy.deepcopy(tokenizer.config)
        model = cls(config)
        model.tokenizer.load_state_dict(tokenizer.state_dict(), strict=True)
        model.tokenizer.requires_grad_(False)
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """
        Like [`PreTrainedModel.from_pretrained`]. A checkpoint holding only the predictor (the official release) gets its
        tokenizer from `config.tokenizer_name_or_path` and its backbone from the tokenizer's `backbone_name_or_path`.
        Wrong-shape weights raise a `ValueError` naming every key (unless `ignore_mismatched_sizes=True`).
        """
        output_loading_info = kwargs.pop("output_loading_info", False)
        model, loading_info = _from_pretrained_naming_mismatches(
            super().from_pretrained, pretrained_model_name_or_path, *model_args, **kwargs
        )
        missing = loading_info.get("missing_keys", [])
        tokenizer_missing = [k for k in missing if k.startswith("tokenizer.") and not k.startswith("tokenizer.backbone.")]
        if tokenizer_missing:
            source = model.config.tokenizer_name_or_path
            if source is None:
                raise ValueError(
                    f"The checkpoint has no tokenizer weights ({len(tokenizer_missing)} missing keys such as "
                    f"{tokenizer_missing[0]!r}) and config.tokenizer_name_or_path is not set."
                )
            hub_kwargs = {k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only") if k in kwargs}
            tokenizer = DeltaTokModel.from_pretrained(source, **hub_kwargs)
            model.tokenizer.load_state_dict(tokenizer.state_dict(), strict=True)
            model.tokenizer.requires_grad_(False)
            loading_info = dict(loading_info)
            loading_info["missing_keys"] = [k for k in missing if not k.startswith("tokenizer.")]
            loading_info["tokenizer_loaded_from"] = source
        else:
            loading_info = _fill_missing_backbone(model, loading_info, kwargs, prefix="tokenizer.backbone.")
        return (model, loading_info) if output_loading_info else model

    # ------------------------------------------------------------------ training

    def _check_delta_tokens(self, delta_tokens, frames_name: str) -> None:
        """`delta_tokens (batch_size, num_frames, D)`: a finite floating-point tensor with at least one clip."""
        if not isinstance(delta_tokens, torch.Tensor):
            raise TypeError(f"delta_tokens must be a torch.Tensor, got {type(delta_tokens).__name__}.")
        if delta_tokens.ndim != 3 or delta_tokens.shape[-1] != self.config.delta_token_size:
            raise ValueError(
                f"delta_tokens must have shape (batch_size, {frames_name}, {self.config.delta_token_size}), "
                f"got {tuple(delta_tokens.shape)}."
            )
        if delta_tokens.shape[0] == 0:
            raise ValueError(f"delta_tokens must hold at least one clip, got shape {tuple(delta_tokens.shape)}.")
        check_finite_tensor("delta_tokens", delta_tokens)

    def encode_context(
        self, frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """
        Frames -> `(delta_tokens (B, T, D), features (B, T, N, D), tokenizer RoPE)`. In train mode the random draws
        follow the official order: backbone on the frames, backbone on the black frame, tokenizer RoPE.
        """
        height, width = frames.shape[-2:]
        with torch.no_grad():
            features = self.tokenizer.extract_features(frames)
            black = self.tokenizer.black_frame_features(height, width, device=features.device, dtype=features.dtype)
            rope = self.tokenizer.position_embeddings(height, width, device=features.device)
            delta_tokens = self.tokenizer.tokenize(features, black, rope)
        return delta_tokens, features, rope

    @torch.no_grad()
    def _score_candidates(
        self,
        candidate_queries: torch.Tensor,
        context: torch.Tensor,
        context_timestamps: torch.Tensor,
        query_timestamps: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        keep_predictions: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Best-of-Many scores without an autograd graph: the smooth-L1 of every candidate `(batch, num_queries, K)`,
        and with `keep_predictions` every candidate's prediction `(batch, num_queries, K, D)`.

        At most `config.candidate_chunk_size` candidate queries (summed over the batch and the targets; all at once when
        `None`) go through the predictor per pass, so the activations alive at once do not grow with `K`; a pass holds at
        least one candidate per target. Queries never attend to each other, so a candidate's prediction does not depend
        on which others share its pass; the context keys/values are projected once for all passes.
        """
        batch_size, num_queries, num_candidates = candidate_queries.shape[:3]
        chunk_size = self.config.candidate_chunk_size
        candidates_per_pass = num_candidates if chunk_size is None else max(1, chunk_size // (batch_size * num_queries))
        beta = self.config.smooth_l1_beta
        context_states = self.predictor.project_context(context, context_timestamps)
        losses, predictions = [], []
        for start in range(0, num_candidates, candidates_per_pass):
            chunk = candidate_queries[:, :, start : start + candidates_per_pass]  # (batch, num_queries, chunk, Dp)
            chunk_length = chunk.shape[2]
            # Rows are (query, candidate) pairs, candidate the fast axis: row q * chunk + k is candidate k of query q.
            chunk_predictions = self.predictor(
                chunk.flatten(1, 2),
                query_timestamps.repeat_interleave(chunk_length, dim=1),
                context_states=context_states,
                attention_mask=mask.repeat_interleave(chunk_length, dim=0),
            ).unflatten(1, (num_queries, chunk_length))  # (batch, num_queries, chunk, D)
            expanded_targets = targets[:, :, None].expand_as(chunk_predictions)
            losses.append(smooth_l1(chunk_predictions, expanded_targets, beta).mean(-1))  # (batch, num_queries, chunk)
            if keep_predictions:
                predictions.append(chunk_predictions)
        candidate_losses = losses[0] if len(losses) == 1 else torch.cat(losses, dim=2)
        if not keep_predictions:
            return candidate_losses, None
        return candidate_losses, predictions[0] if len(predictions) == 1 else torch.cat(predictions, dim=2)

    def forward(
        self,
        frames: torch.Tensor | None = None,
        timestamps: torch.Tensor | None = None,
        delta_tokens: torch.Tensor | None = None,
        num_samples_train: int | None = None,
        generator: torch.Generator | None = None,
        output_candidates: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DeltaWorldOutput | tuple:
        """
        Teacher-forced training step over a clip: the query for frame `t + 1` sees the delta tokens `z_1..z_t`.

        Args:
            frames: `(batch_size, num_frames, 3, height, width)` RGB in 0..255; or
            delta_tokens: precomputed `(batch_size, num_frames, D)` (from a token cache; no backbone call).
            timestamps: `(batch_size, num_frames)` seconds (relative to the first frame in the official data).
            num_samples_train: Best-of-Many candidates `K` (defaults to `config.num_samples_train`); scored
                at most `config.candidate_chunk_size` queries per predictor pass.
            generator: for the noise queries (the global generator by default, as the official code).
            output_candidates: also return every candidate's prediction.
        """
        if (frames is None) == (delta_tokens is None):
            raise ValueError("Pass exactly one of frames or delta_tokens.")
        if frames is not None:
            self.tokenizer._check_frames(frames)
            batch_size, num_frames = frames.shape[:2]
            device = frames.device
        else:
            self._check_delta_tokens(delta_tokens, "num_frames")
            batch_size, num_frames = delta_tokens.shape[:2]
            device = delta_tokens.device
        if num_frames < 2:
            raise ValueError(f"Training needs at least 2 frames per clip, got {num_frames}.")
        timestamps = _check_timestamps(timestamps, batch_size, num_frames, device)
        if frames is not None:
            delta_tokens, _, _ = self.encode_context(frames)
        delta_tokens = delta_tokens.detach().to(self.predictor.head.weight.dtype)

        num_queries = num_frames - 1
        context, targets = delta_tokens[:, :-1], delta_tokens[:, 1:]
        query_timestamps, context_timestamps = timestamps[:, 1:], timestamps[:, :-1]
        mask = causal_context_mask(num_queries, num_queries, device, context.dtype)
        beta = self.config.smooth_l1_beta

        selected, query_fields = _select_training_queries(
            self,
            num_samples_train,
            batch_size,
            num_queries,
            device,
            context.dtype,
            generator,
            lambda candidates: self._score_candidates(
                candidates, context, context_timestamps, query_timestamps, targets, mask, output_candidates
            ),
        )

        predicted = self.predictor(selected, query_timestamps, context, context_timestamps, attention_mask=mask)
        loss = smooth_l1(predicted, targets, beta).mean()
        output = DeltaWorldOutput(
            loss=loss, predicted_delta_tokens=predicted, target_delta_tokens=targets, **query_fields
        )
        return output if return_dict is not False else output.to_tuple()

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def decode_future(
        self, future_delta_tokens: torch.Tensor, last_features: torch.Tensor, grid_size: tuple[int, int]
    ) -> torch.Tensor:
        """
        Decode sampled futures after the rollout (e.g. only the samples chosen among many): the same step-by-step
        DeltaTok decoding as `generate(decode=True)`, from the last context features.

        Args:
            future_delta_tokens: `(batch_size, num_samples, num_future_frames, D)`.
            last_features: `(batch_size, num_patches, D)`, the features of the last context frame.
            grid_size: patch rows and columns of the frames (`rows * columns = num_patches`).

        Returns:
            `(batch_size, num_samples, num_future_frames, num_patches, D)` features.
        """
        if future_delta_tokens.ndim != 4 or last_features.ndim != 3 or future_delta_tokens.shape[0] != last_features.shape[0]:
            raise ValueError(
                "future_delta_tokens must be (batch_size, num_samples, num_future_frames, D) and last_features "
                f"(batch_size, num_patches, D), got {tuple(future_delta_tokens.shape)} and {tuple(last_features.shape)}."
            )
        rows, columns = grid_size
        if rows * columns != last_features.shape[1]:
            raise ValueError(f"grid_size {grid_size} does not match {last_features.shape[1]} patches.")
        batch_size, num_samples, num_future = future_delta_tokens.shape[:3]
        patch_size = self.tokenizer.patch_size
        rope = self.tokenizer.position_embeddings(rows * patch_size, columns * patch_size, device=last_features.device)
        dtype = self.predictor.head.weight.dtype
        tokens = future_delta_tokens.to(dtype).flatten(0, 1)  # (batch * samples, F, D), sample index fastest
        previous = last_features.to(dtype).repeat_interleave(num_samples, 0)  # (batch * samples, N, D)
        features = []
        for step in range(num_future):
            previous = self.tokenizer.decode_step(tokens[:, step], previous, rope)
            features.append(previous)
        return torch.stack(features, dim=1).unflatten(0, (batch_size, num_samples))

    @torch.no_grad()
    def generate(
        self,
        frames: torch.Tensor | None = None,
        timestamps: torch.Tensor | None = None,
        future_timestamps: torch.Tensor | None = None,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
        delta_tokens: torch.Tensor | None = None,
        last_features: torch.Tensor | None = None,
        grid_size: tuple[int, int] | None = None,
        noise: torch.Tensor | None = None,
        decode: bool = True,
        return_dict: bool | None = None,
        step_callback: Callable[[int, torch.Tensor, torch.Tensor | None], None] | None = None,
    ) -> DeltaWorldForecastOutput | tuple:
        """
        Sample futures of a context.

        Args:
            frames: context frames `(batch_size, num_context_frames, 3, height, width)`, RGB in 0..255. Only these are
                encoded; or
            delta_tokens: context delta tokens `(batch_size, num_context_frames, D)` with `last_features`
                `(batch_size, num_patches, D)` (the features decoding starts from) and `grid_size` for non-square
                grids.
            timestamps: context times `(batch_size, num_context_frames)` in seconds, strictly increasing.
            future_timestamps: times to predict, `(batch_size, num_future_frames)` or 1-D, strictly increasing and after
                the last context time; any spacing.
            num_samples: futures per clip (default `config.num_samples_eval`; 1 for the deterministic model).
            generator: `torch.Generator` for the noise queries; one draw of shape `(batch, num_samples, 1, Dp)` per
                step, in step order (the official order, so a generator seeded like the official global seed gives the
                same futures).
            noise: explicit noise queries `(batch_size, num_samples, num_future_frames, Dp)` instead of drawing them.
            decode: also decode features with the DeltaTok decoder (step by step, from the last context features).
            step_callback: called after every rollout step as `step_callback(step, delta_tokens, features)` with the
                step's tokens `(batch_size * num_samples, D)` and decoded features `(batch_size * num_samples, N, D)`
                (`None` without decoding), sample index fastest; the pipeline's progress bar and callbacks hook in here.
        """
        # 1. Check inputs.
        if (frames is None) == (delta_tokens is None):
            raise ValueError("Pass exactly one of frames or delta_tokens.")
        if frames is not None:
            self.tokenizer._check_frames(frames)
            batch_size, num_context = frames.shape[:2]
            device = frames.device
            grid_size = self.tokenizer.grid_size(*frames.shape[-2:])
        else:
            self._check_delta_tokens(delta_tokens, "num_context_frames")
            batch_size, num_context = delta_tokens.shape[:2]
            device = delta_tokens.device
            if decode:
                if last_features is None:
                    raise ValueError("Decoding from delta_tokens needs last_features (batch_size, num_patches, D).")
                self.tokenizer._check_features("last_features", last_features, 3)
                if last_features.ndim != 3 or last_features.shape[0] != batch_size:
                    raise ValueError(
                        f"last_features must have shape ({batch_size}, num_patches, D), got {tuple(last_features.shape)}."
                    )
                if grid_size is not None:
                    if (
                        not isinstance(grid_size, (tuple, list))
                        or len(grid_size) != 2
                        or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in grid_size)
                    ):
                        raise ValueError(f"grid_size must be (rows, columns) of positive integers, got {grid_size!r}.")
                    if grid_size[0] * grid_size[1] != last_features.shape[1]:
                        raise ValueError(
                            f"grid_size={tuple(grid_size)} has {grid_size[0] * grid_size[1]} patches but last_features "
                            f"has {last_features.shape[1]}."
                        )
        if num_context < 1:
            raise ValueError("At least one context frame is needed.")
        timestamps = _check_timestamps(timestamps, batch_size, num_context, device)
        future_timestamps = _check_future_timestamps(future_timestamps, timestamps, device)
        num_future = future_timestamps.shape[1]
        num_samples = _resolve_num_samples(self.config, num_samples, noise)
        if noise is not None:
            check_finite_tensor("noise", noise)
            _check_noise_shape(noise, batch_size, num_samples, num_future, self.config.hidden_size)

        # 2. Encode the context once (never the frames to predict).
        context_features = None
        if frames is not None:
            delta_tokens, context_features, rope = self.encode_context(frames)
            last_features = context_features[:, -1]
        elif decode:
            rows, columns = grid_size if grid_size is not None else _grid_from_num_patches(last_features.shape[1])
            grid_size = (rows, columns)
            rope = self.tokenizer.position_embeddings(rows * self.tokenizer.patch_size, columns * self.tokenizer.patch_size, device=device)
        dtype = self.predictor.head.weight.dtype
        context_tokens = delta_tokens.to(dtype)

        # 3. Context keys/values: projected once per clip and shared by its samples (never copied per sample); each
        # sample's own predicted tokens get their keys/values in `sample_states` (sample index is the fast axis).
        context_states = self.predictor.project_context(context_tokens, timestamps)
        sample_states = None
        previous = None
        if decode:
            previous = last_features.to(dtype).repeat_interleave(num_samples, 0)
        future_times = future_timestamps.repeat_interleave(num_samples, 0)  # (batch * samples, num_future)

        # 4. Roll out step by step.
        tokens, features, noises = [], [], []
        for step in range(num_future):
            step_times = future_times[:, step : step + 1]
            queries, step_noise = _rollout_step_queries(
                self, step, noise, batch_size, num_samples, device, dtype, generator
            )  # (batch * samples, 1, Dp)
            if step_noise is not None:
                noises.append(step_noise)  # (batch, samples, Dp)
            token = self.predictor(
                queries, step_times, context_states=context_states, sample_states=sample_states, num_samples=num_samples
            )  # (batch * samples, 1, D)
            tokens.append(token[:, 0])
            if decode:
                previous = self.tokenizer.decode_step(token[:, 0], previous, rope)
                features.append(previous)
            if step_callback is not None:
                step_callback(step, token[:, 0], previous if decode else None)
            if step + 1 < num_future:
                new_states = self.predictor.project_context(token, step_times)
                sample_states = new_states if sample_states is None else _append_context_states(sample_states, new_states)

        # 5. Shape the outputs per clip and sample.
        future_tokens = torch.stack(tokens, dim=1).unflatten(0, (batch_size, num_samples))
        future_features = torch.stack(features, dim=1).unflatten(0, (batch_size, num_samples)) if decode else None
        if not torch.isfinite(future_tokens).all() or (decode and not torch.isfinite(future_features).all()):
            # Finite inputs can still overflow (e.g. huge context features in bf16): say so rather than return NaN.
            raise ValueError(
                f"The forecast is not finite in {dtype}: the inputs are outside the range the model can represent "
                f"(largest |delta token| {delta_tokens.abs().max().item():.3g})."
            )
        output = DeltaWorldForecastOutput(
            future_features=future_features,
            future_delta_tokens=future_tokens,
            context_delta_tokens=delta_tokens,
            context_features=context_features,
            noise=torch.stack(noises, dim=2) if noises else None,
            future_timestamps=future_timestamps,
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "DeltaWorldForForecasting",
    "DeltaWorldPreTrainedModel",
    "DeltaWorldPredictor",
    "DeltaWorldOutput",
    "DeltaWorldForecastOutput",
    "causal_context_mask",
]
