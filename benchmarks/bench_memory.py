"""Peak memory of a Best-of-Many DeltaWorld training step from cached delta tokens, against K.

ViT-B predictor (`DeltaWorldConfig()`, random weights), a batch of clips of cached delta tokens (random vectors: the
memory of a step does not depend on their values), one training step = `zero_grad` + forward (score the K candidates
under `no_grad`, then the winners with gradient) + backward + AdamW update. For every K and scoring mode (all candidates
in one pass, `candidate_chunk_size=None`; and the config default, at most `candidate_chunk_size` candidate queries per
pass) a fresh process:

1. builds the model and AdamW, and runs one warm-up step at K = 1, so that gradients and optimizer states exist before
   the measurement (they are the same for every K);
2. resets the peak RSS (`/proc/self/clear_refs` <- 5 resets VmHWM), records the RSS, runs one step at K and reads VmHWM.
   Two figures: the peak RSS of the process during the step (weights, gradients and AdamW states included, like
   `torch.cuda.max_memory_allocated` on a GPU) and the peak above the RSS before the step (what the step adds).

glibc would keep freed blocks in its heap and hide later allocations from the RSS, so the workers run with
`MALLOC_MMAP_THRESHOLD_=1048576`: every block above 1 MiB is its own mapping and returns to the system when freed, and
the RSS follows what is alive. The winners (best candidate per target) of both modes are compared; they come from the
same generator seed, so they must be equal.

    cd benchmarks && ../.venv/bin/python bench_memory.py
    cd benchmarks && ../.venv/bin/python bench_memory.py --candidates 1 16 64 256 --batch-size 16 --num-frames 8

With `--device cuda` the rows also give `torch.cuda.max_memory_allocated` over the step (reset after the warm-up):
the peak of everything allocated on the GPU, and that peak above what was allocated before the step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from _common import build_model, machine_info, write_json
from bench_training import current_rss_mib, peak_rss_mib, ratio, reset_peak_rss


def training_step(model, optimizer, delta_tokens, timestamps, candidates: int, seed: int):
    optimizer.zero_grad(set_to_none=True)
    generator = torch.Generator(device=delta_tokens.device).manual_seed(seed)
    output = model(delta_tokens=delta_tokens, timestamps=timestamps, num_samples_train=candidates, generator=generator)
    output.loss.backward()
    optimizer.step()
    return output


def worker(args) -> None:
    """One (K, scoring mode) in a fresh process; prints one JSON line."""
    torch.manual_seed(0)
    model = build_model("vitb", args.device).train()
    model.config.candidate_chunk_size = None if args.chunk_size == 0 else args.chunk_size
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    delta_tokens = torch.randn(args.batch_size, args.num_frames, model.config.delta_token_size, generator=generator)
    timestamps = (torch.arange(args.num_frames, dtype=torch.float32) * 0.25).expand(args.batch_size, -1)
    delta_tokens, timestamps = delta_tokens.to(args.device), timestamps.to(args.device)
    training_step(model, optimizer, delta_tokens, timestamps, candidates=1, seed=2)  # gradients + AdamW states exist

    on_cuda = args.device.startswith("cuda")
    if on_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_before = torch.cuda.memory_allocated()
    reset_peak_rss()
    before = current_rss_mib()
    start = time.perf_counter()
    output = training_step(model, optimizer, delta_tokens, timestamps, candidates=args.worker_candidates, seed=3)
    if on_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    row = {
        "K": args.worker_candidates,
        "candidate_chunk_size": model.config.candidate_chunk_size,
        "rss_before_step_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "peak_above_before_mib": round(peak - before, 1),
        "step_s": round(seconds, 2),
        "loss": output.loss.item(),
        "best_candidate_indices": output.best_candidate_indices.tolist(),
    }
    if on_cuda:  # the GPU's own figures (the RSS then only says what the host side holds)
        peak_cuda = torch.cuda.max_memory_allocated()
        row["cuda_before_step_mib"] = round(cuda_before / 2**20, 1)
        row["cuda_peak_mib"] = round(peak_cuda / 2**20, 1)
        row["cuda_peak_above_before_mib"] = round((peak_cuda - cuda_before) / 2**20, 1)
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip (the official training clips: 8)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (adds torch.cuda's peak memory)")
    parser.add_argument("--output", default="memory", help="results/<output>.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-candidates", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from deltatok_hf import DeltaWorldConfig

    default_chunk = DeltaWorldConfig.tiny().candidate_chunk_size
    modes = {"one_pass": 0, f"passes_of_{default_chunk}": default_chunk}
    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(args.device),
        "setting": (
            f"ViT-B predictor, cached delta tokens, batch {args.batch_size} clips of {args.num_frames} frames "
            f"({args.batch_size * (args.num_frames - 1)} targets), forward + backward + AdamW, one step after a K = 1 "
            "warm-up, fresh process per row"
        ),
        "rows": [],
    }
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1048576")
    for candidates in args.candidates:
        row = {"K": candidates}
        for mode, chunk_size in modes.items():
            command = [
                sys.executable, __file__, "--worker", "--worker-candidates", str(candidates), "--chunk-size",
                str(chunk_size), "--batch-size", str(args.batch_size), "--num-frames", str(args.num_frames),
                "--device", args.device,
            ]
            print("running", " ".join(command[1:]), flush=True)
            output = subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout
            row[mode] = json.loads(output.strip().splitlines()[-1])
        first, second = (row[mode] for mode in modes)
        row["same_winners"] = first.pop("best_candidate_indices") == second.pop("best_candidate_indices")
        row["same_loss"] = first["loss"] == second["loss"]
        results["rows"].append(row)
        reference = results["rows"][0]
        for mode in modes:
            for name in ("peak_rss_mib", "peak_above_before_mib", "cuda_peak_mib", "cuda_peak_above_before_mib"):
                if name in row[mode]:
                    row[mode][f"{name}_vs_first_K"] = ratio(row[mode][name], reference[mode][name])
        write_json(args.output, results)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
