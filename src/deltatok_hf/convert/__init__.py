"""Converters from the official checkpoints to `save_pretrained` directories."""

from .heads import convert_official_head, load_official_head_state_dict
from .official import (
    ConversionReport,
    convert_official_checkpoint,
    convert_official_state_dict,
    load_state_dict_file,
    map_official_key,
)


def cli_convert(args) -> int:
    """Entry point of `deltatok-hf convert` (arguments parsed by `deltatok_hf.cli`)."""
    _, report = convert_official_checkpoint(
        args.output,
        weights=getattr(args, "weights", None),
        deltatok=getattr(args, "deltatok", None),
        deltaworld=getattr(args, "deltaworld", None),
        preset=getattr(args, "preset", "vitb") or "vitb",
        strict=not getattr(args, "no_strict", False),
    )
    print(report.summary())
    print(f"Saved to {args.output}")
    return 0


__all__ = [
    "ConversionReport",
    "cli_convert",
    "convert_official_head",
    "load_official_head_state_dict",
    "convert_official_checkpoint",
    "convert_official_state_dict",
    "load_state_dict_file",
    "map_official_key",
]
