"""The Accelerate training loop shared by `train-deltatok`, `train-deltaworld` and the demo-model script.

Its structure is that of accelerate's `examples/by_feature/checkpointing.py`: `accelerator.accumulate`, clipping on
`sync_gradients`, `checkpoint-{step}` folders, `--resume_from_checkpoint latest` with `skip_first_batches`, tqdm on the
main process. A resumed run restores the model, optimizer, schedule, sampler and RNG states and the data position, so
on one CPU with a fixed seed it ends with the same weights, bit for bit, as a run that was never interrupted
(`tests/test_training_resume.py` kills runs with SIGKILL mid-step and mid-save to prove it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from .arguments import TrainingArguments
from .cards import command_line
from .checkpointing import (
    TRAINER_STATE_NAME,
    TrainerState,
    register_pretrained_checkpoint_hooks,
    remove_incomplete_checkpoints,
    resolve_resume_checkpoint,
    save_checkpoint,
    write_json,
)
from .data import collate_training_clips
from .optim import build_lr_scheduler, build_optimizer, parameter_checksum, set_base_learning_rate

logger = logging.getLogger(__name__)
SUMMARY_NAME = "train_summary.json"


def configure_logging() -> None:
    """Timestamped INFO logging, as the accelerate examples set up (a no-op when logging is already configured)."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)


