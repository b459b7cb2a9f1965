"""The paper's ablation ladder (`examples/ablation/`): the names of its four rungs, random-weight models of each at two
sizes, and the peak memory of one training step of a rung, measured in a fresh process.

Rungs, in ladder order: `dinoworld` (step 0, DINO-world with one learned query), `dinoworld_bom` (step 1, noise
queries and Best-of-Many on patches), `frame_tokens` (DeltaWorld on frame tokens) and `delta_tokens` (DeltaWorld on
delta tokens). The memory measurement uses random weights and random inputs: it measures memory, not quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNGS = ("dinoworld", "dinoworld_bom", "frame_tokens", "delta_tokens")
MEMORY_SIZES = ("tiny", "mid")

# `python -c` program of the fresh process: one spec (JSON, argv[1]) in, one JSON line out.
_WORKER_PROGRAM = (
    "import json, sys\n"
    "from deltatok_hf.training.ablation import measure_training_step\n"
    "print(json.dumps(measure_training_step(json.loads(sys.argv[1]))))\n"
)


def _status_bytes(field: str) -> int:
    """A `kB` field of /proc/self/status (`VmRSS`: resident now, `VmHWM`: its peak), in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} field (Linux only).")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current resident set (Linux >= 4.0). `ru_maxrss` is no substitute:
    # it keeps the parent's peak across fork and exec.
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def build_memory_rung(rung: str, sizes: str, num_candidates: int | None = None, chunk: int | None | str = "default"):
    """
    A random-weight model of `rung` at `sizes` and the side of its patch grid. `tiny`: the tiny reference configs
    (4 x 4 patches). `mid`: a ViT-B-wide feature space (768 channels; the backbone is never run on these inputs) and a
    6-block, 384-wide predictor with the ViT-B head split, on a 16 x 16 grid (256 x 256 frames). `num_candidates`
    overrides the Best-of-Many K; `chunk` DINO-world's `candidate_chunk_size` (`"default"`: the config's).
    """
    from transformers import DINOv3ViTConfig

    from ..models import DeltaTokConfig, DeltaWorldConfig, DeltaWorldForForecasting, DinoWorldConfig, DinoWorldForForecasting

    if rung not in RUNGS:
        raise ValueError(f"rung must be one of {RUNGS}, got {rung!r}.")
    if sizes not in MEMORY_SIZES:
        raise ValueError(f"sizes must be one of {MEMORY_SIZES}, got {sizes!r}.")
    dino_kwargs = {"use_best_of_many": rung == "dinoworld_bom"}
    if num_candidates is not None:
        dino_kwargs["num_samples_train"] = num_candidates
    if chunk != "default":
        dino_kwargs["candidate_chunk_size"] = chunk
    world_kwargs = {} if num_candidates is None else {"num_samples_train": num_candidates}
    use_delta = rung == "delta_tokens"
    if sizes == "tiny":
        if rung.startswith("dinoworld"):
            return DinoWorldForForecasting(DinoWorldConfig.tiny(**dino_kwargs)), 4
        config = DeltaWorldConfig.tiny(tokenizer_kwargs={"use_delta": use_delta}, **world_kwargs)
        return DeltaWorldForForecasting(config), 4
    backbone = DINOv3ViTConfig(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=1, num_attention_heads=12, num_register_tokens=4,
        patch_size=16,
    )  # fmt: skip
    predictor = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 6}
    if rung.startswith("dinoworld"):
        return DinoWorldForForecasting(DinoWorldConfig(backbone_config=backbone, **predictor, **dino_kwargs)), 16
    tokenizer = DeltaTokConfig(backbone_config=backbone, num_encoder_layers=1, num_decoder_layers=1, use_delta=use_delta)
    return DeltaWorldForForecasting(DeltaWorldConfig(tokenizer_config=tokenizer, **predictor, **world_kwargs)), 16


def measure_training_step(spec: dict) -> dict:
    """
    One training step (forward + backward) of `build_memory_rung(spec["rung"], spec["sizes"], ...)` in this process,
    from precomputed random inputs: backbone features for DINO-world, delta / frame tokens for DeltaWorld (the frozen
    backbone and tokenizer would cost every rung the same, or be cached). Optional keys of `spec`: `num_candidates`,
    `chunk`, `threads` (1), `num_frames` (5), `batch_size` (1).

    The peak is the growth of the resident set during the step, after a small warm-up step: the peak resident set
    (`VmHWM`, reset just before the step) minus the resident set before it. Meaningful only in a fresh process (see
    `peak_training_memory`). Returns `{"peak_growth_bytes": int, "step_seconds": float}`.
    """
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(spec.get("threads", 1))
    model, grid = build_memory_rung(spec["rung"], spec["sizes"], spec.get("num_candidates"), spec.get("chunk", "default"))
    model.train()
    num_frames = spec.get("num_frames", 5)
    timestamps = torch.arange(num_frames, dtype=torch.float32)[None] * 0.1  # (1, T)
    batch_size = spec.get("batch_size", 1)
    if spec["rung"].startswith("dinoworld"):
        inputs = {"features": torch.randn(batch_size, num_frames, grid * grid, model.config.feature_size)}
    else:
        inputs = {"delta_tokens": torch.randn(batch_size, num_frames, model.config.delta_token_size)}
    # A warm-up step on two frames of one clip first: one-time allocations (kernel setup, allocator pools) would
    # otherwise count as the step's; its own peak is below the measured step's.
    warm_up = {name: value[:1, :2] for name, value in inputs.items()}
    model(timestamps=timestamps[:, :2], **warm_up).loss.backward()
    model.zero_grad(set_to_none=True)
    _reset_peak()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    model(timestamps=timestamps.expand(batch_size, -1), **inputs).loss.backward()
    seconds = time.perf_counter() - start
    return {"peak_growth_bytes": _status_bytes("VmHWM") - before, "step_seconds": seconds}


def peak_training_memory(spec: dict, repeats: int = 1) -> dict:
    """
    `measure_training_step(spec)` in `repeats` fresh Python processes (this package, whatever the working directory);
    the run with the smallest peak (the least noise) is returned.
    """
    if spec.get("rung") not in RUNGS:
        raise ValueError(f"spec['rung'] must be one of {RUNGS}, got {spec.get('rung')!r}.")
    if spec.get("sizes") not in MEMORY_SIZES:
        raise ValueError(f"spec['sizes'] must be one of {MEMORY_SIZES}, got {spec.get('sizes')!r}.")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    # The child imports the same copy of deltatok_hf as this process, installed or not.
    source_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (source_root, os.environ.get("PYTHONPATH"))))}
    runs = []
    for _ in range(repeats):
        command = [sys.executable, "-c", _WORKER_PROGRAM, json.dumps(spec)]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"The memory worker for {spec} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda run: run["peak_growth_bytes"])


__all__ = ["MEMORY_SIZES", "RUNGS", "build_memory_rung", "measure_training_step", "peak_training_memory"]
