"""Shared pieces of the training scripts in `examples/`: recipes, optimizer groups, LR schedule, freezing,
checkpoint folders and model cards.

The scripts stay thin (argument parsing and the Accelerate loop); every rule that should be the same in all of them
lives here, with a test.

Recipes. The official code (github.com/amazon-far/deltatok, `training/base.py`, `training/deltatok.py`,
`training/world.py`, `configs/*.yaml`) and the paper disagree on two tokenizer settings; both are offered as presets:

| setting                     | DeltaTok `released` | DeltaTok `paper` | DeltaWorld (both) |
|-----------------------------|---------------------|------------------|-------------------|
| optimizer                   | AdamW               | AdamW            | AdamW             |
| learning rate               | 1e-3                | 1e-3             | 1e-4              |
| weight decay (Linear/Conv weights only) | 1e-2    | 1e-4             | 0.4               |
| reconstruction loss         | log-cosh            | MSE              | smooth-L1, β 0.1 (in the model) |
| gradient clipping (norm)    | 1e-2                | 1e-2             | none              |
| warm-up (optimizer steps, linear from 0, then constant) | 5000 | 5000 | 5000              |
| frames per clip             | 2                   | 2                | 8                 |
| effective batch             | 1024                | 1024             | 1024              |

The released `deltatok-kinetics` and `deltaworld-kinetics` weights were trained with the `released` recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch import nn
from transformers import get_constant_schedule_with_warmup

from .models import DeltaTokConfig, DeltaWorldConfig

# Modules whose `weight` gets weight decay (official `configure_optimizers`); everything else trainable (biases,
# LayerNorm weights, embeddings, LayerScale) is in the no-decay group.
DECAY_MODULE_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


@dataclass(frozen=True)
class TrainingRecipe:
    """Optimisation settings of one published recipe. `max_grad_norm=None` means no clipping."""

    learning_rate: float
    weight_decay: float
    warmup_steps: int
    max_grad_norm: float | None
    num_frames: int
    effective_batch_size: int = 1024
    reconstruction_loss: str | None = None  # tokenizer only; a `DeltaTokConfig` field


DELTATOK_RECIPES = {
    # training/deltatok.py defaults + configs/deltatok_vitb_dinov3_vitb_kinetics.yaml (gradient_clip_val 1e-2).
    "released": TrainingRecipe(1e-3, 1e-2, 5000, 1e-2, num_frames=2, reconstruction_loss="log_cosh"),
    # Note: the paper reports weight decay 1e-4 and an MSE loss; the rest as the released code.
    "paper": TrainingRecipe(1e-3, 1e-4, 5000, 1e-2, num_frames=2, reconstruction_loss="mse"),
}
# training/world.py defaults; KineticsTrain samples 8 frames. Paper and code agree on the predictor settings we use.
DELTAWORLD_RECIPES = {
    "released": TrainingRecipe(1e-4, 4e-1, 5000, None, num_frames=8),
    "paper": TrainingRecipe(1e-4, 4e-1, 5000, None, num_frames=8),
}

# Named parts for `--freeze`; anything else is taken as a parameter-name prefix.
DELTATOK_PARTS = {
    "encoder": ("encoder_blocks.", "z_embed.", "xy_embed.", "norm."),
    "decoder": ("decoder_blocks.",),
}
DELTAWORLD_PARTS = {
    "predictor_blocks": ("predictor.blocks.",),
    "head": ("predictor.norm.", "predictor.head."),
}

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
MODEL_CARDS_DIR = Path(__file__).resolve().parents[2] / "model_cards"


# ---------------------------------------------------------------------------------------------------------------
# Configs and recipes
# ---------------------------------------------------------------------------------------------------------------


def get_recipe(model_type: str, preset: str) -> TrainingRecipe:
    recipes = {"deltatok": DELTATOK_RECIPES, "deltaworld": DELTAWORLD_RECIPES}[model_type]
    if preset not in recipes:
        raise ValueError(f"Unknown preset {preset!r} for {model_type}; expected one of {sorted(recipes)}.")
    return recipes[preset]


def resolve_config(model_type: str, name_or_path: str) -> DeltaTokConfig | DeltaWorldConfig:
    """`tiny`, `vitb` (the released ViT-B sizes) or a path to a `config.json` / a folder holding one."""
    config_class = {"deltatok": DeltaTokConfig, "deltaworld": DeltaWorldConfig}[model_type]
    if name_or_path == "tiny":
        return config_class.tiny()
    if name_or_path == "vitb":
        return config_class()
    path = Path(name_or_path)
    if path.is_dir() or path.is_file():
        return config_class.from_pretrained(str(path))
    raise ValueError(f"--model_config must be 'tiny', 'vitb' or a config path, got {name_or_path!r}.")


# ---------------------------------------------------------------------------------------------------------------
# Optimiser
# ---------------------------------------------------------------------------------------------------------------


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
    groups = build_parameter_groups(model, weight_decay)
    if not groups[0]["params"] and not groups[1]["params"]:
        raise ValueError("The model has no trainable parameters (everything is frozen).")
    return torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=learning_rate)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over `warmup_steps` optimizer steps, then constant (official `lr_lambda`)."""
    return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps)


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


