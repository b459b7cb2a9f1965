"""`deltatok-hf train-deltaworld` (and `examples/train_deltaworld.py`): train or fine-tune the DeltaWorld predictor.

On frames (the frozen backbone and tokenizer encoder run at every step) or on cached delta tokens (`token_cache`,
written by `deltatok-hf cache-tokens`: neither runs). Best-of-Many training (official `training/world.py`):
`num_samples_train` noise queries per target are scored without gradient and only the closest one is trained;
`deterministic` trains the one-query ablation instead.
"""

from __future__ import annotations

from torch import nn

from ..models import DeltaTokModel, DeltaWorldForForecasting
from .arguments import DeltaWorldTrainingArguments
from .cards import render_training_card
from .data import build_clip_dataset, collate_token_rows, load_token_cache, read_cache_info
from .loop import end_run, start_run, train
from .optim import DELTAWORLD_PARTS, apply_training_options
from .recipes import resolve_config


class CallCounter:
    """Counts forward calls of modules through forward pre-hooks (proves the token cache skips the backbone)."""

    def __init__(self, **modules: nn.Module) -> None:
        self.counts = {name: 0 for name in modules}
        self._handles = [module.register_forward_pre_hook(self._hook(name)) for name, module in modules.items()]

    def _hook(self, name: str):
        def hook(module, inputs):
            self.counts[name] += 1

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def tokenizer_source(arguments: DeltaWorldTrainingArguments) -> str | None:
    """The tokenizer a new DeltaWorld gets: `tokenizer`, else (training from a cache) the one the cache was made with."""
    if arguments.tokenizer is not None or arguments.init_from is not None or arguments.token_cache is None:
        return arguments.tokenizer
    return read_cache_info(arguments.token_cache).get("tokenizer")


def build_deltaworld_model(arguments: DeltaWorldTrainingArguments) -> DeltaWorldForForecasting:
    """A new predictor (`model_config` + the trained tokenizer) or `init_from`'s; the tokenizer is frozen."""
    if arguments.init_from is not None:
        model = DeltaWorldForForecasting.from_pretrained(arguments.init_from)
        if arguments.num_samples_train is not None:
            model.config.num_samples_train = arguments.num_samples_train
        if arguments.deterministic and model.config.use_best_of_many:
            raise ValueError(f"deterministic=True, but init_from {arguments.init_from!r} is a Best-of-Many model.")
    else:
        config = resolve_config("deltaworld", arguments.model_config)
        source = tokenizer_source(arguments)
        if arguments.deterministic:
            config.use_best_of_many = False
        if arguments.num_samples_train is not None:
            config.num_samples_train = arguments.num_samples_train
        if source:
            config.tokenizer_name_or_path = source
            model = DeltaWorldForForecasting.from_tokenizer(DeltaTokModel.from_pretrained(source), config)
        else:
            model = DeltaWorldForForecasting(config)
    model.tokenizer.requires_grad_(False)
    apply_training_options(model, arguments.freeze, arguments.gradient_checkpointing, DELTAWORLD_PARTS)
    return model


def compute_loss_from_frames(model, batch: dict):
    return model(frames=batch["frames"], timestamps=batch["timestamps"]).loss


def compute_loss_from_tokens(model, batch: dict):
    return model(delta_tokens=batch["delta_tokens"], timestamps=batch["timestamps"]).loss


def train_deltaworld(arguments: DeltaWorldTrainingArguments) -> dict:
    """Train, save the model, `train_summary.json` and the model card to `arguments.output_dir`; returns the summary."""
    accelerator = start_run(arguments)
    model = build_deltaworld_model(arguments)
    # Counts every call of the frozen backbone and of the first encoder block (reported in train_summary.json).
    counter = CallCounter(backbone=model.tokenizer.backbone, encoder=model.tokenizer.encoder_blocks[0])
    if arguments.token_cache is not None:
        train_dataset = load_token_cache(arguments.token_cache, model.tokenizer)
        summary = train(arguments, accelerator, model, train_dataset, compute_loss_from_tokens, collate_token_rows)
    else:
        summary = train(arguments, accelerator, model, build_clip_dataset(arguments), compute_loss_from_frames)
    counter.remove()
    summary.update(
        backbone_calls=counter.counts["backbone"],
        encoder_calls=counter.counts["encoder"],
        token_cache=arguments.token_cache,
        use_best_of_many=model.config.use_best_of_many,
        num_samples_train=model.config.num_samples_train,
    )
    tokenizer = tokenizer_source(arguments)
    card = lambda: render_training_card(  # noqa: E731
        arguments,
        summary,
        base_model=arguments.init_from or tokenizer,
        train_data=None if arguments.token_cache else arguments.train_data,
        tokenizer=tokenizer or arguments.init_from or f"random init ({arguments.model_config})",
    )
    return end_run(arguments, accelerator, summary, card)


__all__ = [
    "CallCounter",
    "build_deltaworld_model",
    "compute_loss_from_frames",
    "compute_loss_from_tokens",
    "tokenizer_source",
    "train_deltaworld",
]
