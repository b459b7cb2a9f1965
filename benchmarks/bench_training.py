"""Training-step cost: DeltaTok (with/without gradient checkpointing) and DeltaWorld Best-of-Many (on the fly vs cached).

1. DeltaTok step (forward + backward + AdamW), ViT-B/16, 256x256 pairs: step time and peak memory, each variant in its
   own subprocess; the peak RSS (VmHWM, reset after set-up) is reported above the RSS after set-up.
   The gradient of the checkpointed run is compared with the plain one (same seed, same batch).
2. DeltaWorld BoM step, ViT-B predictor, 256x256 frames, K = 16, 64, 256: from frames (backbone + encoder every step,
   "on the fly") vs from cached delta tokens (`forward(delta_tokens=...)`), same batch and K, interleaved in one run.
   Forward + backward are timed together; the AdamW update of the predictor is timed on its own and reported both
   ways, because with cached tokens it is a large part of the step.

`--bf16` runs the forward passes under `torch.autocast(dtype=torch.bfloat16)` (the weights and AdamW stay fp32). On
`--device cuda` the DeltaTok rows also report the peak CUDA memory (`torch.cuda.max_memory_allocated`) above set-up.

    python benchmarks/bench_training.py
    python benchmarks/bench_training.py --candidates 16 64 256 --batch-size 1 --num-frames 4
    python benchmarks/bench_training.py --device cuda --bf16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from _common import build_model, interleaved, machine_info, make_clip, timed, write_json
from deltatok_hf.models.deltatok.configuration_deltatok import DeltaTokConfig
from deltatok_hf.models.deltatok.modeling_deltatok import DeltaTokModel


def current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM), so set-up allocations do not mask the step's peak."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ratio(numerator, denominator):
    """`numerator / denominator` to 3 decimals; None when either is missing or the denominator is not positive."""
    return None if numerator is None or not denominator or denominator <= 0 else round(numerator / denominator, 3)


def forward_precision(args):
    """The context the forward passes run in: bf16 autocast with `--bf16`, else nothing."""
    if not args.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(args.device).type, dtype=torch.bfloat16)


def deltatok_worker(args) -> None:
    """One configuration in a fresh process; prints one JSON line."""
    torch.manual_seed(0)
    model = DeltaTokModel(DeltaTokConfig()).to(args.device)  # ViT-B/16 sizes, backbone frozen
    if args.checkpointing:
        model.activation_checkpointing_enable()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    frames, _ = make_clip(args.batch_size, 2, args.size, args.device)
    reset_peak_rss()
    baseline = current_rss_mib()
    on_cuda = args.device.startswith("cuda")
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
        cuda_baseline = torch.cuda.memory_allocated()

    def step():
        # No optimizer update: both variants see the same weights every step and their gradients can be compared.
        optimizer.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # same RoPE-augmentation draws in both variants
        with forward_precision(args):
            loss = model(frames=frames).loss
        loss.backward()
        return loss.item()

    walls, cpus = [], []
    for index in range(args.steps + 1):
        loss, wall, cpu = timed(step, args.device)
        if index:
            walls.append(wall)
            cpus.append(cpu)
    peak = peak_rss_mib()
    torch.save(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]), args.gradient_path)
    print(json.dumps({
        "checkpointing": bool(args.checkpointing),
        "gradient_checkpointing_active": any(getattr(m, "gradient_checkpointing", False) for m in model.modules()),
        "step_s": sorted(walls)[len(walls) // 2],
        "cpu_utilisation": round(sorted(cpus)[len(cpus) // 2], 2),
        "rss_after_setup_mib": round(baseline, 1),
        "peak_rss_mib": round(peak, 1),
        "peak_above_setup_mib": round(peak - baseline, 1),
        "cuda_peak_above_setup_mib": (
            round((torch.cuda.max_memory_allocated() - cuda_baseline) / 2**20, 1) if on_cuda else None
        ),
        "loss": loss,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-frames", type=int, default=4, help="frames per DeltaWorld training clip")
    parser.add_argument("--candidates", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=2, help="timed DeltaTok steps (after one warm-up)")
    parser.add_argument("--skip-deltatok", action="store_true")
    parser.add_argument("--skip-deltaworld", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="forward passes under bf16 autocast")
    parser.add_argument("--output", default="training", help="results/<output>.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--gradient-path", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return deltatok_worker(args)

    results = {"command": "python " + " ".join(sys.argv), "machine": machine_info(args.device)}
    if not args.skip_deltatok:
        rows = []
        for checkpointing in (0, 1):
            gradient_path = Path(tempfile.gettempdir()) / f"deltatok_bench_gradient_{checkpointing}.pt"
            command = [
                sys.executable, __file__, "--worker", "--checkpointing", str(checkpointing), "--size", str(args.size),
                "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--device", args.device,
                "--gradient-path", str(gradient_path), *(["--bf16"] if args.bf16 else []),
            ]
            print("running", " ".join(command[1:]))
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
        paths = [Path(tempfile.gettempdir()) / f"deltatok_bench_gradient_{i}.pt" for i in (0, 1)]
        plain, checkpointed = (torch.load(path) for path in paths)
        for path in paths:
            path.unlink()  # ~680 MB each
        results["deltatok"] = {
            "setting": f"ViT-B/16, {args.size}x{args.size}, batch {args.batch_size} pairs, forward+backward"
            + (", bf16 autocast" if args.bf16 else ""),
            "rows": rows,
            "checkpointing_step_time_ratio": round(rows[1]["step_s"] / rows[0]["step_s"], 3),
            "checkpointing_peak_memory_ratio": ratio(rows[1]["peak_above_setup_mib"], rows[0]["peak_above_setup_mib"]),
            "checkpointing_cuda_peak_memory_ratio": ratio(
                rows[1]["cuda_peak_above_setup_mib"], rows[0]["cuda_peak_above_setup_mib"]
            ),
            "gradient_max_abs_diff": (plain - checkpointed).abs().max().item(),
        }
        write_json(args.output, results)
        print(json.dumps(results["deltatok"], indent=1))

    if not args.skip_deltaworld:
        model = build_model("vitb", args.device).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        frames, timestamps = make_clip(args.batch_size, args.num_frames, args.size, args.device)
        with torch.no_grad(), forward_precision(args):
            delta_tokens = model.encode_context(frames)[0].float()  # the token cache of this clip

        def step(candidates: int, **inputs):
            def run():
                # Forward + backward only; the AdamW update (identical in both variants, ~85M predictor parameters)
                # is timed separately below, so that both "with" and "without optimizer" ratios can be reported.
                optimizer.zero_grad(set_to_none=True)
                with forward_precision(args):
                    loss = model(timestamps=timestamps, num_samples_train=candidates, **inputs).loss
                loss.backward()
                return loss.item()

            return run

        rows = []
        for index, candidates in enumerate(args.candidates):
            timing = interleaved(
                {
                    "on_the_fly": step(candidates, frames=frames),
                    "cached_tokens": step(candidates, delta_tokens=delta_tokens),
                },
                repeats=1,
                warmup=1 if index == 0 else 0,
                device=args.device,
            )
            timing.pop("outputs")
            _, optimizer_seconds, _ = timed(optimizer.step, args.device)
            fly, cached = timing["on_the_fly"]["median_s"], timing["cached_tokens"]["median_s"]
            row = {
                "K": candidates,
                "timing": timing,
                "adamw_step_s": round(optimizer_seconds, 3),
                "speedup_forward_backward_wall": round(fly / cached, 1),
                "speedup_forward_backward_cpu_s": round(
                    timing["on_the_fly"]["median_cpu_s"] / timing["cached_tokens"]["median_cpu_s"], 1
                ),
                "speedup_with_adamw_wall": round((fly + optimizer_seconds) / (cached + optimizer_seconds), 1),
            }
            rows.append(row)
            results["deltaworld"] = {
                "setting": f"ViT-B predictor, {args.size}x{args.size}, batch {args.batch_size}, {args.num_frames} frames/clip"
                + (", bf16 autocast" if args.bf16 else ""),
                "rows": rows,
            }
            write_json(args.output, results)
            print(row)


if __name__ == "__main__":
    main()
