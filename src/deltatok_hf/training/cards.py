"""Model cards: templates shipped as package data, rendered with `huggingface_hub.ModelCard`, checked offline.

`ModelCard.validate` asks the Hub, which is not always reachable (and never in our tests), so `check_card_metadata`
checks what the Hub would need offline: the YAML header parses, and `license`, `library_name`, `pipeline_tag`,
`tags` (and `base_model` / `datasets` where they are known) are present and well-typed.
"""

from __future__ import annotations

import os
import shlex
import sys
from importlib import resources
from pathlib import Path

LIBRARY_NAME = "deltatok-hf"
LICENSE = "apache-2.0"
# The Hub task of each model: DeltaTok maps frames to features / tokens; a world model has no Hub task of its own;
# the RGB decoder maps features to frames.
PIPELINE_TAGS = {
    "deltatok": "feature-extraction",
    "deltaworld": "other",
    "dinoworld": "other",
    "rgb_decoder": "image-to-image",
}
REQUIRED_CARD_KEYS = ("license", "library_name", "pipeline_tag", "tags")


def template_names() -> list[str]:
    """The templates shipped in `deltatok_hf/training/templates/`."""
    folder = resources.files(__package__) / "templates"
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".md"))


def hub_repo_id(name_or_path: str | None) -> str | None:
    """`name_or_path` when it names a Hub repository (`owner/name`, not a local path, not `synthetic`), else `None`:
    only those belong in a card's `base_model` / `datasets`."""
    if not name_or_path or name_or_path == "synthetic" or os.path.exists(name_or_path):
        return None
    parts = str(name_or_path).split("/")
    return name_or_path if len(parts) == 2 and all(parts) and not name_or_path.startswith((".", "~")) else None


def build_card_data(
    model_type: str,
    tags: list[str],
    base_model: str | list[str] | None = None,
    datasets: list[str] | None = None,
    pipeline_tag: str | None = None,
):
    """The `ModelCardData` of a card of this library; `pipeline_tag` defaults to the model type's."""
    from huggingface_hub import ModelCardData

    if model_type not in PIPELINE_TAGS:
        raise ValueError(f"model_type must be one of {sorted(PIPELINE_TAGS)}, got {model_type!r}.")
    return ModelCardData(
        license=LICENSE,
        library_name=LIBRARY_NAME,
        pipeline_tag=pipeline_tag or PIPELINE_TAGS[model_type],
        tags=list(tags),
        base_model=base_model,
        datasets=list(datasets) if datasets else None,
    )


def command_line() -> str:
    """The command that started this process, for model cards (`accelerate launch` is implied for multi-process);
    the console script and `python -m deltatok_hf.cli` (as `accelerate launch -m` runs it) read `deltatok-hf`."""
    program = Path(sys.argv[0])
    is_cli = program.name == "deltatok-hf" or program.parts[-2:] == ("deltatok_hf", "cli.py")
    return shlex.join(["deltatok-hf" if is_cli else sys.argv[0], *sys.argv[1:]])


def render_training_card(arguments, summary: dict, base_model: str | None, train_data: str | None, **template_kwargs):
    """
    The `README.md` of a model trained by `train-deltatok` / `train-deltaworld`: template `<model_type>_template.md`,
    the model type's pipeline tag, and `base_model` / `datasets` only where they are Hub ids (a local folder or
    synthetic data names nothing a reader could follow).
    """
    model_type = arguments.model_type
    dataset = hub_repo_id(train_data)
    card_data = build_card_data(
        model_type,
        tags=[model_type, "video", "world-model"],
        base_model=hub_repo_id(base_model),
        datasets=[dataset] if dataset else None,
    )
    return render_model_card(
        f"{model_type}_template.md",
        card_data,
        model_name=arguments.hub_model_id or {"deltatok": "DeltaTok", "deltaworld": "DeltaWorld"}[model_type],
        args=vars(arguments),
        summary=summary,
        command=command_line(),
        **template_kwargs,
    )


