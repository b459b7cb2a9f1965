"""DINO-world: a predictor over the full grid of frozen DINOv3 patch features (steps 0 and 1 of the ablation ladder).

Paper: "A Frame is Worth One Token" (Kerssies et al., CVPR 2026), section 5 (ablations), after DINO-world (Baldassarre
et al., 2025). Official re-implementation: github.com/amazon-far/deltatok (`models/dinoworld.py`, `models/world.py`).

The predictor is DeltaWorld's (same cross-attention blocks, LayerScale, final norm and head), but its context is every
patch of every past frame and it has one query token per patch of the frame to predict. Queries carry no position of
their own: a 3-axis RoPE over (time, w, h) tells them apart.

- Step 0 (`use_best_of_many=False`): one learned query vector, shared by every patch of every frame. One future.
- Step 1 (`use_best_of_many=True`): one noise vector per sampled future and frame, copied to the frame's patches, and
  Best-of-Many training: `K` candidates are scored without an autograd graph and only the winner is run again with
  gradients, so the training graph is as large as step 0's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import nn
from transformers import DINOv3ViTModel, PreTrainedModel
from transformers.utils import ModelOutput, logging

from ..deltatok.modeling_deltatok import (
    DeltaTokBackboneLoadingMixin,
    _grid_from_num_patches,
    init_official_weights,
)
from ..deltaworld.modeling_deltaworld import (
    DeltaWorldForecastOutput,
    DeltaWorldPredictor,
    DeltaWorldTimeRotaryEmbedding,
    _append_context_states,
    _check_future_timestamps,
    _check_noise_shape,
    _check_timestamps,
    _resolve_num_samples,
    _rollout_step_queries,
    _select_training_queries,
    causal_context_mask,
    smooth_l1,
)
from .configuration_dinoworld import DinoWorldConfig

logger = logging.get_logger(__name__)


@dataclass
class DinoWorldOutput(ModelOutput):
    """
    Output of [`DinoWorldForForecasting.forward`]: one training step, every frame predicted in parallel under a
    block-causal mask.

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Smooth-L1 (β = `config.smooth_l1_beta`) between predicted and target patch features, mean over all.
        predicted_features (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_patches, hidden_size)`):
            Prediction of frames 2..T from the selected queries (with gradient).
        target_features (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_patches, hidden_size)`):
            Backbone features of frames 2..T.
        selected_queries (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, predictor_hidden_size)`):
            The query vector of every target frame (copied to its patches): the Best-of-Many winner or the learned query.
        candidate_losses (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_samples_train)`, *optional*):
            Smooth-L1 of every candidate, mean over patches and channels. Best-of-Many only.
        best_candidate_indices (`torch.LongTensor` of shape `(batch_size, num_frames - 1)`, *optional*):
            Winning candidate (first argmin). Best-of-Many only.
        candidate_queries (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_samples_train, predictor_hidden_size)`, *optional*):
            Every noise vector drawn. Best-of-Many only.
        candidate_predictions (`torch.FloatTensor` of shape `(batch_size, num_frames - 1, num_samples_train, num_patches, hidden_size)`, *optional*):
            Prediction of every candidate; returned with `output_candidates=True`.
    """

    loss: torch.FloatTensor | None = None
    predicted_features: torch.FloatTensor | None = None
    target_features: torch.FloatTensor | None = None
    selected_queries: torch.FloatTensor | None = None
    candidate_losses: torch.FloatTensor | None = None
    best_candidate_indices: torch.LongTensor | None = None
    candidate_queries: torch.FloatTensor | None = None
    candidate_predictions: torch.FloatTensor | None = None


class DinoWorldRotaryEmbedding(nn.Module):
    """
    RoPE over three axes (time, w, h). Axis `i` rotates its own `rope_axis_sizes[i]` head dims split-half, exactly as
    DeltaWorld's one-axis time RoPE does (same float32 angle order), so each axis is one of those; the trailing
    `rope_unrotated_size` dims are left alone.

    It has the interface the DeltaWorld predictor layers call: `forward(positions)` gives the rotation, `rotate(states,
    rotation)` applies it. Positions are `(batch, seq_len, 3)` instead of `(batch, seq_len)` timestamps.
    """

    def __init__(self, config: DinoWorldConfig) -> None:
        super().__init__()
        self.axis_sizes = list(config.rope_axis_sizes)
        self.axes = nn.ModuleList(
            DeltaWorldTimeRotaryEmbedding(
                SimpleNamespace(
                    rope_axis_sizes=(size,),
                    rope_min_exponent=config.rope_min_exponent,
                    rope_max_exponent=config.rope_max_exponent,
                )
            )
            for size in self.axis_sizes
        )

    def forward(self, positions: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`(batch, seq_len, 3)` -> per axis `(cos, sin)`, each `(batch, 1, seq_len, axis_size // 2)`."""
        return [axis(positions[..., index]) for index, axis in enumerate(self.axes)]

    def rotate(self, states: torch.Tensor, rotation: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Rotate `(batch, num_heads, seq_len, head_size)`: axis by axis, then the unrotated tail."""
        pieces, offset = [], 0
        for axis, size, axis_rotation in zip(self.axes, self.axis_sizes, rotation):
            pieces.append(axis.rotate(states[..., offset : offset + size], axis_rotation))
            offset += size
        pieces.append(states[..., offset:])
        return torch.cat(pieces, dim=-1)


class DinoWorldPredictor(DeltaWorldPredictor):
    """
    DeltaWorld's predictor with the (time, w, h) RoPE: the `*_timestamps` arguments of [`DeltaWorldPredictor`] take
    positions `(batch, seq_len, 3)` here. `kv_proj` reads `D`-wide patch features and the head writes them.
    """

    def __init__(self, config: DinoWorldConfig) -> None:
        super().__init__(config)
        self.rotary = DinoWorldRotaryEmbedding(config)


def spatial_coordinates(rows: int, columns: int, device=None) -> torch.Tensor:
    """
    Predictor RoPE coordinates `(rows * columns, 2)` as `(w, h)` per patch in raster order: `w = linspace(-1, 1,
    columns)[col]`, `h = linspace(-1, 1, rows)[row]`. Note: end points included and independent of pixels, unlike the
    backbone's patch-centre coordinates; a single patch along an axis gets -1 (official `_prepare_spatial_coords`).
    """
    rows_coordinates, column_coordinates = torch.meshgrid(
        torch.linspace(-1, 1, rows, device=device), torch.linspace(-1, 1, columns, device=device), indexing="ij"
    )
    return torch.stack((column_coordinates.flatten(), rows_coordinates.flatten()), dim=-1)


def token_positions(timestamps: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
    """
    `(batch, num_frames)` seconds and `(num_patches, 2)` coordinates -> `(batch, num_frames * num_patches, 3)`
    positions `(time, w, h)`, frame-major (token `f * num_patches + n` is patch `n` of frame `f`).
    """
    batch_size, num_frames = timestamps.shape
    num_patches = coordinates.shape[0]
    times = timestamps[:, :, None, None].expand(batch_size, num_frames, num_patches, 1)
    space = coordinates.to(timestamps.dtype)[None, None].expand(batch_size, num_frames, num_patches, 2)
    return torch.cat((times, space), dim=-1).flatten(1, 2)


def block_causal_mask(
    num_query_frames: int, num_context_frames: int, num_patches: int, queries_per_frame: int | None = None, device=None
) -> torch.Tensor:
    """
    Additive mask `(num_query_frames * queries_per_frame, num_context_frames * num_patches)`: every query token of
    query frame `i` (predicting frame `i + 1`) sees the patches of context frames `0..i`. `queries_per_frame` defaults
    to `num_patches` (Best-of-Many scoring stacks several candidates per frame).
    """
    frame_mask = causal_context_mask(num_query_frames, num_context_frames, device)
    queries_per_frame = num_patches if queries_per_frame is None else queries_per_frame
    return frame_mask.repeat_interleave(queries_per_frame, dim=0).repeat_interleave(num_patches, dim=1)


class DinoWorldPreTrainedModel(PreTrainedModel):
    config: DinoWorldConfig
    config_class = DinoWorldConfig
    base_model_prefix = "dinoworld"
    main_input_name = "frames"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["DeltaWorldLayer", "DINOv3ViTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Official predictor init (the backbone, a sub-model, is initialised by its own class)."""
        init_official_weights(module, self.config.initializer_range, self.config.layer_scale_init)


class DinoWorldForForecasting(DeltaTokBackboneLoadingMixin, DinoWorldPreTrainedModel):
    r"""
    DINO-world: frozen DINOv3 + a predictor of the next frame's patch features.

    - [`forward`]: training loss over a clip, every frame predicted in parallel under a block-causal mask; from frames
      or from precomputed features (no backbone call).
    - [`generate`]: autoregressive rollout of `num_samples` futures (1 for the learned-query model); the predicted
      features join the context as the next frame.

    The patch geometry is public, as the pipeline needs it: [`patch_size`], [`grid_size`], [`extract_features`].
    `from_pretrained` is DeltaTok's: a checkpoint without backbone weights (the official filter keeps only the
    predictor and the query) gets them from `config.backbone_name_or_path`; wrong-shape weights raise a `ValueError`.
    """

    def __init__(self, config: DinoWorldConfig) -> None:
        super().__init__(config)
        self.backbone = DINOv3ViTModel(config.backbone_config)
        self.backbone.requires_grad_(False)
        self.predictor = DinoWorldPredictor(config)
        # Step 0: one learned query (official key `q_embed.weight`), trained with the predictor.
        self.query_embed = None if config.use_best_of_many else nn.Embedding(1, config.hidden_size)
        self.post_init()

    def train(self, mode: bool = True) -> "DinoWorldForForecasting":
        # Note: as in the official training, the frozen backbone follows the train mode, which only switches on
        # DINOv3's RoPE rescale augmentation (one random draw per backbone call). `use_rope_augmentation=False` opts out.
        super().train(mode)
        if not self.config.use_rope_augmentation:
            self.backbone.eval()
        return self

    # ------------------------------------------------------------------ features

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid `(rows, columns)` of a frame; raises if the frame is not a multiple of the patch size."""
        patch = self.patch_size
        if height <= 0 or width <= 0 or height % patch or width % patch:
            raise ValueError(
                f"Frame size {height}x{width} (height x width) is not a positive multiple of the patch size {patch}; "
                "resize or crop the frames first."
            )
        return height // patch, width // patch

    def _check_frames(self, frames: torch.Tensor) -> tuple[int, int]:
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}.")
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(
                f"frames must have shape (batch_size, num_frames, 3, height, width), got {tuple(frames.shape)}."
            )
        return self.grid_size(frames.shape[-2], frames.shape[-1])

    @torch.no_grad()
    def extract_features(self, frames: torch.Tensor) -> torch.Tensor:
        """
        Frozen backbone features of `frames (batch_size, num_frames, 3, height, width)`, RGB in 0..255 ->
        `(batch_size, num_frames, num_patches, hidden_size)` in raster order. Preprocessing is `(x / 255 - mean) / std`
        (no resize or crop); one backbone call for all frames (one RoPE rescale draw in train mode, as the official code).
        """
        self._check_frames(frames)
        batch_size, num_frames = frames.shape[:2]
        mean = torch.tensor(self.config.image_mean, device=frames.device).view(3, 1, 1)
        std = torch.tensor(self.config.image_std, device=frames.device).view(3, 1, 1)
        pixel_values = (frames.flatten(0, 1).to(torch.float32) * (1.0 / 255.0) - mean) / std
        hidden = self.backbone(pixel_values=pixel_values.to(self.backbone.dtype)).last_hidden_state
        # (batch * frames, prefix + patches, D) -> (batch, frames, patches, D)
        return hidden[:, self.config.num_prefix_tokens :].unflatten(0, (batch_size, num_frames))

    def _resolve_features(self, frames, features, grid_size, what: str) -> tuple[torch.Tensor, tuple[int, int]]:
        """Exactly one of frames / features -> `(features (B, T, N, D), (rows, columns))`."""
        if (frames is None) == (features is None):
            raise ValueError("Pass exactly one of frames or features.")
        if frames is not None:
            grid = self._check_frames(frames)
            return self.extract_features(frames), grid
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"features must be a torch.Tensor, got {type(features).__name__}.")
        if features.ndim != 4 or features.shape[-1] != self.config.feature_size:
            raise ValueError(
                f"features must have shape (batch_size, {what}, num_patches, {self.config.feature_size}), "
                f"got {tuple(features.shape)}."
            )
        grid = tuple(grid_size) if grid_size is not None else _grid_from_num_patches(features.shape[2])
        if grid[0] * grid[1] != features.shape[2]:
            raise ValueError(f"grid_size={grid_size} has {grid[0] * grid[1]} patches but features have {features.shape[2]}.")
        return features, grid

    # ------------------------------------------------------------------ training

    def forward(
        self,
        frames: torch.Tensor | None = None,
        timestamps: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        grid_size: tuple[int, int] | None = None,
        num_samples_train: int | None = None,
        generator: torch.Generator | None = None,
        output_candidates: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DinoWorldOutput | tuple:
        """
        Teacher-forced training step: the `N` query tokens of frame `t + 1` see every patch of frames `1..t`.

        Args:
            frames: `(batch_size, num_frames, 3, height, width)` RGB in 0..255; or
            features: precomputed backbone features `(batch_size, num_frames, num_patches, D)` (with `grid_size` for
                non-square grids).
            timestamps: `(batch_size, num_frames)` seconds, strictly increasing.
            num_samples_train: Best-of-Many candidates `K` (default `config.num_samples_train`).
            generator: for the noise queries (the global generator by default, as the official code; the backbone's
                train-mode draw always uses the global generator, before the noise).
            output_candidates: also return every candidate's prediction.
        """
        # 1. Features of every frame (the backbone draws its RoPE rescale first, as the official order).
        features, (rows, columns) = self._resolve_features(frames, features, grid_size, "num_frames")
        batch_size, num_frames, num_patches, feature_size = features.shape
        if num_frames < 2:
            raise ValueError(f"Training needs at least 2 frames per clip, got {num_frames}.")
        device = features.device
        timestamps = _check_timestamps(timestamps, batch_size, num_frames, device)
        dtype = self.predictor.head.weight.dtype
        features = features.detach().to(dtype)

        # 2. Layout: context = frames 1..T-1 frame-major, one query token per patch of frames 2..T.
        num_query_frames = num_frames - 1
        context = features[:, :-1].flatten(1, 2)  # (batch, (T - 1) * N, D)
        targets = features[:, 1:]  # (batch, T - 1, N, D)
        coordinates = spatial_coordinates(rows, columns, device)  # (N, 2)
        context_positions = token_positions(timestamps[:, :-1], coordinates)  # (batch, (T - 1) * N, 3)
        query_positions = token_positions(timestamps[:, 1:], coordinates)  # (batch, (T - 1) * N, 3)
        mask = block_causal_mask(num_query_frames, num_query_frames, num_patches, device=device).to(dtype)
        beta = self.config.smooth_l1_beta

        # 3. Queries: the learned vector, or the Best-of-Many winner among K noise vectors.
        selected, query_fields = _select_training_queries(
            self,
            num_samples_train,
            batch_size,
            num_query_frames,
            device,
            dtype,
            generator,
            lambda candidates: self._score_candidates(
                candidates, context, context_positions, query_positions, targets, output_candidates
            ),
        )  # selected: (batch, T - 1, Dp)

        # 4. The one predictor call with gradients: each frame's vector at all of its N patches.
        queries = selected[:, :, None].expand(-1, -1, num_patches, -1).flatten(1, 2)  # (batch, (T - 1) * N, Dp)
        predicted = self.predictor(queries, query_positions, context, context_positions, attention_mask=mask)
        predicted = predicted.unflatten(1, (num_query_frames, num_patches))  # (batch, T - 1, N, D)
        loss = smooth_l1(predicted, targets, beta).mean()
        output = DinoWorldOutput(loss=loss, predicted_features=predicted, target_features=targets, **query_fields)
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def _score_candidates(
        self,
        candidate_queries: torch.Tensor,
        context: torch.Tensor,
        context_positions: torch.Tensor,
        query_positions: torch.Tensor,
        targets: torch.Tensor,
        keep_predictions: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Smooth-L1 of every candidate `(batch, T - 1, K)`, without an autograd graph. Candidate `(f, k)` is its noise
        vector at the N patches of target frame `f + 1`; all go through the predictor in chunks of
        `config.candidate_chunk_size` candidates per frame, token order (frame, candidate, patch) within a chunk,
        under the same block-causal mask. The context keys and values are projected once for all chunks.
        """
        batch_size, num_query_frames, num_candidates, hidden_size = candidate_queries.shape
        num_patches = targets.shape[2]
        chunk = self.config.candidate_chunk_size or num_candidates
        context_states = self.predictor.project_context(context, context_positions)
        # (batch, T - 1, 1, N, 3): the positions of frame f's patches, shared by its candidates.
        frame_positions = query_positions.unflatten(1, (num_query_frames, 1, num_patches))
        losses, predictions = [], []
        for start in range(0, num_candidates, chunk):
            queries = candidate_queries[:, :, start : start + chunk]  # (batch, T - 1, k, Dp)
            size = queries.shape[2]
            queries = queries[:, :, :, None].expand(-1, -1, -1, num_patches, -1).flatten(1, 3)  # (batch, (T-1)·k·N, Dp)
            positions = frame_positions.expand(-1, -1, size, -1, -1).flatten(1, 3)  # (batch, (T-1)·k·N, 3)
            mask = block_causal_mask(num_query_frames, num_query_frames, num_patches, size * num_patches, context.device)
            predicted = self.predictor(
                queries, positions, context_states=context_states, attention_mask=mask.to(context.dtype)
            ).view(batch_size, num_query_frames, size, num_patches, -1)  # (batch, T - 1, k, N, D)
            # Official score: the element-wise loss averaged over the candidate's N x D features.
            errors = smooth_l1(predicted, targets[:, :, None].expand_as(predicted), self.config.smooth_l1_beta)
            losses.append(errors.flatten(3).mean(-1))  # (batch, T - 1, k)
            if keep_predictions:
                predictions.append(predicted)
        return torch.cat(losses, dim=2), (torch.cat(predictions, dim=2) if keep_predictions else None)

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def generate(
        self,
        frames: torch.Tensor | None = None,
        timestamps: torch.Tensor | None = None,
        future_timestamps: torch.Tensor | None = None,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
        features: torch.Tensor | None = None,
        grid_size: tuple[int, int] | None = None,
        noise: torch.Tensor | None = None,
        decode: bool = True,
        return_dict: bool | None = None,
        step_callback: Callable[[int, torch.Tensor | None, torch.Tensor], None] | None = None,
    ) -> DeltaWorldForecastOutput | tuple:
        """
        Roll out futures of a context, frame by frame: each predicted frame joins the context.

        Args:
            frames: context frames `(batch_size, num_context_frames, 3, height, width)`, RGB in 0..255 (only these go
                through the backbone); or
            features: their backbone features `(batch_size, num_context_frames, num_patches, D)` with `grid_size` for
                non-square grids.
            timestamps: context times `(batch_size, num_context_frames)` in seconds, strictly increasing.
            future_timestamps: times to predict, `(batch_size, num_future_frames)` or 1-D, strictly increasing and after
                the last context time.
            num_samples: futures per clip (default `config.num_samples_eval`; 1 for the learned-query model).
            generator: for the noise; one draw of shape `(batch, num_samples, Dp)` per step, in step order (the
                official order, so a generator seeded like the official global seed gives the same futures).
            noise: explicit noise queries `(batch_size, num_samples, num_future_frames, Dp)` instead of drawing them.
            decode: must be `True` (accepted for the interface of [`DeltaWorldForForecasting.generate`]): the
                predictions are features already; there are no tokens to return undecoded.
            step_callback: called after every step as `step_callback(step, None, features)` with the step's features
                `(batch_size * num_samples, N, D)`, sample index fastest (the same call as DeltaWorld's, whose second
                argument, the delta tokens, does not exist here); the pipeline's progress bar hooks in here.
        Returns:
            [`DeltaWorldForecastOutput`] (the output of every world model of the package) with `future_features`
            `(batch, samples, future_frames, N, D)`, `context_features`, `noise` and `future_timestamps`; the
            delta-token fields are `None` (no tokenizer here).
        """
        # 1. Check inputs.
        if decode is not True:
            raise ValueError(
                f"decode={decode!r}: DINO-world predicts patch features directly, it has no tokens to return undecoded."
            )
        context_features, (rows, columns) = self._resolve_features(frames, features, grid_size, "num_context_frames")
        batch_size, num_context, num_patches, _ = context_features.shape
        if num_context < 1:
            raise ValueError("At least one context frame is needed.")
        device = context_features.device
        timestamps = _check_timestamps(timestamps, batch_size, num_context, device, "num_context_frames")
        future_timestamps = _check_future_timestamps(future_timestamps, timestamps, device)
        num_future = future_timestamps.shape[1]
        num_samples = _resolve_num_samples(self.config, num_samples, noise)
        if noise is not None:
            if not self.config.use_best_of_many:
                raise ValueError("noise is only used by Best-of-Many models (use_best_of_many=True).")
            _check_noise_shape(noise, batch_size, num_samples, num_future, self.config.hidden_size)

        # 2. Context keys/values: projected once per clip and shared by its samples (never copied per sample); each
        # sample's own predicted frames get theirs in `sample_states` (sample index is the fast axis).
        dtype = self.predictor.head.weight.dtype
        coordinates = spatial_coordinates(rows, columns, device)  # (N, 2)
        context_positions = token_positions(timestamps, coordinates)  # (batch, C * N, 3)
        context_states = self.predictor.project_context(context_features.to(dtype).flatten(1, 2), context_positions)
        sample_states = None
        future_times = future_timestamps.repeat_interleave(num_samples, 0)  # (batch * samples, F)

        # 3. Roll out: every query token of a step sees every context token (no mask) and never another query.
        predictions, noises = [], []
        for step in range(num_future):
            step_positions = token_positions(future_times[:, step : step + 1], coordinates)  # (batch * samples, N, 3)
            vectors, step_noise = _rollout_step_queries(
                self, step, noise, batch_size, num_samples, device, dtype, generator
            )  # (batch * samples, 1, Dp)
            if step_noise is not None:
                noises.append(step_noise)  # (batch, samples, Dp)
            queries = vectors.expand(-1, num_patches, -1)  # (batch * samples, N, Dp)
            predicted = self.predictor(
                queries, step_positions, context_states=context_states, sample_states=sample_states, num_samples=num_samples
            )  # (batch * samples, N, D)
            predictions.append(predicted)
            if step_callback is not None:
                step_callback(step, None, predicted)
            if step + 1 < num_future:
                new_states = self.predictor.project_context(predicted, step_positions)
                sample_states = new_states if sample_states is None else _append_context_states(sample_states, new_states)

        # 4. Shape per clip and sample.
        future_features = torch.stack(predictions, dim=1).unflatten(0, (batch_size, num_samples))
        output = DeltaWorldForecastOutput(
            future_features=future_features,
            context_features=context_features,
            noise=torch.stack(noises, dim=2) if noises else None,
            future_timestamps=future_timestamps,
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "DinoWorldForForecasting",
    "DinoWorldOutput",
    "DinoWorldPreTrainedModel",
    "DinoWorldPredictor",
    "DinoWorldRotaryEmbedding",
    "block_causal_mask",
    "spatial_coordinates",
    "token_positions",
]