def build_accelerator(arguments: TrainingArguments, project_name: str | None = None):
    """
    The `Accelerator` of a training run: gradient accumulation and mixed precision from the arguments, a seedable
    sampler (its state is checkpointed, so a resumed run sees the same data order), trackers when `report_to` is set.
    """
    from accelerate import Accelerator, DataLoaderConfiguration

    accelerator = Accelerator(
        gradient_accumulation_steps=arguments.gradient_accumulation_steps,
        mixed_precision=arguments.mixed_precision,
        log_with=arguments.report_to,
        project_dir=arguments.output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if arguments.report_to:
        config = {key: value for key, value in asdict(arguments).items() if isinstance(value, (int, float, str, bool))}
        accelerator.init_trackers(project_name or f"train_{arguments.model_type}", config=config)
    return accelerator


def start_run(arguments: TrainingArguments):
    """What every training command does first: logging, the `Accelerator`, the seed. Returns the accelerator."""
    from accelerate.utils import set_seed

    configure_logging()
    accelerator = build_accelerator(arguments)
    logger.info(accelerator.state)
    set_seed(arguments.seed)
    return accelerator


def end_run(arguments: TrainingArguments, accelerator, summary: dict, model_card: Callable[[], object]) -> dict:
    """What every training command does last: on the main process the summary and the card (`model_card()`), which
    `finish_run` writes (and pushes); then the trackers are closed. Returns `summary`."""
    if accelerator.is_main_process:
        finish_run(arguments, summary, model_card())
        logger.info(f"Saved to {arguments.output_dir} after {summary['global_step']} steps; loss {summary['final_loss']}")
    accelerator.end_training()
    return summary


def train(
    arguments: TrainingArguments,
    accelerator,
    model: torch.nn.Module,
    train_dataset,
    compute_loss: Callable[[torch.nn.Module, dict], torch.Tensor],
    collate_fn: Callable[[list[dict]], dict] = collate_training_clips,
) -> dict:
    """
    Train `model` for `arguments.max_train_steps` optimizer steps and `save_pretrained` it to `arguments.output_dir`.
    AdamW with Linear/Conv-only weight decay, warm-up then constant LR, gradient accumulation and clipping.
    `compute_loss(model, batch) -> loss` runs one micro-batch. Returns a summary (per-step losses, effective batch,
    processes, seconds, checksum of the initial trainable parameters).
    """
    from tqdm.auto import tqdm

    def log(message: str) -> None:
        if accelerator.is_main_process:
            logger.info(message)

    output_dir = Path(arguments.output_dir)
    optimizer = build_optimizer(model, arguments.learning_rate, arguments.weight_decay)
    # Not prepared: Accelerate would step a prepared scheduler once per process, while the official warm-up counts
    # optimizer steps whatever the number of devices. Registered below so that save_state / load_state keep it.
    lr_scheduler = build_lr_scheduler(optimizer, arguments.warmup_steps)
    iterable = isinstance(train_dataset, torch.utils.data.IterableDataset)
    # Own generator: the DataLoader iterator draws its base seed from it rather than from the global RNG the model
    # draws from, so a resumed run sees the same random numbers. Iterable clip datasets shuffle themselves (seeded).
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=arguments.train_batch_size,
        shuffle=not iterable,
        drop_last=True,
        collate_fn=collate_fn,
        num_workers=arguments.dataloader_num_workers,
        generator=torch.Generator().manual_seed(arguments.seed),
    )
    if not iterable and len(train_dataloader) == 0:
        raise ValueError(
            f"The training set ({len(train_dataset)} clips) is smaller than one batch ({arguments.train_batch_size})."
        )
    initial_checksum = parameter_checksum(model)
    register_pretrained_checkpoint_hooks(accelerator, type(model))
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    accelerator.register_for_checkpointing(lr_scheduler)
    total_batch_size = arguments.train_batch_size * accelerator.num_processes * arguments.gradient_accumulation_steps

    if accelerator.is_main_process:
        for leftover in remove_incomplete_checkpoints(output_dir):
            log(f"Removed {leftover.name}, left by an interrupted save")
    accelerator.wait_for_everyone()
    checkpoint_path = resolve_resume_checkpoint(arguments.resume_from_checkpoint, output_dir)
    global_step, epoch, batches_to_skip, losses = 0, 0, 0, {}
    if checkpoint_path is not None:
        state = TrainerState.load(checkpoint_path / TRAINER_STATE_NAME)
        state.check_compatible(accelerator.num_processes, arguments.train_batch_size, arguments.gradient_accumulation_steps)
        accelerator.print(f"Resuming from {checkpoint_path} (step {state.global_step})")
        accelerator.load_state(str(checkpoint_path))
        if state.learning_rate != arguments.learning_rate:
            set_base_learning_rate(optimizer, lr_scheduler, arguments.learning_rate)
            accelerator.print(f"Learning rate changed from {state.learning_rate} to {arguments.learning_rate}")
        global_step, epoch, batches_to_skip = state.global_step, state.epoch, state.batches_in_epoch
        losses = {int(step): value for step, value in state.losses.items()}
    elif arguments.resume_from_checkpoint is not None:
        accelerator.print(f"No checkpoint in {output_dir}; starting a new run.")

    log("***** Running training *****")
    log(f"  Num clips = {'streamed' if iterable else len(train_dataset)}")
    log(f"  Batch per process = {arguments.train_batch_size}, effective batch = {total_batch_size}")
    log(f"  Optimizer steps = {arguments.max_train_steps}, starting at {global_step}")
    progress_bar = tqdm(
        range(arguments.max_train_steps), initial=global_step, disable=not accelerator.is_local_main_process, desc="Steps"
    )
    step_loss = 0.0
    start_time = time.perf_counter()
    model.train()
    while global_step < arguments.max_train_steps:
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
                if accelerator.sync_gradients and arguments.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), arguments.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss += accelerator.gather(loss.detach().float().reshape(1)).mean().item()
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            progress_bar.update(1)
            step_loss /= arguments.gradient_accumulation_steps
            losses[global_step] = step_loss
            logs = {"loss": step_loss, "lr": lr_scheduler.get_last_lr()[0]}
            progress_bar.set_postfix(**logs)
            if arguments.report_to:
                accelerator.log(logs, step=global_step)
            if global_step % arguments.logging_steps == 0:
                log(f"step {global_step}: loss {step_loss:.6f} lr {logs['lr']:.3g}")
            step_loss = 0.0
            if global_step % arguments.checkpointing_steps == 0:
                state = TrainerState(
                    global_step=global_step,
                    epoch=epoch,
                    batches_in_epoch=batches_in_epoch,
                    num_processes=accelerator.num_processes,
                    train_batch_size=arguments.train_batch_size,
                    gradient_accumulation_steps=arguments.gradient_accumulation_steps,
                    learning_rate=arguments.learning_rate,
                    seed=arguments.seed,
                    losses={str(step): value for step, value in losses.items()},
                )
                save_checkpoint(accelerator, output_dir, state, arguments.checkpoints_total_limit)
            if global_step >= arguments.max_train_steps:
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
        "losses": {str(step): value for step, value in sorted(losses.items())},
        "final_loss": losses[max(losses)] if losses else None,
        "effective_batch_size": total_batch_size,
        "num_processes": accelerator.num_processes,
        "train_seconds": elapsed,
        "resumed_from": str(checkpoint_path) if checkpoint_path is not None else None,
        "preset": arguments.preset,
        "initial_checksum": initial_checksum,
        # Videos skipped as unreadable or too short (counted by the clip datasets, DataLoader workers included).
        "skipped_videos": dict(train_dataset.stats) if hasattr(train_dataset, "stats") else None,
    }
    if arguments.write_rank_checksums:
        write_json(
            output_dir / f"rank{accelerator.process_index}_checksum.json",
            {"process_index": accelerator.process_index, "checksum": parameter_checksum(final_model)},
        )
    state_dict = accelerator.get_state_dict(model)  # gathers FSDP shards, so every process calls it
    if accelerator.is_main_process:
        final_model.save_pretrained(output_dir, state_dict=state_dict)
    return summary


def finish_run(arguments: TrainingArguments, summary: dict, card) -> None:
    """Main process: write `train_summary.json` and the model card `README.md`; push the folder when asked."""
    output_dir = Path(arguments.output_dir)
    write_json(output_dir / SUMMARY_NAME, summary)
    card.save(str(output_dir / "README.md"))
    if arguments.push_to_hub:
        from huggingface_hub import HfApi

        repo_id = arguments.hub_model_id or output_dir.name
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(output_dir),
            ignore_patterns=["checkpoint-*", "rank*_checksum.json"],
        )


__all__ = [
    "SUMMARY_NAME",
    "build_accelerator",
    "command_line",
    "configure_logging",
    "end_run",
    "finish_run",
    "start_run",
    "train",
]
