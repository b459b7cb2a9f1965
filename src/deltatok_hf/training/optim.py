"""Parameter groups, AdamW, the learning-rate schedule, freezing and parameter checksums."""

from __future__ import annotations

import hashlib
import logging
from typing import Iterable

import torch
from torch import nn
from transformers import get_constant_schedule_with_warmup

logger = logging.getLogger(__name__)

# Modules whose `weight` gets weight decay (official `configure_optimizers`); every other trainable parameter (biases,
# LayerNorm weights, embeddings, LayerScale) goes to the no-decay group.
DECAY_MODULE_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

# Named parts for `--freeze`; anything else is taken as a parameter-name prefix.
DELTATOK_PARTS = {
    "encoder": ("encoder_blocks.", "z_embed.", "xy_embed.", "norm."),
    "decoder": ("decoder_blocks.",),
}
DELTAWORLD_PARTS = {
    "predictor_blocks": ("predictor.blocks.",),
    "head": ("predictor.norm.", "predictor.head."),
}


def build_parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """
    AdamW groups as the official `configure_optimizers`: decay only on the `weight` of Linear / Conv layers, no decay
    for every other trainable parameter. Frozen parameters are left out. Names are sorted so the order is stable.
    """
    decay = {}
    for module_name, module in model.named_modules():
        if isinstance(module, DECAY_MODULE_TYPES):
            weight = getattr(module, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.requires_grad:
                decay[f"{module_name}.weight" if module_name else "weight"] = weight
    no_decay = {name: p for name, p in model.named_parameters() if p.requires_grad and name not in decay}
    return [
        {"params": [decay[name] for name in sorted(decay)], "weight_decay": weight_decay, "names": sorted(decay)},
        {"params": [no_decay[name] for name in sorted(no_decay)], "weight_decay": 0.0, "names": sorted(no_decay)},
    ]


def build_optimizer(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over `build_parameter_groups`; raises `ValueError` when nothing is trainable."""
    groups = build_parameter_groups(model, weight_decay)
    if not groups[0]["params"] and not groups[1]["params"]:
        raise ValueError("The model has no trainable parameters (everything is frozen).")
    return torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=learning_rate)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over `warmup_steps` optimizer steps, then constant (official `lr_lambda`)."""
    return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps)


def set_base_learning_rate(
    optimizer: torch.optim.Optimizer, lr_scheduler: torch.optim.lr_scheduler.LambdaLR, learning_rate: float
) -> None:
    """
    Give a restored optimizer and schedule a new base learning rate, keeping the schedule's position (the official
    cool-downs resume a run at a lower rate). `load_state_dict` alone would bring back the saved rate.
    """
    lr_scheduler.base_lrs = [learning_rate] * len(optimizer.param_groups)
    for group, factor in zip(optimizer.param_groups, (f(lr_scheduler.last_epoch) for f in lr_scheduler.lr_lambdas)):
        group["initial_lr"] = learning_rate
        group["lr"] = learning_rate * factor
    lr_scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def freeze_parameters(model: nn.Module, parts: Iterable[str], named_parts: dict[str, tuple[str, ...]]) -> list[str]:
    """Set `requires_grad=False` on the named parts (or parameter-name prefixes); returns the frozen names."""
    frozen = []
    for part in parts:
        prefixes = named_parts.get(part, (part,))
        matched = [name for name, _ in model.named_parameters() if name.startswith(prefixes)]
        if not matched:
            raise ValueError(
                f"--freeze {part!r} matches no parameter; use one of {sorted(named_parts)} or a parameter-name prefix."
            )
        for name, parameter in model.named_parameters():
            if name in matched:
                parameter.requires_grad_(False)
        frozen.extend(matched)
    return frozen


def apply_training_options(
    model: nn.Module, freeze: list[str], gradient_checkpointing: bool, named_parts: dict[str, tuple[str, ...]]
) -> list[str]:
    """`--freeze` (named parts or prefixes) and `--gradient_checkpointing` on a model about to be trained."""
    frozen = freeze_parameters(model, freeze, named_parts) if freeze else []
    if frozen:
        logger.info(f"Froze {len(frozen)} parameter tensors ({', '.join(freeze)})")
    if gradient_checkpointing:
        model.activation_checkpointing_enable()
    return frozen


def parameter_checksum(model: nn.Module, trainable_only: bool = True) -> str:
    """
    SHA-256 over the bytes of the parameters (by sorted name): equal on every rank after a data-parallel run.
    Sharded (DTensor) parameters are gathered first, so under FSDP every rank must call it.
    """
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        if trainable_only and not parameter.requires_grad:
            continue
        tensor = parameter.detach()
        if hasattr(tensor, "full_tensor"):  # a DTensor shard (FSDP2)
            tensor = tensor.full_tensor()
        digest.update(name.encode())
        digest.update(tensor.cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


__all__ = [
    "DECAY_MODULE_TYPES",
    "apply_training_options",
    "DELTATOK_PARTS",
    "DELTAWORLD_PARTS",
    "build_lr_scheduler",
    "build_optimizer",
    "build_parameter_groups",
    "freeze_parameters",
    "parameter_checksum",
    "set_base_learning_rate",
]
