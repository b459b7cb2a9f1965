"""`deltatok-hf train-deltatok` (and `examples/train_deltatok.py`): train or fine-tune the DeltaTok tokenizer.

Every step reconstructs the last frame of a clip from the frame before it (official `training/deltatok.py`); the
backbone stays frozen.
"""

from __future__ import annotations

import logging

from ..models import DeltaTokModel
from .arguments import DeltaTokTrainingArguments
from .cards import build_card_data, hub_repo_id, render_model_card
from .data import build_clip_dataset
from .loop import build_accelerator, command_line, configure_logging, finish_run, train
from .optim import DELTATOK_PARTS, freeze_parameters
from .recipes import resolve_config

logger = logging.getLogger(__name__)


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
    if arguments.freeze:
        frozen = freeze_parameters(model, arguments.freeze, DELTATOK_PARTS)
        logger.info(f"Froze {len(frozen)} parameter tensors ({', '.join(arguments.freeze)})")
    if arguments.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model


def backbone_source(arguments: DeltaTokTrainingArguments, config) -> str | None:
    """Where a new tokenizer's backbone weights come from, or `None` to keep the random backbone."""
    if arguments.init_from is not None:
        return None
    source = arguments.backbone_name_or_path or config.backbone_name_or_path
    return None if source in (None, "random") else source


def compute_deltatok_loss(model, batch: dict):
    return model(frames=batch["frames"]).loss


def deltatok_model_card(arguments: DeltaTokTrainingArguments, summary: dict, base_model: str | None):
    """The `README.md` of a trained tokenizer (template `deltatok_template.md`)."""
    dataset = hub_repo_id(arguments.train_data)
    card_data = build_card_data(
        "deltatok",
        tags=["deltatok", "video", "world-model"],
        base_model=hub_repo_id(base_model),
        datasets=[dataset] if dataset else None,
    )
    return render_model_card(
        "deltatok_template.md",
        card_data,
        model_name=arguments.hub_model_id or "DeltaTok",
        args=vars(arguments),
        summary=summary,
        command=command_line(),
    )


def train_deltatok(arguments: DeltaTokTrainingArguments) -> dict:
    """Train, save the model, `train_summary.json` and the model card to `arguments.output_dir`; returns the summary."""
    from accelerate.utils import set_seed

    configure_logging()
    accelerator = build_accelerator(arguments)
    logger.info(accelerator.state)
    set_seed(arguments.seed)
    model = build_deltatok_model(arguments)
    train_dataset = build_clip_dataset(arguments)
    summary = train(arguments, accelerator, model, train_dataset, compute_deltatok_loss)
    summary["reconstruction_loss"] = model.config.reconstruction_loss
    if accelerator.is_main_process:
        base_model = arguments.init_from or backbone_source(arguments, model.config)
        finish_run(arguments, summary, deltatok_model_card(arguments, summary, base_model))
        logger.info(f"Saved to {arguments.output_dir} after {summary['global_step']} steps; loss {summary['final_loss']}")
    accelerator.end_training()
    return summary


__all__ = ["build_deltatok_model", "compute_deltatok_loss", "deltatok_model_card", "train_deltatok"]
