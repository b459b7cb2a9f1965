"""Official DINO-world state dicts -> [`DinoWorldForForecasting`] `save_pretrained` directories.

The official `DINOWorld` network (github.com/amazon-far/deltatok, `models/dinoworld.py`) holds:

* `backbone.backbone.*`: the HF DINOv3ViTModel inside the official backbone wrapper (ours: `backbone.*`);
* `predictor.*`: the same names and shapes as our predictor (`kv_proj` maps backbone features to `2·Dp`);
* `q_embed.weight` `(1, Dp)`: the learned query of the deterministic model only (ours: `query_embed.weight`).

The official checkpoint filter keeps `predictor.*` (plus `q_embed.weight`); the backbone then comes from
`backbone_name_or_path` at `from_pretrained` time.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..models.deltatok.configuration_deltatok import DINOV3_VITB16_ID
from ..models.dinoworld import DinoWorldConfig, DinoWorldForForecasting
from .official import (
    PRESETS,
    ConversionReport,
    convert_official_state_dict,
    load_converted_weights,
    load_state_dict_file,
)


def map_official_dinoworld_key(key: str) -> str:
    """Our key for an official DINO-world key (`backbone.backbone.*` -> `backbone.*`, `q_embed.*` -> `query_embed.*`)."""
    if key.startswith("backbone.backbone."):
        return "backbone." + key[len("backbone.backbone.") :]
    if key.startswith("q_embed."):
        return "query_embed." + key[len("q_embed.") :]
    return key


def convert_official_dinoworld_state_dict(
    state_dict: dict[str, torch.Tensor], model: DinoWorldForForecasting, report: ConversionReport | None = None
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename official DINO-world keys for `model` and check names and shapes against it; nothing is loaded."""
    renamed = {map_official_dinoworld_key(key): value for key, value in state_dict.items()}
    # Our names need no further mapping; the standalone-tokenizer rules of `convert_official_state_dict` leave them
    # unchanged, so its name and shape checks (and report) are reused as they are.
    converted, report = convert_official_state_dict(renamed, model, "deltatok", report)
    # Report official names, as the DeltaTok / DeltaWorld conversions do.
    official_names = {map_official_dinoworld_key(key): key for key in state_dict}
    report.converted = {official_names[ours]: ours for ours in report.converted}
    report.unmatched = [official_names.get(key, key) for key in report.unmatched]
    return converted, report


def convert_official_dinoworld_checkpoint(
    output_dir: str | os.PathLike | None = None,
    *,
    weights: str | os.PathLike | dict,
    preset: str = "vitb",
    config: DinoWorldConfig | None = None,
    use_best_of_many: bool | None = None,
    backbone_name_or_path: str | None = DINOV3_VITB16_ID,
    strict: bool = True,
) -> tuple[DinoWorldForForecasting, ConversionReport]:
    """
    Convert an official DINO-world state dict into a [`DinoWorldForForecasting`] and optionally `save_pretrained` it.

    Args:
        output_dir: where to write `config.json`, `model.safetensors` (only the converted tensors, so a checkpoint
            without backbone stays small) and a `README.md` card.
        weights: the official state dict, as a file (`.bin`, `.pt`, `.ckpt`, `.safetensors`) or an in-memory dict.
        preset: `"vitb"` (the official sizes) or `"tiny"` (the reference tensors' sizes), unless `config` is given.
        use_best_of_many: step 1 (noise queries) or step 0 (learned query); by default inferred from the checkpoint:
            only the deterministic model has `q_embed.weight`.
        backbone_name_or_path: where `from_pretrained` fetches the backbone when the checkpoint has none.
        strict: raise when an official key has no place in the model or has the wrong shape.
    Returns:
        `(model, report)`.
    """
    state_dict = dict(weights) if isinstance(weights, dict) else load_state_dict_file(weights)
    if config is None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}.")
        if use_best_of_many is None:
            use_best_of_many = "q_embed.weight" not in state_dict
        config = DinoWorldConfig.tiny(use_best_of_many=use_best_of_many) if preset == "tiny" else DinoWorldConfig(
            use_best_of_many=use_best_of_many
        )
    elif use_best_of_many is not None and use_best_of_many != config.use_best_of_many:
        raise ValueError(
            f"use_best_of_many={use_best_of_many} contradicts config.use_best_of_many={config.use_best_of_many}."
        )
    if backbone_name_or_path is not None and config.backbone_name_or_path is None:
        config.backbone_name_or_path = backbone_name_or_path
    model = DinoWorldForForecasting(config)

    converted, report = convert_official_dinoworld_state_dict(state_dict, model)
    return load_converted_weights(
        model,
        converted,
        report,
        strict,
        "Official DINO-world checkpoint",
        output_dir,
        lambda: _write_card(output_dir, model, weights, report),
    )


def _write_card(output_dir, model: DinoWorldForForecasting, weights, report: ConversionReport) -> None:
    """A README.md naming the source, the conversion report and what `from_pretrained` fetches."""
    from ..training.cards import build_card_data, render_inline_card

    source = "(in-memory state dict)" if isinstance(weights, dict) else Path(weights).name
    step = "step 1, Best-of-Many noise queries" if model.config.use_best_of_many else "step 0, one learned query"
    fetched = any(key.startswith("backbone.") for key in report.missing)
    data = build_card_data("dinoworld", tags=["deltatok", "dinoworld", "converted"])
    body = (
        "A `DinoWorldForForecasting`: the patch-level baseline of the DeltaTok paper's ablation ladder, converted from "
        "the official code's state dict (github.com/amazon-far/deltatok, Apache-2.0) with `deltatok_hf.convert`.\n\n"
        f"Source: `{source}`\n\nConversion report:\n\n```\n{report.summary()}\n```\n"
        + (f"\n`from_pretrained` loads the backbone from `{model.config.backbone_name_or_path}`.\n" if fetched else "")
    )
    render_inline_card(data, f"Converted official DINO-world ({step})", body).save(Path(output_dir) / "README.md")


__all__ = [
    "convert_official_dinoworld_checkpoint",
    "convert_official_dinoworld_state_dict",
    "map_official_dinoworld_key",
]
