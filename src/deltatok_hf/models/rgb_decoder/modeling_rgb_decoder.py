"""RGB decoder: a grid of frozen backbone features (real or forecast) -> RGB pixels.

Exact re-implementation of the official RGB head (github.com/amazon-far/deltatok, `models/task_heads.py`, class
`RGBHead`, itself adapted from the RAE decoder): undo the backbone's final LayerNorm affine, project the features to
the decoder width, prepend a learned cls token, add a fixed 2-D sin-cos position table, run pre-norm ViT blocks,
LayerNorm, project every patch token to a `patch_size x patch_size x 3` tile, and de-normalise with the ImageNet
mean/std. The blocks are the transformers ViT-MAE layers (same maths as the official blocks: LayerNorm eps 1e-12,
softmax attention with biased query/key/value projections, exact GELU MLP, no LayerScale), so `attn_implementation`
("eager" / "sdpa") and gradient checkpointing work as in any transformers model. `deltatok_hf.convert.rgb_decoder`
maps the official key names onto ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import DINOv3ViTModel, PreTrainedModel
from transformers import initialization as init
from transformers.models.vit_mae.modeling_vit_mae import ViTMAELayer
from transformers.pytorch_utils import compile_compatible_method_lru_cache
from transformers.utils import ModelOutput
from transformers.utils.import_utils import is_torchdynamo_compiling

from ..deltatok import DeltaTokModel
from ..deltatok.modeling_deltatok import NamedMismatchLoadingMixin
from ..deltaworld import DeltaWorldForForecasting
from ..heads.modeling_heads import _size_pair
from .configuration_rgb_decoder import DeltaTokRGBDecoderConfig


@dataclass
class DeltaTokRGBDecoderOutput(ModelOutput):
    r"""
    Output of [`DeltaTokRGBDecoder`].

    Args:
        pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height_patches * patch_size, width_patches * patch_size)`):
            Decoded RGB frames on a 0..1 scale (ImageNet de-normalised). Not clamped, as in the official head, so
            values slightly outside 0..1 occur; [`rgb_to_uint8`] clamps and quantises them for display.
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + num_patches, hidden_size)`):
            Output of the last block before the final LayerNorm, cls token first.
    """

    pixel_values: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


def rgb_to_uint8(pixel_values: torch.Tensor) -> torch.Tensor:
    """Decoded RGB on a 0..1 scale (any shape) -> `uint8` 0..255 of the same shape: clamp, times 255, round."""
    if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
        raise TypeError(f"`pixel_values` must be a floating-point tensor, got {pixel_values!r:.80}.")
    return (pixel_values.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def sincos_position_table(hidden_size: int, grid_size: int) -> torch.Tensor:
    """
    The fixed 2-D sin-cos table of the official head for a square `grid_size x grid_size` grid, `(grid_size**2,
    hidden_size)` float32, patches in raster order. Per patch at (row, column) the channels are
    `[sin(row * omega), cos(row * omega), sin(column * omega), cos(column * omega)]` with
    `omega_k = 10000 ** (-k / (hidden_size / 4))`. Computed in float64 then rounded once, as the official numpy code.
    Note: the official table also has a leading all-zero row for the cls token; adding zeros is a no-op, so we omit it.
    """
    quarter = hidden_size // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (quarter,)
    coordinates = torch.arange(grid_size, dtype=torch.float64)
    rows, columns = torch.meshgrid(coordinates, coordinates, indexing="ij")  # (grid_size, grid_size) each
    # (num_patches, 2, 1) * (quarter,) -> (num_patches, 2, quarter): row angles, then column angles
    angles = torch.stack([rows.flatten(), columns.flatten()], dim=-1)[:, :, None] * omega
    table = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (num_patches, 2, 2 * quarter)
    return table.reshape(grid_size * grid_size, hidden_size).float()  # (num_patches, hidden_size)


class DeltaTokRGBDecoderPreTrainedModel(NamedMismatchLoadingMixin, PreTrainedModel):
    config: DeltaTokRGBDecoderConfig
    config_class = DeltaTokRGBDecoderConfig
    base_model_prefix = "rgb_decoder"
    main_input_name = "features"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _no_split_modules = ["ViTMAELayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """
        Initialisation for decoders trained from scratch (truncated normal with `initializer_range`, zero biases,
        identity LayerNorms), and the fixed buffers. The feature-norm buffers start as NaN, meaning "not set"
        (see [`DeltaTokRGBDecoder`]); `transformers.initialization` leaves tensors loaded from a checkpoint untouched.
        """
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, DeltaTokRGBDecoder):
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            init.copy_(
                module.position_table,
                sincos_position_table(self.config.hidden_size, self.config.trained_grid_size),
            )
            init.constant_(module.feature_norm_weight, float("nan"))
            init.constant_(module.feature_norm_bias, float("nan"))


class DeltaTokRGBDecoder(DeltaTokRGBDecoderPreTrainedModel):
    r"""
    Decodes a grid of backbone patch features into RGB pixels, `patch_size x patch_size` per feature; exact to the
    official `RGBHead` (converted weights reproduce its output within 1e-5 in fp32).

    The backbone's final LayerNorm affine. The official head first undoes the affine of the backbone's last
    LayerNorm, `x = (x - bias) / weight`, with the two vectors taken from the backbone whose features it decodes
    (they are not in its checkpoint). Here they live in the decoder as the persistent buffers `feature_norm_weight`
    and `feature_norm_bias`, so a saved decoder is self-contained and decodes without the backbone. Set them once
    with [`~DeltaTokRGBDecoder.copy_feature_norm_from`] (a `DeltaTokModel`, a `DeltaWorldForForecasting` or a
    DINOv3 model) or [`~DeltaTokRGBDecoder.set_feature_norm`]. A decoder built from a config has them as NaN
    ("not set") and refuses to decode until they are set, because decoding with a wrong affine gives plausible but
    wrong colours rather than an error. A decoder trained on features that need no such undo can set weight 1,
    bias 0.

    Grids. The position table is the fixed sin-cos table of the trained square grid (`image_size // patch_size`
    a side). Other grids, square or not, use its bicubic resize (`align_corners=False`), as the official head;
    resized tables are cached per grid size, dtype and device.
    """

    def __init__(self, config: DeltaTokRGBDecoderConfig) -> None:
        super().__init__(config)
        num_trained_patches = config.trained_grid_size**2
        # Official names in brackets: decoder_embed, trainable_cls_token, decoder_pos_embed, decoder_layers,
        # decoder_norm, decoder_pred (see `deltatok_hf.convert.rgb_decoder`).
        self.feature_projection = nn.Linear(config.feature_size, config.hidden_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # Fixed, rebuilt from the config (the official head stores it as a frozen parameter; the converter checks
        # the stored table against this one).
        self.register_buffer(
            "position_table", torch.zeros(num_trained_patches, config.hidden_size), persistent=False
        )  # (num_trained_patches, hidden_size)
        self.layers = nn.ModuleList([ViTMAELayer(self.config) for _ in range(config.num_hidden_layers)])
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pixel_projection = nn.Linear(config.hidden_size, 3 * config.patch_size**2)
        self.register_buffer("feature_norm_weight", torch.ones(config.feature_size))  # (feature_size,)
        self.register_buffer("feature_norm_bias", torch.zeros(config.feature_size))  # (feature_size,)
        self.post_init()

    # ------------------------------------------------------------------ the backbone's final-norm affine

    def set_feature_norm(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Set the affine (`weight`, `bias`, each `(feature_size,)`) of the LayerNorm that produced the features."""
        size = self.config.feature_size
        for name, value in (("weight", weight), ("bias", bias)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}.")
            if tuple(value.shape) != (size,):
                raise ValueError(f"`{name}` must have shape ({size},) (feature_size), got {tuple(value.shape)}.")
            if not torch.isfinite(value).all():
                raise ValueError(f"`{name}` must be finite, got {value}.")
        if (weight == 0).any():
            raise ValueError("`weight` has zeros; the decoder divides by it to undo the feature LayerNorm.")
        with torch.no_grad():
            self.feature_norm_weight.copy_(weight.detach())
            self.feature_norm_bias.copy_(bias.detach())

    def copy_feature_norm_from(self, model: nn.Module) -> None:
        """
        Copy the final-LayerNorm affine of the backbone whose features this decoder reads.

        Args:
            model (`nn.Module`):
                A [`DeltaWorldForForecasting`] (its tokenizer's backbone), a [`DeltaTokModel`] (its backbone), a
                transformers DINOv3 model (its `norm`), or the `nn.LayerNorm` itself. When the model's config has
                `image_mean` / `image_std` (DeltaTok), they must equal this decoder's.
        """
        if isinstance(model, DeltaWorldForForecasting):
            model = model.tokenizer
        if isinstance(model, DeltaTokModel):
            layer_norm, source_config = model.backbone.norm, model.config
        elif isinstance(model, DINOv3ViTModel):
            layer_norm, source_config = model.norm, None
        elif isinstance(model, nn.LayerNorm):
            layer_norm, source_config = model, None
        else:
            raise TypeError(
                "`model` must be a DeltaWorldForForecasting, a DeltaTokModel, a DINOv3ViTModel or an nn.LayerNorm, "
                f"got {type(model).__name__}."
            )
        if layer_norm.weight is None or layer_norm.bias is None:
            raise ValueError("The LayerNorm has no affine weight and bias; use `set_feature_norm` instead.")
        for name in ("image_mean", "image_std"):
            theirs = getattr(source_config, name, None)
            if theirs is not None and [float(value) for value in theirs] != getattr(self.config, name):
                raise ValueError(
                    f"The backbone normalises frames with {name}={list(theirs)} but this decoder de-normalises with "
                    f"{name}={getattr(self.config, name)}; build the decoder config with the backbone's values."
                )
        self.set_feature_norm(layer_norm.weight, layer_norm.bias)

    @property
    def has_feature_norm(self) -> bool:
        """Whether the feature-norm buffers were set (from a checkpoint, `copy_feature_norm_from` or `set_feature_norm`)."""
        return bool(torch.isfinite(self.feature_norm_weight).all() and torch.isfinite(self.feature_norm_bias).all())

    def _check_feature_norm(self) -> None:
        # Remember the buffer object and version that passed, so the device sync of the check runs once, not per call.
        state = (id(self.feature_norm_weight), self.feature_norm_weight._version, id(self.feature_norm_bias),
                 self.feature_norm_bias._version)  # fmt: skip
        if is_torchdynamo_compiling() or getattr(self, "_checked_feature_norm", None) == state:
            return
        if not self.has_feature_norm:
            raise RuntimeError(
                "The feature-norm buffers of this DeltaTokRGBDecoder were never set: call "
                "`decoder.copy_feature_norm_from(world_model_or_backbone)` (the backbone whose features it decodes) "
                "or `decoder.set_feature_norm(weight, bias)` first."
            )
        self._checked_feature_norm = state

    # ------------------------------------------------------------------ inputs and positions

    def _features_to_tokens(
        self, features: torch.Tensor, grid_size: tuple[int, int] | None
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Check `features` and return them as `(batch_size, num_patches, feature_size)` tokens plus the grid."""
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"`features` must be a torch.Tensor, got {type(features).__name__}.")
        if not features.is_floating_point():
            raise ValueError(f"`features` must be a floating-point tensor, got dtype {features.dtype}.")
        size = self.config.feature_size
        if features.ndim == 4 and features.shape[1] == size:
            grid = tuple(features.shape[-2:])
            if grid_size is not None and _size_pair("grid_size", grid_size) != grid:
                raise ValueError(f"`grid_size={tuple(grid_size)}` disagrees with the grid {grid} of `features`.")
            # (batch_size, feature_size, rows, columns) -> (batch_size, rows * columns, feature_size), raster order
            return features.flatten(2).transpose(1, 2), grid
        if features.ndim == 3 and features.shape[-1] == size:
            if grid_size is None:
                raise ValueError(
                    "`grid_size=(rows, columns)` is required with features of shape (batch_size, num_patches, "
                    f"feature_size); got features of shape {tuple(features.shape)}."
                )
            grid = _size_pair("grid_size", grid_size)
            if grid[0] * grid[1] != features.shape[1]:
                raise ValueError(
                    f"`grid_size={grid}` holds {grid[0] * grid[1]} patches but `features` has {features.shape[1]}."
                )
            return features, grid
        raise ValueError(
            f"`features` must have shape (batch_size, num_patches, {size}) with `grid_size`, or (batch_size, {size}, "
            f"rows, columns); got shape {tuple(features.shape)}."
        )

    @compile_compatible_method_lru_cache(maxsize=16)
    def position_embeddings(
        self, rows: int, columns: int, dtype: torch.dtype | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        """
        Position table of a `rows x columns` patch grid, `(rows * columns, hidden_size)`: the trained table, or its
        bicubic resize (`F.interpolate`, `align_corners=False`, computed in float32) for any other grid.
        """
        table = self.position_table.to(device=device)  # (trained ** 2, hidden_size)
        trained = self.config.trained_grid_size
        if (rows, columns) != (trained, trained):
            # (trained ** 2, hidden) -> (1, hidden, trained, trained) -> resize -> (rows * columns, hidden)
            square = table.float().view(trained, trained, -1).permute(2, 0, 1)[None]
            resized = F.interpolate(square, size=(rows, columns), mode="bicubic", align_corners=False)
            table = resized[0].permute(1, 2, 0).reshape(rows * columns, -1)
        return table.to(dtype=dtype if dtype is not None else self.position_table.dtype)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        features: torch.Tensor,
        grid_size: tuple[int, int] | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DeltaTokRGBDecoderOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            features (`torch.FloatTensor`):
                Backbone patch features (after the backbone's final LayerNorm, as `DeltaTokModel.extract_features`
                and the DeltaWorld forecasts give them), either `(batch_size, num_patches, feature_size)` in raster
                order with `grid_size`, or `(batch_size, feature_size, rows, columns)`.
            grid_size (`tuple[int, int]`, *optional*):
                Patch grid `(rows, columns)`; required for 3-D `features`, checked against 4-D ones.
            return_dict (`bool`, *optional*):
                Return a [`DeltaTokRGBDecoderOutput`] (default) or a tuple.
            kwargs:
                Passed to the attention function of the blocks (transformers attention kwargs).

        Returns:
            [`DeltaTokRGBDecoderOutput`] whose `pixel_values` are `(batch_size, 3, rows * patch_size, columns *
            patch_size)` RGB on a 0..1 scale, not clamped.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        tokens, (rows, columns) = self._features_to_tokens(features, grid_size)  # (batch, num_patches, feature_size)
        self._check_feature_norm()
        batch_size, patch = tokens.shape[0], self.config.patch_size
        dtype = self.feature_projection.weight.dtype
        tokens = (tokens.to(dtype) - self.feature_norm_bias) / self.feature_norm_weight  # undo the backbone's affine
        hidden = self.feature_projection(tokens)  # (batch_size, num_patches, hidden_size)
        hidden = hidden + self.position_embeddings(rows, columns, dtype, hidden.device)
        # The cls token gets no position (the official table's cls row is zero).
        hidden = torch.cat([self.cls_token.expand(batch_size, -1, -1), hidden], dim=1)  # (batch, 1 + num_patches, hidden)
        for layer in self.layers:
            hidden = layer(hidden, **kwargs)  # (batch_size, 1 + num_patches, hidden_size)
        tiles = self.pixel_projection(self.norm(hidden))[:, 1:]  # (batch_size, num_patches, patch * patch * 3)
        # Each tile is laid out (tile row, tile column, channel), as in the official unpatchify.
        pixels = rearrange(
            tiles, "batch (rows columns) (tile_row tile_column channel) -> batch channel (rows tile_row) (columns tile_column)",
            rows=rows, tile_row=patch, tile_column=patch, channel=3,
        )  # fmt: skip  (batch_size, 3, height, width)
        mean = torch.tensor(self.config.image_mean, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.image_std, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        pixels = pixels * std + mean  # ImageNet de-normalisation: RGB on 0..1, not clamped (as official)
        if not return_dict:
            return (pixels, hidden)
        return DeltaTokRGBDecoderOutput(pixel_values=pixels, last_hidden_state=hidden)


__all__ = [
    "DeltaTokRGBDecoder",
    "DeltaTokRGBDecoderOutput",
    "DeltaTokRGBDecoderPreTrainedModel",
    "rgb_to_uint8",
    "sincos_position_table",
]