def parameter_checksum(model: nn.Module, trainable_only: bool = True) -> str:
    """SHA-256 over the bytes of the parameters (by sorted name): equal on every rank after a data-parallel run."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        if trainable_only and not parameter.requires_grad:
            continue
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint folders
# ---------------------------------------------------------------------------------------------------------------


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """`checkpoint-{step}` folders of `output_dir`, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found)]


def resolve_resume_checkpoint(resume_from_checkpoint: str | None, output_dir: str) -> tuple[Path | None, int]:
    """`latest` or a path -> (folder, global step); `(None, 0)` when `latest` finds nothing (fresh start)."""
    if resume_from_checkpoint is None:
        return None, 0
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            return None, 0
        path = checkpoints[-1]
    else:
        path = Path(resume_from_checkpoint)
        if not path.is_dir():
            raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint!r} is not a folder.")
    match = CHECKPOINT_PATTERN.match(path.name)
    if match is None:
        raise ValueError(f"Checkpoint folder must be named checkpoint-<step>, got {path.name!r}.")
    return path, int(match.group(1))


def prune_checkpoints(output_dir: str, total_limit: int | None) -> None:
    """Keep the newest `total_limit - 1` checkpoints before a new one is written."""
    if total_limit is None:
        return
    checkpoints = list_checkpoints(output_dir)
    for path in checkpoints[: max(0, len(checkpoints) - total_limit + 1)]:
        shutil.rmtree(path)


def register_pretrained_checkpoint_hooks(accelerator, model_class) -> None:
    """
    Make `accelerator.save_state` write the model with `save_pretrained` (so `checkpoint-{step}` loads with
    `from_pretrained`) and `load_state` read it back; optimizer, scheduler and RNG states stay with Accelerate.
    """
    def save_model_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            for model in models:
                accelerator.unwrap_model(model).save_pretrained(output_dir)
                weights.pop()

    def load_model_hook(models, input_dir):
        while models:
            model = accelerator.unwrap_model(models.pop())
            # Through from_pretrained: the saved key names may differ from the module names (checkpoint conversion).
            loaded = model_class.from_pretrained(input_dir)
            model.load_state_dict(loaded.state_dict(), strict=True)

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)


