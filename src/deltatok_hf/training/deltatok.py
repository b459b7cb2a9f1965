"""`deltatok-hf train-deltatok` (and `examples/train_deltatok.py`): train or fine-tune the DeltaTok tokenizer.

Every step reconstructs the last frame of a clip from the frame before it (official `training/deltatok.py`); the
backbone stays frozen.
"""

from __future__ import annotations

from ..models import DeltaTokModel
from .arguments import DeltaTokTrainingArguments
from .cards import render_training_card
from .data import build_clip_dataset
from .loop import end_run, start_run, train
from .optim import DELTATOK_PARTS, apply_training_options
from .recipes import resolve_config


def build_deltatok_model(arguments: DeltaTokTrainingArguments) -> DeltaTokModel:
    """A new tokenizer (`model_config`, with the pretrained backbone loaded) or `init_from`'s, ready to train."""
    if arguments.init_from is not None:
        model = DeltaTokModel.from_pretrained(arguments.init_from)
    else:
        config = resolve_config("deltatok", arguments.model_config)
        model = DeltaTokModel(config)
        source = backbone_source(arguments, config)
        if source is not None:
            from transformers import DINOv3ViTModel

            model.backbone.load_state_dict(DINOv3ViTModel.from_pretrained(source).state_dict())
    model.backbone.requires_grad_(False)
    # The loss is a config field (one source of truth); the preset or the option only picks its value.
    model.config.reconstruction_loss = arguments.reconstruction_loss
    apply_training_options(model, arguments.freeze, arguments.gradient_checkpointing, DELTATOK_PARTS)
    return model


def backbone_source(arguments: DeltaTokTrainingArguments, config) -> str | None:
    """Where a new tokenizer's backbone weights come from, or `None` to keep the random backbone."""
    if arguments.init_from is not None:
        return None
    source = arguments.backbone_name_or_path or config.backbone_name_or_path
    return None if source in (None, "random") else source


def compute_deltatok_loss(model, batch: dict):
    return model(frames=batch["frames"]).loss


def train_deltatok(arguments: DeltaTokTrainingArguments) -> dict:
    """Train, save the model, `train_summary.json` and the model card to `arguments.output_dir`; returns the summary."""
    accelerator = start_run(arguments)
    model = build_deltatok_model(arguments)
    summary = train(arguments, accelerator, model, build_clip_dataset(arguments), compute_deltatok_loss)
    summary["reconstruction_loss"] = model.config.reconstruction_loss
    base_model = arguments.init_from or backbone_source(arguments, model.config)
    card = lambda: render_training_card(arguments, summary, base_model, arguments.train_data)  # noqa: E731
    return end_run(arguments, accelerator, summary, card)


__all__ = ["backbone_source", "build_deltatok_model", "compute_deltatok_loss", "train_deltatok"]
