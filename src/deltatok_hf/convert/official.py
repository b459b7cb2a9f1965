"""Official DeltaTok / DeltaWorld checkpoints -> `save_pretrained` directories.

The official code (github.com/amazon-far/deltatok) saves plain state dicts:

* a DeltaWorld network: `tokenizer.backbone.backbone.*` (the HF DINOv3), `tokenizer.{z_embed, xy_embed, encoder_blocks,
  decoder_blocks, norm}.*`, `predictor.*`, `q_embed.weight` (deterministic ablation only) and `backbone.*`, an alias of
  `tokenizer.backbone.*`;
* a standalone DeltaTok: the same tokenizer keys without the `tokenizer.` prefix;
* the released `pytorch_model.bin` files keep only the trained part: `deltatok-kinetics` every non-backbone tokenizer
  key (no prefix), `deltaworld-kinetics` `predictor.*` only. The missing parts are loaded at `from_pretrained` time from
  `backbone_name_or_path` / `tokenizer_name_or_path`.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..models.deltatok import DeltaTokConfig, DeltaTokModel
from ..models.deltatok.configuration_deltatok import DINOV3_VITB16_ID
from ..models.deltaworld import DeltaWorldConfig, DeltaWorldForForecasting

PRESETS = ("vitb", "tiny")


@dataclass
class ConversionReport:
    """What a conversion did with every key."""

    converted: dict[str, str] = field(default_factory=dict)  # official key -> our key
    dropped_aliases: list[str] = field(default_factory=list)  # `backbone.*` duplicates of `tokenizer.backbone.*`
    unmatched: list[str] = field(default_factory=list)  # official keys with no place in our model
    shape_mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # our keys the checkpoint did not provide

    def raise_for_problems(self, source: str) -> None:
        """Strict conversion: raise a `ValueError` naming every unmatched key and every shape mismatch, one a line."""
        problems = [f"  unmatched: {key}" for key in self.unmatched]
        problems += [f"  shape: {item}" for item in self.shape_mismatches]
        if problems:
            raise ValueError(f"{source} does not fit the model:\n" + "\n".join(problems))

    def summary(self) -> str:
        lines = [
            f"converted {len(self.converted)} tensors",
            f"dropped {len(self.dropped_aliases)} backbone aliases",
            f"unmatched {len(self.unmatched)}: {self.unmatched[:10]}",
            f"shape mismatches {len(self.shape_mismatches)}: {self.shape_mismatches[:10]}",
        ]
        missing_prefixes = sorted({key.split(".")[0] + ("." + key.split(".")[1] if key.startswith("tokenizer.") else "") for key in self.missing})
        lines.append(f"not in checkpoint {len(self.missing)} (under {missing_prefixes})")
        return "\n".join(lines)


class UnsafeCheckpointError(ValueError):
    """A pickled checkpoint that holds more than tensors: loading it could run arbitrary code, so it is refused."""


def _restricted_torch_load(path: Path):
    """`torch.load(weights_only=True)`; a pickle that needs any other object (e.g. `os.system`) is refused, unrun."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message suggests retrying with weights_only=False, which is exactly what must not happen here.
        lines = [line.strip() for line in str(error).splitlines()]
        reason = next((line for line in lines if line.startswith(("Trying to load unsupported", "Unsupported"))), lines[-1])
        raise UnsafeCheckpointError(
            f"Refused to load {path}: it is a pickle that needs Python objects other than tensors ({reason}). "
            "Unpickling it could run arbitrary code, so it was not loaded. If you trust its source, re-save its "
            "tensors as .safetensors in a separate environment and convert that file."
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {error}") from error


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    Read a `.safetensors` file, or a `.bin`/`.pt`/`.pth`/`.ckpt` pickle with `torch.load(weights_only=True)`.

    Raises:
        UnsafeCheckpointError (a `ValueError`): the pickle needs objects other than tensors and plain containers
            (its code is never run).
        ValueError: no such file, an unreadable file, or a file that does not hold a state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state_dict = load_file(str(path), device="cpu")
        except SafetensorError as error:
            raise ValueError(f"{path} is not a valid safetensors file: {error}") from error
    else:
        state_dict = _restricted_torch_load(path)
    if isinstance(state_dict, dict) and "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]  # Lightning checkpoint
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path} does not hold a state dict of tensors (it holds a {type(state_dict).__name__}).")
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{path} does not hold a state dict of tensors; these entries are not tensors: {not_tensors[:10]}.")
    return state_dict


