"""Shared helpers of the benchmark scripts: model and input construction, interleaved timing, machine description.

Every speed figure is a ratio against a reference measured in the same process, interleaved (ref, ours, ref, ours, ...)
so that load from other processes on the machine hits both sides alike (DESIGN.md §6-7).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch

from deltatok_hf.models.deltaworld.configuration_deltaworld import DeltaWorldConfig
from deltatok_hf.models.deltaworld.modeling_deltaworld import DeltaWorldForForecasting

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def build_model(preset: str = "vitb", device: str = "cpu", seed: int = 0) -> DeltaWorldForForecasting:
    """A DeltaWorld with random weights; `vitb` is `DeltaWorldConfig()` (the released sizes), `tiny` the test preset."""
    torch.manual_seed(seed)
    config = DeltaWorldConfig() if preset == "vitb" else DeltaWorldConfig.tiny()
    model = DeltaWorldForForecasting(config).eval().to(device)
    # The official init (1e-5 LayerScales) makes every residual branch negligible, so outputs would hardly depend on
    # the computation being compared. Raise the LayerScales so that a wrong path shows up in the max-abs-diff.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("lambda1"):
                parameter.uniform_(0.2, 1.0)
    return model


def make_clip(batch_size: int, num_frames: int, size: int, device: str = "cpu", seed: int = 0):
    """Random RGB frames `(batch, frames, 3, size, size)` in 0..255 and timestamps at 4 fps."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (batch_size, num_frames, 3, size, size), generator=generator, dtype=torch.uint8)
    timestamps = (torch.arange(num_frames, dtype=torch.float32) * 0.25).expand(batch_size, -1).contiguous()
    return frames.to(device), timestamps.to(device)


def make_noise(model, batch_size: int, num_samples: int, num_steps: int, device: str = "cpu", seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch_size, num_samples, num_steps, model.config.hidden_size, generator=generator)
    return (noise * model.config.noise_std).to(device)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(function: Callable, device: str = "cpu"):
    """Run once; return `(result, wall seconds, cpu utilisation = process CPU time / wall time)`."""
    synchronize(device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = function()
    synchronize(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return result, wall, cpu / wall


def interleaved(functions: dict[str, Callable], repeats: int, warmup: int = 1, device: str = "cpu") -> dict:
    """
    Time several callables interleaved (a, b, a, b, ...) after `warmup` rounds; returns per name the median wall time,
    every wall time, the median CPU utilisation and the median process CPU seconds. The first round's results are returned under `"outputs"`.
    """
    outputs = {}
    walls, utilisation, cpu_seconds = ({name: [] for name in functions} for _ in range(3))
    for round_index in range(warmup + repeats):
        for name, function in functions.items():
            result, wall, cpu = timed(function, device)
            if round_index == 0:
                outputs[name] = result
            if round_index >= warmup:
                walls[name].append(wall)
                utilisation[name].append(cpu)
                cpu_seconds[name].append(cpu * wall)
            del result
    return {
        name: {
            "median_s": statistics.median(walls[name]),
            "runs_s": [round(w, 3) for w in walls[name]],
            "cpu_utilisation": round(statistics.median(utilisation[name]), 2),
            # Process CPU seconds: less sensitive than wall time to other jobs on the machine (not immune: shared caches).
            "median_cpu_s": statistics.median(cpu_seconds[name]),
        }
        for name in functions
    } | {"outputs": outputs}


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def relative_rms(a: torch.Tensor, reference: torch.Tensor) -> float:
    a, reference = a.double(), reference.double()
    return ((a - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt()).item()


def machine_info(device: str = "cpu") -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Flags"):
                value = value.strip()
                if key.strip() == "Flags":
                    value = " ".join(f for f in value.split() if f.startswith(("avx512_bf16", "amx", "avx512f")))
                info[key.strip()] = value
    except OSError:
        pass
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    info["load_average"] = os.getloadavg()
    return info


def write_json(name: str, payload: dict) -> Path:
    """Write (or overwrite) `benchmarks/results/<name>.json`; called after every measured row."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