def render_inline_card(card_data, title: str, body: str):
    """
    A card written in code instead of a packaged template (the models the templates do not cover): the YAML header
    of `card_data` (a `ModelCardData`), `# title`, then `body`; checked with `check_card_metadata` as the rendered ones.
    """
    from huggingface_hub import ModelCard

    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n# {title}\n\n{body}")
    check_card_metadata(card, expected=card_data.to_dict())
    return card


def render_model_card(template_name: str, card_data, **template_kwargs):
    """
    Render the packaged template `template_name` with `ModelCard.from_template` (Jinja; the template gets
    `card_data` and `template_kwargs`) and check the result with `check_card_metadata`. `card_data` is a
    `ModelCardData` or a dict of its fields.
    """
    from huggingface_hub import ModelCard, ModelCardData

    if template_name not in template_names():
        raise ValueError(f"Unknown model-card template {template_name!r}; expected one of {template_names()}.")
    data = card_data if isinstance(card_data, ModelCardData) else ModelCardData(**card_data)
    # as_file: the template may sit inside a zipped wheel; from_template wants a path.
    with resources.as_file(resources.files(__package__) / "templates" / template_name) as template_path:
        card = ModelCard.from_template(data, template_path=str(template_path), **template_kwargs)
    check_card_metadata(card, expected=data.to_dict())
    return card


def check_card_metadata(
    card, expected: dict | None = None, require_base_model: bool = False, require_datasets: bool = False
) -> dict:
    """
    Offline validation of a model card (a `ModelCard`, its text, or a path to a README.md). Raises `ValueError` naming
    the problem when the YAML header is missing or unparsable, a required key is missing or ill-typed, a
    `{{ placeholder }}` is left, the card has no text, or a key of `expected` did not round-trip. Returns the metadata.
    """
    from huggingface_hub import ModelCard

    if isinstance(card, (str, os.PathLike)) and Path(card).suffix == ".md" and Path(card).is_file():
        text = Path(card).read_text(encoding="utf-8")
    else:
        text = str(card)
    if not text.startswith("---"):
        raise ValueError("The model card has no YAML metadata header (it must start with '---').")
    if "{{" in text or "{%" in text:
        raise ValueError("The model card still contains Jinja placeholders.")
    parsed = ModelCard(text, ignore_metadata_errors=False)
    metadata = parsed.data.to_dict()
    problems = []
    for key in REQUIRED_CARD_KEYS + (("base_model",) if require_base_model else ()) + (("datasets",) if require_datasets else ()):
        if key not in metadata or metadata[key] in (None, "", []):
            problems.append(f"{key!r} is missing")
    for key in ("license", "library_name", "pipeline_tag"):
        if key in metadata and not isinstance(metadata[key], str):
            problems.append(f"{key!r} must be a string, got {metadata[key]!r}")
    for key in ("tags", "datasets"):
        if key in metadata and not (isinstance(metadata[key], list) and all(isinstance(v, str) and v for v in metadata[key])):
            problems.append(f"{key!r} must be a list of non-empty strings, got {metadata[key]!r}")
    base_model = metadata.get("base_model")
    if base_model is not None and not (
        isinstance(base_model, str) or (isinstance(base_model, list) and all(isinstance(v, str) for v in base_model))
    ):
        problems.append(f"'base_model' must be a string or a list of strings, got {base_model!r}")
    for key, value in (expected or {}).items():
        if value is not None and metadata.get(key) != value:
            problems.append(f"{key!r} did not round-trip: {metadata.get(key)!r} != {value!r}")
    if not parsed.text.strip():
        problems.append("the card has no text below the header")
    if problems:
        raise ValueError("Invalid model card: " + "; ".join(problems) + ".")
    return metadata


__all__ = [
    "LIBRARY_NAME",
    "LICENSE",
    "PIPELINE_TAGS",
    "REQUIRED_CARD_KEYS",
    "build_card_data",
    "check_card_metadata",
    "command_line",
    "hub_repo_id",
    "render_inline_card",
    "render_model_card",
    "render_training_card",
    "template_names",
]