def _map_tokenizer_key(key: str) -> str:
    """A standalone-DeltaTok official key -> our `DeltaTokModel` key."""
    if key.startswith("backbone.backbone."):
        return "backbone." + key[len("backbone.backbone.") :]
    return key


def map_official_key(key: str, target: str) -> str | None:
    """
    Our key for an official key, `None` for the `backbone.*` aliases of a DeltaWorld state dict.

    `target="deltaworld"`: keys of an official DeltaWorld network (`tokenizer.*`, `predictor.*`, `q_embed.*`).
    `target="deltatok"`: keys of an official standalone DeltaTok.
    """
    if target == "deltatok":
        if key.startswith("tokenizer."):
            key = key[len("tokenizer.") :]
        return _map_tokenizer_key(key)
    if target != "deltaworld":
        raise ValueError(f"target must be 'deltaworld' or 'deltatok', got {target!r}.")
    if key.startswith("tokenizer."):
        return "tokenizer." + _map_tokenizer_key(key[len("tokenizer.") :])
    if key.startswith("backbone."):
        return None  # alias of tokenizer.backbone.*
    if key.startswith("q_embed."):
        return "query_embed." + key[len("q_embed.") :]
    return key


def convert_official_state_dict(
    state_dict: dict[str, torch.Tensor], model: torch.nn.Module, target: str, report: ConversionReport | None = None
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename official keys for `model` and check names and shapes against it; nothing is loaded."""
    report = report if report is not None else ConversionReport()
    expected = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        new_key = map_official_key(key, target)
        if new_key is None:
            original = "tokenizer." + key
            if original in state_dict and not torch.equal(state_dict[original], tensor):
                report.unmatched.append(f"{key} (differs from its alias {original})")
            else:
                report.dropped_aliases.append(key)
            continue
        if new_key not in expected:
            report.unmatched.append(key)
            continue
        if tuple(expected[new_key].shape) != tuple(tensor.shape):
            report.shape_mismatches.append(
                f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[new_key].shape)}"
            )
            continue
        converted[new_key] = tensor.to(expected[new_key].dtype).contiguous()
        report.converted[key] = new_key
    return converted, report


def _build_config(preset: str | None, config, target: str, use_delta: bool | None, use_best_of_many: bool | None):
    if config is not None:
        return config
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}.")
    tokenizer_kwargs = {} if use_delta is None else {"use_delta": use_delta}
    if target == "deltatok":
        return DeltaTokConfig.tiny(**tokenizer_kwargs) if preset == "tiny" else DeltaTokConfig(**tokenizer_kwargs)
    world_kwargs = {} if use_best_of_many is None else {"use_best_of_many": use_best_of_many}
    if preset == "tiny":
        return DeltaWorldConfig.tiny(tokenizer_kwargs=tokenizer_kwargs, **world_kwargs)
    return DeltaWorldConfig(tokenizer_config=DeltaTokConfig(**tokenizer_kwargs), **world_kwargs)


def convert_official_checkpoint(
    output_dir: str | os.PathLike | None = None,
    *,
    weights: str | os.PathLike | dict | None = None,
    deltatok: str | os.PathLike | dict | None = None,
    deltaworld: str | os.PathLike | dict | None = None,
    preset: str = "vitb",
    config: DeltaTokConfig | DeltaWorldConfig | None = None,
    use_delta: bool | None = None,
    use_best_of_many: bool | None = None,
    backbone_name_or_path: str | None = DINOV3_VITB16_ID,
    tokenizer_name_or_path: str | None = None,
    strict: bool = True,
) -> tuple[DeltaTokModel | DeltaWorldForForecasting, ConversionReport]:
    """
    Convert official weights into one of our models and optionally `save_pretrained` it.

    Args:
        output_dir: where to write `config.json` + `model.safetensors`; only the converted tensors are written, so a
            checkpoint without backbone (or tokenizer) stays small and `from_pretrained` fetches the rest from
            `backbone_name_or_path` (`tokenizer_name_or_path`).
        weights: a whole official DeltaWorld state dict (all keys, e.g. `reference_tiny_weights.safetensors`).
        deltatok: an official DeltaTok checkpoint (e.g. `deltatok-kinetics/pytorch_model.bin`).
        deltaworld: an official DeltaWorld checkpoint (e.g. `deltaworld-kinetics/pytorch_model.bin`). With `deltatok`
            too, both are combined into one DeltaWorld.
        preset: `"vitb"` (the released sizes) or `"tiny"` (the reference tensors' sizes), unless `config` is given.
        use_delta / use_best_of_many: the ablation switches (frame-token tokenizer, deterministic predictor).
        strict: raise when an official key has no place in the model or has the wrong shape.
    Returns:
        `(model, report)`.
    """
    sources = {name: value for name, value in (("weights", weights), ("deltatok", deltatok), ("deltaworld", deltaworld)) if value is not None}
    if not sources:
        raise ValueError("Give at least one of weights=, deltatok= or deltaworld=.")

    # Read every file once.
    loaded = {name: dict(value) if isinstance(value, dict) else load_state_dict_file(value) for name, value in sources.items()}
    target = "deltatok" if set(sources) == {"deltatok"} else "deltaworld"
    if target == "deltaworld" and use_best_of_many is None:
        # The deterministic ablation is the only variant with a learned query.
        if any("q_embed.weight" in loaded.get(name, {}) for name in ("weights", "deltaworld")):
            use_best_of_many = False
    config = _build_config(preset, config, target, use_delta, use_best_of_many)
    tokenizer_config = config if target == "deltatok" else config.tokenizer_config
    if backbone_name_or_path is not None and tokenizer_config.backbone_name_or_path is None:
        tokenizer_config.backbone_name_or_path = backbone_name_or_path
    if target == "deltaworld" and tokenizer_name_or_path is not None:
        config.tokenizer_name_or_path = tokenizer_name_or_path
    model = DeltaTokModel(config) if target == "deltatok" else DeltaWorldForForecasting(config)

    report = ConversionReport()
    state_dict: dict[str, torch.Tensor] = {}
    if "weights" in loaded:
        converted, report = convert_official_state_dict(loaded["weights"], model, target, report)
        state_dict.update(converted)
    if "deltaworld" in loaded:
        converted, report = convert_official_state_dict(loaded["deltaworld"], model, "deltaworld", report)
        state_dict.update(converted)
    if "deltatok" in loaded:
        tokenizer_state = loaded["deltatok"]
        if target == "deltaworld":
            tokenizer_state = {"tokenizer." + key: value for key, value in tokenizer_state.items()}
        converted, report = convert_official_state_dict(tokenizer_state, model, target, report)
        state_dict.update(converted)
    return load_converted_weights(
        model,
        state_dict,
        report,
        strict,
        "Official checkpoint",
        output_dir,
        lambda: _write_conversion_card(output_dir, model, sources, report),
    )


def load_converted_weights(
    model, state_dict: dict, report: ConversionReport, strict: bool, what: str, output_dir, write_card
):
    """
    The end of every conversion: with `strict`, raise naming every problem of `report` (`what` names the source);
    load `state_dict` into `model`, record in `report.missing` what it still lacks (e.g. the backbone that
    `from_pretrained` fetches), and with `output_dir` save the model and call `write_card()`. Returns `(model, report)`.
    """
    if strict:
        report.raise_for_problems(what)
    incompatible = model.load_state_dict(state_dict, strict=False)
    report.missing = list(incompatible.missing_keys)
    if output_dir is not None:
        model.save_pretrained(output_dir, state_dict=state_dict)
        write_card()
    return model, report


def _write_conversion_card(output_dir, model, sources: dict, report: ConversionReport) -> None:
    """A README.md model card saying what was converted from where, and what `from_pretrained` will fetch."""
    from ..training.cards import build_card_data, hub_repo_id, render_model_card

    is_tokenizer = isinstance(model, DeltaTokModel)
    tokenizer_config = model.config if is_tokenizer else model.config.tokenizer_config
    fetched = []
    if any(key.startswith(("backbone.", "tokenizer.backbone.")) for key in report.missing):
        fetched.append(f"the backbone from `{tokenizer_config.backbone_name_or_path}`")
    if any(key.startswith("tokenizer.") and ".backbone." not in key for key in report.missing):
        fetched.append(f"the tokenizer from `{getattr(model.config, 'tokenizer_name_or_path', None)}`")
    model_type = "deltatok" if is_tokenizer else "deltaworld"
    card = render_model_card(
        "converted_template.md",
        build_card_data(
            model_type,
            tags=[model_type, "converted"],
            base_model=hub_repo_id(tokenizer_config.backbone_name_or_path),
        ),
        kind="DeltaTokModel" if is_tokenizer else "DeltaWorldForForecasting",
        sources={
            name: "(in-memory state dict)" if isinstance(value, dict) else Path(value).name
            for name, value in sources.items()
        },
        report_summary=report.summary(),
        fetched=fetched,
    )
    card.save(Path(output_dir) / "README.md")


__all__ = [
    "ConversionReport",
    "UnsafeCheckpointError",
    "convert_official_checkpoint",
    "convert_official_state_dict",
    "load_state_dict_file",
    "map_official_key",
]
