"""Training DINO-world (ablation steps 0 and 1) with the package's Accelerate loop.

The official code trains `DINOWorld` with the same `training/world.py` module as DeltaWorld, so it takes DeltaWorld's
recipe (AdamW 1e-4, weight decay 0.4 on Linear weights, 5000 warm-up steps, no clipping, 8 frames). Each step runs the
frozen backbone on the clip and predicts every frame's patch features in parallel under the block-causal mask;
`best_of_many` trains step 1 (noise queries, `num_samples_train` candidates scored without gradient) instead of step 0.

`train_dinoworld(DinoWorldTrainingArguments(...))` runs it. Not yet a `deltatok-hf` sub-command: that needs the
entries listed in `examples/ablation/README.md` ("Training by name") in files this module does not own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..models import DinoWorldConfig, DinoWorldForForecasting
from .arguments import TrainingArguments, _help
from .cards import build_card_data, command_line, hub_repo_id, render_inline_card
from .data import build_clip_dataset
from .loop import end_run, start_run, train
from .optim import apply_training_options
from .recipes import TrainingRecipe, get_recipe

# Named parts for `--freeze`.
DINOWORLD_PARTS = {
    "predictor_blocks": ("predictor.blocks.",),
    "head": ("predictor.norm.", "predictor.head."),
    "query": ("query_embed.",),
}


@dataclass
class DinoWorldTrainingArguments(TrainingArguments):
    """The options of a DINO-world training run (the shared ones plus the rung)."""

    model_type: ClassVar[str] = "dinoworld"
    min_num_frames: ClassVar[int] = 2  # a context frame and a target

    best_of_many: bool = field(
        default=False, **_help("Train step 1: noise queries with Best-of-Many on patches (default: one learned query).")
    )
    num_samples_train: int | None = field(
        default=None, **_help("Best-of-Many candidates per target frame (default: the config's, 16).")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_samples_train is not None and self.num_samples_train < 1:
            raise ValueError(f"num_samples_train must be >= 1, got {self.num_samples_train}.")
        if self.num_samples_train is not None and not self.best_of_many:
            raise ValueError("num_samples_train needs best_of_many=True (the learned-query model has no candidates).")

    @property
    def recipe(self) -> TrainingRecipe:
        # Note: the official DINOWorld is trained by training/world.py, like DeltaWorld; same recipe.
        return get_recipe("deltaworld", self.preset)


def resolve_dinoworld_config(name_or_path: str) -> DinoWorldConfig:
    """`tiny`, `vitb` (the official ViT-B sizes, the config defaults) or a `config.json` / a folder holding one."""
    if name_or_path == "tiny":
        return DinoWorldConfig.tiny()
    if name_or_path == "vitb":
        return DinoWorldConfig()
    if Path(name_or_path).exists():
        return DinoWorldConfig.from_pretrained(name_or_path)
    raise ValueError(f"model_config must be 'tiny', 'vitb' or a config path, got {name_or_path!r}.")


def build_dinoworld_model(arguments: DinoWorldTrainingArguments) -> DinoWorldForForecasting:
    """A new model from `model_config` (backbone from `backbone_name_or_path` when set) or `init_from`'s."""
    if arguments.init_from is not None:
        model = DinoWorldForForecasting.from_pretrained(arguments.init_from)
        if arguments.best_of_many != model.config.use_best_of_many:
            raise ValueError(
                f"best_of_many={arguments.best_of_many}, but init_from {arguments.init_from!r} has "
                f"use_best_of_many={model.config.use_best_of_many}."
            )
    else:
        config = resolve_dinoworld_config(arguments.model_config)
        config.use_best_of_many = arguments.best_of_many
        model = DinoWorldForForecasting(config)
        if config.backbone_name_or_path is not None:
            from transformers import DINOv3ViTModel

            model.backbone.load_state_dict(DINOv3ViTModel.from_pretrained(config.backbone_name_or_path).state_dict())
    if arguments.num_samples_train is not None:
        model.config.num_samples_train = arguments.num_samples_train
    model.backbone.requires_grad_(False)
    apply_training_options(model, arguments.freeze, arguments.gradient_checkpointing, DINOWORLD_PARTS)
    return model


def compute_dinoworld_loss(model, batch: dict):
    return model(frames=batch["frames"], timestamps=batch["timestamps"]).loss


def dinoworld_model_card(arguments: DinoWorldTrainingArguments, summary: dict):
    """The `README.md` of a trained DINO-world, checked offline like the other training cards."""
    dataset = hub_repo_id(arguments.train_data)
    data = build_card_data(
        "dinoworld",
        tags=["dinoworld", "video", "world-model"],
        base_model=hub_repo_id(arguments.init_from),
        datasets=[dataset] if dataset else None,
    )
    rung = f"step 1, Best-of-Many over {summary['num_samples_train']} noise queries" if summary["use_best_of_many"] else (
        "step 0, one learned query"
    )
    body = (
        "A DINO-world baseline (the patch-level rungs of the DeltaTok paper's ablation ladder) trained with deltatok-hf: "
        "a predictor of the next frame's frozen DINOv3 patch features, every patch a query told apart by a "
        f"(time, w, h) RoPE. Rung: {rung}.\n\n"
        "```python\nimport deltatok_hf\nfrom deltatok_hf import DinoWorldForForecasting\n\n"
        f"model = DinoWorldForForecasting.from_pretrained(\"{arguments.hub_model_id or arguments.output_dir}\")\n"
        "out = model.generate(frames=frames, timestamps=timestamps, future_timestamps=future_timestamps)\n"
        "out.future_features  # (batch, num_samples, num_future_frames, num_patches, hidden_size)\n```\n\n"
        f"Training: recipe `{arguments.preset}`, data `{arguments.train_data}`, model config `{arguments.model_config}`, "
        f"{summary['global_step']} optimizer steps, effective batch {summary['effective_batch_size']}, final training "
        f"loss (smooth-L1) {summary['final_loss']}. The training loss is the only number measured by this run; it is "
        f"not a quality result.\n\nCommand:\n\n```bash\n{command_line()}\n```\n"
    )
    return render_inline_card(data, arguments.hub_model_id or "DINO-world", body)


def train_dinoworld(arguments: DinoWorldTrainingArguments) -> dict:
    """Train, save the model, `train_summary.json` and the model card to `arguments.output_dir`; returns the summary."""
    accelerator = start_run(arguments)
    model = build_dinoworld_model(arguments)
    summary = train(arguments, accelerator, model, build_clip_dataset(arguments), compute_dinoworld_loss)
    summary.update(use_best_of_many=model.config.use_best_of_many, num_samples_train=model.config.num_samples_train)
    return end_run(arguments, accelerator, summary, lambda: dinoworld_model_card(arguments, summary))


__all__ = [
    "DINOWORLD_PARTS",
    "DinoWorldTrainingArguments",
    "build_dinoworld_model",
    "compute_dinoworld_loss",
    "dinoworld_model_card",
    "resolve_dinoworld_config",
    "train_dinoworld",
]
