"""`checkpoint-{step}` folders that survive `kill -9`.

A checkpoint is written into `checkpoint-{step}.tmp` and renamed to `checkpoint-{step}` only once everything is in it
(the model as `save_pretrained` output, optimizer, scheduler, sampler and RNG states from `accelerator.save_state`, and
`trainer_state.json`). A rename within one folder is atomic on POSIX file systems, so a run killed during a save leaves a
`.tmp` folder that `latest` never picks, and that the next run removes. Old checkpoints are renamed out of the pattern
before they are deleted, for the same reason. (The rename makes a save atomic against a killed process; against a
power cut the files would also need an fsync, which we do not pay for at every checkpoint.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TEMPORARY_SUFFIX = ".tmp"
DISCARDED_SUFFIX = ".discarded"
TRAINER_STATE_NAME = "trainer_state.json"


@dataclass
class TrainerState:
    """
    What a resumed run needs beyond the states Accelerate saves, written as `trainer_state.json` in every checkpoint.

    Attributes:
        global_step: optimizer steps done.
        epoch: the epoch the next batch comes from.
        batches_in_epoch: batches of that epoch already consumed (the resumed run skips them with
            `accelerator.skip_first_batches`).
        losses: the training loss of every optimizer step so far, by step (so the final summary covers the whole run).
        num_processes, train_batch_size, gradient_accumulation_steps: the batch layout; a resumed run must use the same
            one, otherwise `batches_in_epoch` points somewhere else in the data.
        learning_rate: the base learning rate the optimizer state was saved with.
        seed: the run's seed.
    """

    global_step: int
    epoch: int
    batches_in_epoch: int
    num_processes: int
    train_batch_size: int
    gradient_accumulation_steps: int
    learning_rate: float
    seed: int
    losses: dict[str, float] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainerState":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path} not found: the checkpoint is incomplete or was not written by deltatok-hf.")
        payload = json.loads(path.read_text())
        names = set(cls.__dataclass_fields__)
        missing = sorted(names - set(payload) - {"losses"})
        if missing:
            raise ValueError(
                f"{path} lacks {missing}: the checkpoint was written by an older deltatok-hf, which did not record "
                "them; start a new run (or load its weights with --init_from)."
            )
        return cls(**{key: value for key, value in payload.items() if key in names})

    def check_compatible(self, num_processes: int, train_batch_size: int, gradient_accumulation_steps: int) -> None:
        """Raise `ValueError` if the run being resumed used another batch layout."""
        saved = (self.num_processes, self.train_batch_size, self.gradient_accumulation_steps)
        current = (num_processes, train_batch_size, gradient_accumulation_steps)
        if saved != current:
            raise ValueError(
                "The checkpoint was written with (processes, train_batch_size, gradient_accumulation_steps) = "
                f"{saved}, this run uses {current}; resume with the same layout so the data position stays valid."
            )


def write_json(path: str | os.PathLike, payload: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def checkpoint_dir(output_dir: str | os.PathLike, global_step: int) -> Path:
    return Path(output_dir) / f"checkpoint-{global_step}"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete `checkpoint-{step}` folders of `output_dir`, oldest first (`.tmp` folders are not checkpoints)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found)]


def resolve_resume_checkpoint(resume_from_checkpoint: str | None, output_dir: str | os.PathLike) -> Path | None:
    """`latest` -> the newest complete checkpoint of `output_dir` or `None` (fresh start); a path -> that folder."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint!r} is not a folder.")
    if CHECKPOINT_PATTERN.match(path.name) is None:
        raise ValueError(f"Checkpoint folder must be named checkpoint-<step>, got {path.name!r}.")
    return path


def _discard(path: Path) -> None:
    """Take `path` out of the checkpoint pattern with one rename, then delete it."""
    discarded = path.with_name(path.name + DISCARDED_SUFFIX)
    shutil.rmtree(discarded, ignore_errors=True)
    os.replace(path, discarded)
    shutil.rmtree(discarded)


def remove_incomplete_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Delete what a killed run left: `checkpoint-*.tmp` (half-written) and `*.discarded` (half-deleted) folders."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    leftovers = [
        path
        for path in output_dir.iterdir()
        if path.is_dir() and path.name.startswith("checkpoint-") and path.name.endswith((TEMPORARY_SUFFIX, DISCARDED_SUFFIX))
    ]
    for path in leftovers:
        shutil.rmtree(path)
    return leftovers


def prune_checkpoints(output_dir: str | os.PathLike, total_limit: int | None) -> list[Path]:
    """Keep the newest `total_limit` checkpoints; returns the removed folders."""
    if total_limit is None:
        return []
    checkpoints = list_checkpoints(output_dir)
    removed = checkpoints[: max(0, len(checkpoints) - total_limit)]
    for path in removed:
        _discard(path)
    return removed


def save_checkpoint(accelerator, output_dir: str | os.PathLike, state: TrainerState, total_limit: int | None) -> Path:
    """
    Write `checkpoint-{state.global_step}` atomically (temporary folder + rename; see the module docstring), then
    prune to `total_limit`. Every process calls it: `save_state` writes each rank's RNG state into the same folder.
    """
    final = checkpoint_dir(output_dir, state.global_step)
    temporary = final.with_name(final.name + TEMPORARY_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state.save(temporary / TRAINER_STATE_NAME)  # last file in: a folder holding it is complete
        if final.exists():  # a run resumed from an earlier checkpoint writes this step again
            _discard(final)
        os.replace(temporary, final)
        prune_checkpoints(output_dir, total_limit)
    accelerator.wait_for_everyone()
    return final


def register_pretrained_checkpoint_hooks(accelerator, model_class) -> None:
    """
    Make `accelerator.save_state` write the model with `save_pretrained` (so `checkpoint-{step}` loads with
    `from_pretrained`) and `load_state` read it back; optimizer, scheduler and RNG states stay with Accelerate.
    """

    def save_model_hook(models, weights, output_dir):
        for model in models:
            state_dict = None
            if weights:
                weights.pop()  # Accelerate's own copy of the weights: save_pretrained writes them instead
            else:
                # FSDP / DeepSpeed write their own shards and pass no weights: gather a full copy (every process).
                state_dict = accelerator.get_state_dict(model)
            if accelerator.is_main_process:
                accelerator.unwrap_model(model).save_pretrained(output_dir, state_dict=state_dict)

    def load_model_hook(models, input_dir):
        while models:
            model = accelerator.unwrap_model(models.pop())
            # Through from_pretrained: the saved key names may differ from the module names (checkpoint conversion).
            # Any RNG it draws is overwritten afterwards, when load_state restores the saved RNG states.
            loaded = model_class.from_pretrained(input_dir)
            model.load_state_dict(loaded.state_dict(), strict=True)

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)


__all__ = [
    "CHECKPOINT_PATTERN",
    "TRAINER_STATE_NAME",
    "TrainerState",
    "checkpoint_dir",
    "list_checkpoints",
    "prune_checkpoints",
    "register_pretrained_checkpoint_hooks",
    "remove_incomplete_checkpoints",
    "resolve_resume_checkpoint",
    "save_checkpoint",
    "write_json",
]