def write_json(path: str | os.PathLike, payload: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Delta tokens of clips (token cache, experiments)
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def encode_clip_batch(tokenizer, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Frames `(batch, num_frames, 3, H, W)` -> delta tokens `(batch, num_frames, D)` (the first against the black frame)
    and the features of the last frame `(batch, num_patches, D)`. Runs the backbone and the encoder once.
    """
    delta_tokens, features = tokenizer.encode_frames(frames)
    return delta_tokens, features[:, -1]


# ---------------------------------------------------------------------------------------------------------------
# Model cards
# ---------------------------------------------------------------------------------------------------------------


def render_model_card(
    template_name: str, card_data: dict, templates_dir: str | os.PathLike | None = None, **template_kwargs
):
    """
    Render `model_cards/<template_name>` with `huggingface_hub.ModelCard.from_template` and check it offline: the YAML
    header parses back to the same metadata and no Jinja placeholder is left. (`ModelCard.validate` needs the Hub.)
    """
    from huggingface_hub import ModelCard, ModelCardData

    templates_dir = Path(templates_dir) if templates_dir is not None else MODEL_CARDS_DIR
    template_path = templates_dir / template_name
    if not template_path.is_file():
        raise FileNotFoundError(f"Model-card template {template_path} not found (run from a checkout of deltatok-hf).")
    data = ModelCardData(**card_data)
    card = ModelCard.from_template(data, template_path=str(template_path), **template_kwargs)
    check_model_card(card, card_data)
    return card


def check_model_card(card, expected_data: dict | None = None) -> None:
    """Raise `ValueError` if the card does not round-trip or still holds template placeholders."""
    from huggingface_hub import ModelCard

    text = str(card)
    if "{{" in text or "{%" in text:
        raise ValueError("The rendered model card still contains Jinja placeholders.")
    parsed = ModelCard(text)
    for key, value in (expected_data or {}).items():
        if value is not None and parsed.data.to_dict().get(key) != value:
            raise ValueError(f"Model card metadata {key!r} did not round-trip: {parsed.data.to_dict().get(key)!r} != {value!r}.")
    if not parsed.text.strip():
        raise ValueError("The rendered model card has no text.")


__all__ = [
    "DECAY_MODULE_TYPES",
    "DELTATOK_PARTS",
    "DELTATOK_RECIPES",
    "DELTAWORLD_PARTS",
    "DELTAWORLD_RECIPES",
    "TrainingRecipe",
    "build_lr_scheduler",
    "build_optimizer",
    "build_parameter_groups",
    "check_model_card",
    "encode_clip_batch",
    "freeze_parameters",
    "get_recipe",
    "list_checkpoints",
    "parameter_checksum",
    "prune_checkpoints",
    "register_pretrained_checkpoint_hooks",
    "render_model_card",
    "resolve_config",
    "resolve_resume_checkpoint",
    "write_json",
]


# ---------------------------------------------------------------------------------------------------------------
# Command-line arguments and the Accelerate loop shared by examples/train_deltatok.py and train_deltaworld.py
# ---------------------------------------------------------------------------------------------------------------


def add_training_arguments(parser, model_type: str) -> None:
    """Arguments common to both training scripts. Recipe values default to `None` and are filled from `--preset`."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--train_data",
        type=str,
        default="synthetic",
        help="A folder of videos, a `datasets` path or Hub id, or `synthetic` (moving shapes, no download).",
    )
    group.add_argument("--num_frames", type=int, default=None, help="Frames per clip (recipe: 2 tokenizer, 8 world).")
    group.add_argument("--frame_size", type=int, default=256, help="Square crop size in pixels (multiple of 16).")
    group.add_argument("--time_stride_range", type=float, nargs=2, default=(1 / 25, 1 / 3), help="Seconds between frames.")
    group.add_argument("--num_synthetic_videos", type=int, default=512, help="Size of the synthetic dataset.")
    group.add_argument("--dataloader_num_workers", type=int, default=0)

    group = parser.add_argument_group("model")
    group.add_argument("--model_config", type=str, default="tiny", help="`tiny`, `vitb` or a path to a config.json.")
    group.add_argument("--init_from", type=str, default=None, help="Pretrained checkpoint (folder or Hub id) to fine-tune.")
    group.add_argument("--freeze", type=str, nargs="*", default=[], help="Parts to freeze (named parts or name prefixes).")
    group.add_argument("--gradient_checkpointing", action="store_true")

    group = parser.add_argument_group("optimisation")
    group.add_argument("--preset", choices=("released", "paper"), default="released", help="Recipe (see README).")
    group.add_argument("--learning_rate", type=float, default=None)
    group.add_argument("--weight_decay", type=float, default=None, help="On Linear/Conv weights only.")
    group.add_argument("--warmup_steps", type=int, default=None, help="Linear warm-up (optimizer steps), then constant.")
    group.add_argument("--max_grad_norm", type=float, default=None, help="Gradient clipping; <= 0 disables.")
    group.add_argument("--train_batch_size", type=int, default=8, help="Per-process batch size.")
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--max_train_steps", type=int, default=1000, help="Optimizer steps.")
    group.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None, help="Passed to Accelerator.")
    group.add_argument("--seed", type=int, default=0)

    group = parser.add_argument_group("checkpoints and logging")
    group.add_argument("--output_dir", type=str, default=f"outputs/{model_type}")
    group.add_argument("--checkpointing_steps", type=int, default=500)
    group.add_argument("--checkpoints_total_limit", type=int, default=None)
    group.add_argument("--resume_from_checkpoint", type=str, default=None, help="`latest` or a checkpoint-<step> folder.")
    group.add_argument("--logging_steps", type=int, default=10)
    group.add_argument("--report_to", type=str, default=None, help="Tracker for Accelerator(log_with=...), e.g. tensorboard.")
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", type=str, default=None)
    group.add_argument(
        "--write_rank_checksums",
        action="store_true",
        help="Write rank<i>_checksum.json (SHA-256 of the trainable parameters) on every process at the end.",
    )


