"""Converters from the official checkpoints to `save_pretrained` directories."""

from .dinoworld import (
    convert_official_dinoworld_checkpoint,
    convert_official_dinoworld_state_dict,
    map_official_dinoworld_key,
)
from .heads import convert_official_head, load_official_head_state_dict
from .official import (
    ConversionReport,
    convert_official_checkpoint,
    convert_official_state_dict,
    load_state_dict_file,
    map_official_key,
)
from .rgb_decoder import cli_convert_rgb_decoder, convert_official_rgb_decoder, load_feature_norm


def cli_convert(args) -> int:
    """Entry point of `deltatok-hf convert` (arguments parsed by `deltatok_hf.cli`)."""
    if getattr(args, "rgb_head", None):
        return cli_convert_rgb_decoder(args)
    if getattr(args, "head", None):
        if any(getattr(args, name, None) for name in ("weights", "deltatok", "deltaworld", "dinoworld")):
            raise ValueError("Convert a task head on its own: pass --head without --weights/--deltatok/--deltaworld/--dinoworld.")
        head = convert_official_head(args.head, kind=args.head_kind, output_dir=args.output)
        print(f"Converted a {args.head_kind} head ({type(head).__name__}, {head.config.hidden_size} channels)")
        print(f"Saved to {args.output}")
        return 0
    if getattr(args, "dinoworld", None):
        if any(getattr(args, name, None) for name in ("weights", "deltatok", "deltaworld", "head")):
            raise ValueError("Convert a DINO-world on its own: pass --dinoworld without --weights/--deltatok/--deltaworld/--head.")
        model, report = convert_official_dinoworld_checkpoint(
            args.output,
            weights=args.dinoworld,
            preset=getattr(args, "preset", "vitb") or "vitb",
            strict=not getattr(args, "no_strict", False),
        )
        step = "Best-of-Many" if model.config.use_best_of_many else "learned query"
        print(f"Converted a DINO-world ({step})\n{report.summary()}")
        print(f"Saved to {args.output}")
        return 0
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
    "convert_official_dinoworld_checkpoint",
    "convert_official_dinoworld_state_dict",
    "convert_official_rgb_decoder",
    "convert_official_state_dict",
    "load_feature_norm",
    "load_state_dict_file",
    "map_official_dinoworld_key",
    "map_official_key",
]
