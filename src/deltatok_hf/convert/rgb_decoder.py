"""Convert the official RGB head (`RGBHead` of `models/task_heads.py`, released as `rgb-head-imagenet`).

The official head is saved as a plain state dict (optionally wrapped in `{"state_dict": ...}`) with ViT-MAE-decoder
names: `decoder_embed`, `trainable_cls_token`, `decoder_pos_embed` (the fixed sin-cos table, a frozen parameter),
`decoder_layers.{i}.attention.attention.{query,key,value}`, `decoder_layers.{i}.attention.output.dense`,
`decoder_layers.{i}.layernorm_{before,after}`, `decoder_layers.{i}.intermediate.dense`, `decoder_layers.{i}.output.dense`,
`decoder_norm` and `decoder_pred`. It does not hold the backbone's final-LayerNorm affine (`norm_weight` /
`norm_bias`, set from the backbone at run time), so the converter takes it from a second source (`feature_norm=`).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch

from ..models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig
from ..models.rgb_decoder.modeling_rgb_decoder import sincos_position_table
from .heads import load_official_head_state_dict
from .official import ConversionReport, load_state_dict_file

POSITION_TABLE_KEY = "decoder_pos_embed"
# Official key (full match) -> our key (`match.expand` template).
_KEY_PATTERNS = [
    (r"decoder_embed\.(weight|bias)", r"feature_projection.\1"),
    (r"trainable_cls_token", "cls_token"),
    (r"decoder_layers\.(\d+)\.attention\.attention\.query\.(weight|bias)", r"layers.\1.attention.q_proj.\2"),
    (r"decoder_layers\.(\d+)\.attention\.attention\.key\.(weight|bias)", r"layers.\1.attention.k_proj.\2"),
    (r"decoder_layers\.(\d+)\.attention\.attention\.value\.(weight|bias)", r"layers.\1.attention.v_proj.\2"),
    (r"decoder_layers\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.attention.o_proj.\2"),
    (r"decoder_layers\.(\d+)\.(layernorm_before|layernorm_after)\.(weight|bias)", r"layers.\1.\2.\3"),
    (r"decoder_layers\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.mlp.fc1.\2"),
    (r"decoder_layers\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.mlp.fc2.\2"),
    (r"decoder_norm\.(weight|bias)", r"norm.\1"),
    (r"decoder_pred\.(weight|bias)", r"pixel_projection.\1"),
    # Not in the released file (non-persistent buffers of the official class), accepted if a save includes them.
    (r"norm_(weight|bias)", r"feature_norm_\1"),
]
_KEY_PATTERNS = [(re.compile(pattern), template) for pattern, template in _KEY_PATTERNS]
FEATURE_NORM_KEYS = ("feature_norm_weight", "feature_norm_bias")
# Where the backbone's final LayerNorm sits in the state dicts a user may have, most specific first: an official
# DeltaWorld / DeltaTok, our converted DeltaWorld / DeltaTok.
_FEATURE_NORM_PREFIXES = (
    "tokenizer.backbone.backbone.norm.",
    "backbone.backbone.norm.",
    "tokenizer.backbone.norm.",
    "backbone.norm.",
)


def map_official_rgb_head_key(key: str) -> str | None:
    """Our [`DeltaTokRGBDecoder`] key for an official `RGBHead` key; `None` when the key has no place in our model."""
    for pattern, template in _KEY_PATTERNS:
        match = pattern.fullmatch(key)
        if match:
            return match.expand(template)
    return None


def _config_from_state_dict(state_dict: dict[str, torch.Tensor], config_kwargs: dict) -> DeltaTokRGBDecoderConfig:
    """Sizes read off the tensors (heads cannot be: `num_attention_heads` comes from `config_kwargs` or the default)."""
    inferred = {}
    if "decoder_embed.weight" in state_dict:
        inferred["hidden_size"], inferred["feature_size"] = (int(size) for size in state_dict["decoder_embed.weight"].shape)
    blocks = {int(match.group(1)) for key in state_dict if (match := re.match(r"decoder_layers\.(\d+)\.", key))}
    if blocks:
        inferred["num_hidden_layers"] = max(blocks) + 1
    if "decoder_layers.0.intermediate.dense.weight" in state_dict:
        inferred["intermediate_size"] = int(state_dict["decoder_layers.0.intermediate.dense.weight"].shape[0])
    if "decoder_pred.weight" in state_dict:
        patch = math.isqrt(state_dict["decoder_pred.weight"].shape[0] // 3)
        inferred["patch_size"] = patch
        if POSITION_TABLE_KEY in state_dict:
            inferred["image_size"] = math.isqrt(state_dict[POSITION_TABLE_KEY].shape[-2] - 1) * patch
    for name, value in inferred.items():
        if name in config_kwargs and config_kwargs[name] != value:
            raise ValueError(f"`{name}={config_kwargs[name]!r}` disagrees with the checkpoint, which has {name}={value}.")
    return DeltaTokRGBDecoderConfig(**{**config_kwargs, **inferred})


def load_feature_norm(source) -> torch.nn.Module | tuple[torch.Tensor, torch.Tensor]:
    """
    Resolve where the backbone's final-LayerNorm affine comes from. `source` may be a model (returned as is, for
    [`DeltaTokRGBDecoder.copy_feature_norm_from`]), a `(weight, bias)` pair of tensors, a state dict or state-dict
    file (an official DeltaWorld / DeltaTok with its backbone, one of our converted ones, or a DINOv3
    `model.safetensors`), or a model directory / Hub id that `AutoModel` loads (DINOv3, DeltaTok, DeltaWorld).
    Returns a model or a `(weight, bias)` pair.
    """
    if isinstance(source, torch.nn.Module):
        return source
    if isinstance(source, (tuple, list)) and len(source) == 2 and all(isinstance(t, torch.Tensor) for t in source):
        return source[0], source[1]
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        from transformers import AutoModel  # noqa: PLC0415  (our model types are registered by `..models`)

        try:
            return AutoModel.from_pretrained(source)
        except OSError as error:  # not a file, and not a loadable model directory / reachable Hub id
            raise ValueError(f"Cannot read a feature norm from {str(source)!r}: {error}") from error
    if isinstance(source, (str, os.PathLike)):
        state_dict = load_state_dict_file(source)
    elif isinstance(source, dict):
        state_dict = source
    else:
        raise TypeError(
            "`feature_norm` must be a model, a (weight, bias) pair, a state dict, a file, a directory or a Hub id; "
            f"got {type(source).__name__}."
        )
    for prefix in _FEATURE_NORM_PREFIXES:
        if prefix + "weight" in state_dict and prefix + "bias" in state_dict:
            return state_dict[prefix + "weight"], state_dict[prefix + "bias"]
    # A bare DINOv3 state dict keeps it at `norm.*`; a DeltaTok without backbone has a `norm.*` of its own (the
    # delta-token LayerNorm), so `norm.*` is only trusted next to the DINOv3 patch embedding.
    if "norm.weight" in state_dict and "embeddings.patch_embeddings.weight" in state_dict:
        return state_dict["norm.weight"], state_dict["norm.bias"]
    raise ValueError(
        f"No backbone final LayerNorm in {'the state dict' if isinstance(source, dict) else str(source)!r}: looked "
        f"for {[prefix + 'weight' for prefix in _FEATURE_NORM_PREFIXES]} and a DINOv3 `norm.weight` (with "
        "`embeddings.patch_embeddings.weight`)."
    )


def convert_official_rgb_decoder(
    checkpoint_path_or_state_dict: str | os.PathLike | dict,
    feature_norm=None,
    output_dir: str | os.PathLike | None = None,
    config: DeltaTokRGBDecoderConfig | None = None,
    strict: bool = True,
    **config_kwargs,
) -> tuple[DeltaTokRGBDecoder, ConversionReport]:
    """
    Build a [`DeltaTokRGBDecoder`] from official `RGBHead` weights.

    Args:
        checkpoint_path_or_state_dict (`str`, `os.PathLike` or `dict`):
            The official head (`pytorch_model.bin`-style, read with `torch.load(weights_only=True)`, or
            `.safetensors`), or its state dict.
        feature_norm (*optional*):
            Where the backbone's final-LayerNorm affine comes from: anything [`load_feature_norm`] accepts. Without it (and without `norm_weight` /
            `norm_bias` in the checkpoint) the decoder is returned with its feature norm unset: it refuses to decode
            until `copy_feature_norm_from` is called, and the report lists the two buffers as missing.
        output_dir (`str` or `os.PathLike`, *optional*):
            Where to `save_pretrained` the decoder.
        config ([`DeltaTokRGBDecoderConfig`], *optional*):
            The target config; by default sizes are read off the tensors (the number of heads cannot be: it comes
            from `config_kwargs`, else the released 16).
        strict (`bool`, *optional*, defaults to `True`):
            Raise when an official key has no place in the model, a shape differs, the stored position table differs
            from ours, or a learned tensor is missing.
        **config_kwargs:
            Config fields used when `config` is not given (e.g. `num_attention_heads=4` for the tiny reference).

    Returns:
        `(decoder, report)`: the decoder in eval mode and a [`ConversionReport`] (official key -> our key, unmatched,
        shape mismatches, missing).
    """
    # The task heads' reader: safetensors or a tensors-only pickle, `{"state_dict": ...}` unwrapped, tensors checked.
    state_dict = load_official_head_state_dict(checkpoint_path_or_state_dict)
    if config is None:
        config = _config_from_state_dict(state_dict, config_kwargs)
    elif config_kwargs:
        raise ValueError(f"Pass either `config` or config fields, not both (got {sorted(config_kwargs)}).")
    decoder = DeltaTokRGBDecoder(config)
    expected = decoder.state_dict()

    report = ConversionReport()
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if key == POSITION_TABLE_KEY:
            # Fixed sin-cos table: rebuilt from the config, so only checked. (1, 1 + patches, hidden), cls row zero.
            ours = torch.cat([torch.zeros(1, config.hidden_size), sincos_position_table(config.hidden_size, config.trained_grid_size)])
            if tuple(tensor.shape) != (1, *ours.shape):
                report.shape_mismatches.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {(1, *ours.shape)}")
            elif not torch.allclose(tensor[0].float(), ours, atol=1e-6, rtol=0):
                report.unmatched.append(f"{key} (values differ from the fixed sin-cos table)")
            else:
                report.converted[key] = "position_table"
            continue
        new_key = map_official_rgb_head_key(key)
        if new_key is None or new_key not in expected:
            report.unmatched.append(key)
        elif tuple(expected[new_key].shape) != tuple(tensor.shape):
            report.shape_mismatches.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[new_key].shape)}")
        else:
            converted[new_key] = tensor.to(expected[new_key].dtype)
            report.converted[key] = new_key
    report.missing = [key for key in expected if key not in converted]
    learned_missing = [key for key in report.missing if key not in FEATURE_NORM_KEYS]
    if strict and (report.unmatched or report.shape_mismatches or learned_missing):
        raise ValueError(
            "Official RGB head does not fit the model:\n"
            + "\n".join(
                [f"  unmatched: {key}" for key in report.unmatched]
                + [f"  shape: {item}" for item in report.shape_mismatches]
                + [f"  missing: {key}" for key in learned_missing]
            )
        )
    decoder.load_state_dict(converted, strict=False)
    if feature_norm is not None:
        source = load_feature_norm(feature_norm)
        if isinstance(source, torch.nn.Module):
            decoder.copy_feature_norm_from(source)
        else:
            decoder.set_feature_norm(*source)
        report.missing = [key for key in report.missing if key not in FEATURE_NORM_KEYS]
    decoder.eval()
    if output_dir is not None:
        decoder.save_pretrained(output_dir)
    return decoder, report





def cli_convert_rgb_decoder(args) -> int:
    """`deltatok-hf convert --rgb-head PATH [--rgb-feature-norm SOURCE] --output DIR [--preset vitb|tiny]`."""
    others = [name for name in ("weights", "deltatok", "deltaworld", "head", "dinoworld") if getattr(args, name, None)]
    if others:
        raise ValueError(f"Convert an RGB head on its own: pass --rgb-head without --{' / --'.join(others)}.")
    # The number of heads is the one size the tensors do not show; the preset gives it.
    preset = getattr(args, "preset", "vitb") or "vitb"
    reference = DeltaTokRGBDecoderConfig.tiny() if preset == "tiny" else DeltaTokRGBDecoderConfig()
    decoder, report = convert_official_rgb_decoder(
        args.rgb_head,
        feature_norm=getattr(args, "rgb_feature_norm", None),
        output_dir=args.output,
        num_attention_heads=reference.num_attention_heads,
        strict=not getattr(args, "no_strict", False),
    )
    config = decoder.config
    print(
        f"Converted an RGB head ({config.num_hidden_layers} blocks, hidden {config.hidden_size}, "
        f"{config.num_attention_heads} heads, {config.feature_size}-d features, trained at {config.image_size} px)"
    )
    print(report.summary())
    if not decoder.has_feature_norm:
        print(
            "Feature norm NOT set (no --rgb-feature-norm): the decoder refuses to decode until "
            "`copy_feature_norm_from(backbone)` is called."
        )
    print(f"Saved to {args.output}")
    return 0


__all__ = ["cli_convert_rgb_decoder", "convert_official_rgb_decoder", "load_feature_norm", "map_official_rgb_head_key"]