def apply_recipe(args, model_type: str) -> TrainingRecipe:
    """Fill every recipe argument left at `None` from `--preset`; explicit values win."""
    recipe = get_recipe(model_type, args.preset)
    for field in ("learning_rate", "weight_decay", "warmup_steps", "max_grad_norm", "num_frames"):
        if getattr(args, field) is None:
            setattr(args, field, getattr(recipe, field))
    if args.max_grad_norm is not None and args.max_grad_norm <= 0:
        args.max_grad_norm = None
    if args.frame_size % 16:
        raise ValueError(f"--frame_size must be a multiple of 16 (the patch size), got {args.frame_size}.")
    if args.gradient_accumulation_steps < 1 or args.train_batch_size < 1 or args.max_train_steps < 1:
        raise ValueError("--train_batch_size, --gradient_accumulation_steps and --max_train_steps must be >= 1.")
    return recipe


def build_clip_dataset(args, num_frames: int | None = None):
    """
    The training clips named by `--train_data`: `synthetic` (`SyntheticMultimodalMotion`, map-style), or a
    `VideoClipDataset` (iterable; random clip + `RandomResizedCropVideo` crop, seeded per (seed, epoch, video)).
    """
    from . import data

    num_frames = num_frames or args.num_frames
    if args.train_data == "synthetic":
        return data.SyntheticMultimodalMotion(
            num_videos=args.num_synthetic_videos,
            num_frames=num_frames,
            num_context_frames=max(1, num_frames - 3),
            size=args.frame_size,
            seed=args.seed,
        )
    min_gap, max_gap = args.time_stride_range
    return data.VideoClipDataset(
        data.load_video_dataset(args.train_data),
        num_frames=num_frames,
        num_clips_per_video=getattr(args, "clips_per_video", 1),
        min_gap=min_gap,
        max_gap=max_gap,
        transform=data.RandomResizedCropVideo(args.frame_size),
        shuffle=True,
        seed=args.seed,
    )


def collate_training_clips(items: list[dict]) -> dict:
    """Stack only what training needs, `frames` `(B, T, 3, H, W)` and `timestamps` `(B, T)`, so that clips from
    different sources (video clips, synthetic clips with extra fields) can share a batch."""
    return {
        "frames": torch.stack([torch.as_tensor(item["frames"]) for item in items]),
        "timestamps": torch.stack([torch.as_tensor(item["timestamps"], dtype=torch.float32) for item in items]),
    }


def train(args, accelerator, model, train_dataset, compute_loss, collate_fn=collate_training_clips, logger=None) -> dict:
    """
    The Accelerate training loop shared by the example scripts (the structure of accelerate's
    `examples/by_feature/checkpointing.py`): AdamW with Linear/Conv-only weight decay, warm-up then constant LR,
    gradient accumulation, clipping, `checkpoint-{step}` folders, `--resume_from_checkpoint latest` with
    `skip_first_batches`, tqdm on the main process. Returns a summary (also written to `train_summary.json`).

    `compute_loss(model, batch) -> loss` runs one micro-batch.
    """
    import time

    from tqdm.auto import tqdm

    unwrapped = model
    optimizer = build_optimizer(unwrapped, args.learning_rate, args.weight_decay)
    # Not prepared: Accelerate would step a prepared scheduler once per process; the official warm-up counts optimizer
    # steps whatever the number of devices. Registered so that save_state / load_state keep it.
    lr_scheduler = build_lr_scheduler(optimizer, args.warmup_steps)
    iterable = isinstance(train_dataset, torch.utils.data.IterableDataset)
    # Own generator: the DataLoader iterator draws its base seed from it, not from the global RNG that the model uses,
    # so resuming mid-epoch sees the same random draws as the uninterrupted run. Iterable clip datasets shuffle
    # themselves (per epoch, seeded).
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.train_batch_size,
        shuffle=not iterable,
        drop_last=True,
        collate_fn=collate_fn,
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    if not iterable and len(train_dataloader) == 0:
        raise ValueError(
            f"The training set ({len(train_dataset)} clips) is smaller than one batch ({args.train_batch_size})."
        )
    initial_checksum = parameter_checksum(unwrapped)
    register_pretrained_checkpoint_hooks(accelerator, type(unwrapped))
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    accelerator.register_for_checkpointing(lr_scheduler)
    total_batch_size = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps

    checkpoint_path, global_step = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    epoch, batches_to_skip = 0, 0
    if checkpoint_path is not None:
        accelerator.print(f"Resuming from {checkpoint_path} (step {global_step})")
        accelerator.load_state(str(checkpoint_path))
        position = json.loads((checkpoint_path / "trainer_state.json").read_text())
        epoch, batches_to_skip = position["epoch"], position["batches_in_epoch"]
    elif args.resume_from_checkpoint is not None:
        accelerator.print(f"No checkpoint in {args.output_dir}; starting a new run.")

    if logger is not None:
        logger.info("***** Running training *****")
        logger.info(f"  Num clips = {'streamed' if iterable else len(train_dataset)}")
        logger.info(f"  Batch per process = {args.train_batch_size}, effective batch = {total_batch_size}")
        logger.info(f"  Optimizer steps = {args.max_train_steps}, starting at {global_step}")
    progress_bar = tqdm(
        range(args.max_train_steps), initial=global_step, disable=not accelerator.is_local_main_process, desc="Steps"
    )
    losses: dict[int, float] = {}
    step_loss = 0.0
    start_time = time.perf_counter()
    model.train()
    while global_step < args.max_train_steps:
        train_dataloader.set_epoch(epoch)
        if hasattr(train_dataset, "set_epoch"):
            train_dataset.set_epoch(epoch)
        active_dataloader = train_dataloader
        if batches_to_skip:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, batches_to_skip)
        batches_in_epoch = batches_to_skip
        resumed_mid_epoch, batches_to_skip = batches_to_skip > 0, 0
        seen_batch = False
        for batch in active_dataloader:
            seen_batch = True
            batches_in_epoch += 1
            with accelerator.accumulate(model):
                loss = compute_loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss += accelerator.gather(loss.detach().float().reshape(1)).mean().item()
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            progress_bar.update(1)
            step_loss /= args.gradient_accumulation_steps
            losses[global_step] = step_loss
            logs = {"loss": step_loss, "lr": lr_scheduler.get_last_lr()[0]}
            progress_bar.set_postfix(**logs)
            if args.report_to:
                accelerator.log(logs, step=global_step)
            if logger is not None and global_step % args.logging_steps == 0:
                logger.info(f"step {global_step}: loss {step_loss:.6f} lr {logs['lr']:.3g}")
            step_loss = 0.0
            if global_step % args.checkpointing_steps == 0:
                if accelerator.is_main_process:
                    prune_checkpoints(args.output_dir, args.checkpoints_total_limit)
                accelerator.wait_for_everyone()
                checkpoint_dir = Path(args.output_dir) / f"checkpoint-{global_step}"
                accelerator.save_state(str(checkpoint_dir))
                if accelerator.is_main_process:
                    write_json(
                        checkpoint_dir / "trainer_state.json",
                        {"global_step": global_step, "epoch": epoch, "batches_in_epoch": batches_in_epoch},
                    )
            if global_step >= args.max_train_steps:
                break
        if not seen_batch and not resumed_mid_epoch:  # (a checkpoint taken at the end of an epoch skips it all)
            raise ValueError("The training data produced no batch (every video skipped, or fewer clips than a batch).")
        epoch += 1
    progress_bar.close()
    elapsed = time.perf_counter() - start_time

    accelerator.wait_for_everyone()
    final_model = accelerator.unwrap_model(model)
    summary = {
        "global_step": global_step,
        "losses": {str(step): value for step, value in losses.items()},
        "final_loss": losses[max(losses)] if losses else None,
        "effective_batch_size": total_batch_size,
        "num_processes": accelerator.num_processes,
        "train_seconds": elapsed,
        "preset": args.preset,
        "initial_checksum": initial_checksum,
    }
    if args.write_rank_checksums:
        write_json(
            Path(args.output_dir) / f"rank{accelerator.process_index}_checksum.json",
            {"process_index": accelerator.process_index, "checksum": parameter_checksum(final_model)},
        )
    if accelerator.is_main_process:
        final_model.save_pretrained(args.output_dir)
    return summary


def finish_run(args, summary: dict, template_name: str, model_name: str, tags: list[str], extra: dict | None = None) -> None:
    """Main process: write `train_summary.json` and the model card, and push the output folder when asked."""
    import sys

    summary = {**summary, **(extra or {})}
    write_json(Path(args.output_dir) / "train_summary.json", summary)
    card = render_model_card(
        template_name,
        {"license": "apache-2.0", "library_name": "deltatok-hf", "tags": tags},
        model_name=args.hub_model_id or model_name,
        args=vars(args),
        summary=summary,
        command="accelerate launch " + " ".join(sys.argv),
    )
    card.save(str(Path(args.output_dir) / "README.md"))
    if args.push_to_hub:
        from huggingface_hub import HfApi

        repo_id = args.hub_model_id or Path(args.output_dir).name
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id, folder_path=args.output_dir, ignore_patterns=["checkpoint-*", "rank*_checksum.json"]
        )


class CallCounter:
    """Counts forward calls of modules through forward pre-hooks (used to prove the token cache skips the backbone)."""

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
