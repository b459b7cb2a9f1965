"""Time per forecast (`generate`, 3-step rollout) vs the number of samples and vs the context length.

Each figure is also given as a ratio to the first point of its sweep, measured in the same run. Writes
`benchmarks/results/scaling.json`, a Markdown table on stdout and `benchmarks/results/scaling.png` when matplotlib is
installed (it is not a dependency of the package: `pip install matplotlib`).

    python benchmarks/bench_scaling.py --size 128 --samples 1 4 16 64 256 --contexts 1 2 4 8
"""

from __future__ import annotations

import argparse
import sys

import torch
from tqdm.auto import tqdm

from _common import RESULTS_DIR, build_model, machine_info, make_clip, make_noise, timed, write_json
from reference_rollout import ours


def measure(model, batch_size, num_context, num_future, num_samples, size, repeats, device, warmup: int = 0) -> dict:
    frames, timestamps = make_clip(batch_size, num_context + num_future, size, device)
    noise = make_noise(model, batch_size, num_samples, num_future, device)
    walls, utilisation = [], []
    for index in range(warmup + repeats):
        _, wall, cpu = timed(lambda: ours(model, frames, timestamps, num_context, noise), device)
        if index >= warmup:
            walls.append(wall)
            utilisation.append(cpu)
    return {"median_s": sorted(walls)[len(walls) // 2], "cpu_utilisation": round(sorted(utilisation)[len(utilisation) // 2], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["tiny", "vitb"], default="vitb")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-future", type=int, default=3)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--contexts", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--num-context", type=int, default=4, help="context length of the sample sweep")
    parser.add_argument("--num-samples", type=int, default=20, help="samples of the context sweep")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = build_model(args.preset, args.device)
    results = {"command": "python " + " ".join(sys.argv), "machine": machine_info(args.device), "samples": [], "contexts": []}
    with torch.no_grad():
        for index, num_samples in enumerate(tqdm(args.samples, desc="samples")):
            # One warm-up call before the first point (fills the black-frame cache, first-call allocations).
            row = {"num_samples": num_samples} | measure(
                model, args.batch_size, args.num_context, args.num_future, num_samples, args.size, args.repeats,
                args.device, warmup=1 if index == 0 else 0,
            )
            results["samples"].append(row)
            write_json("scaling", results)
        for num_context in tqdm(args.contexts, desc="context"):
            row = {"num_context": num_context} | measure(
                model, args.batch_size, num_context, args.num_future, args.num_samples, args.size, args.repeats, args.device
            )
            results["contexts"].append(row)
            write_json("scaling", results)
    for sweep, key in (("samples", "num_samples"), ("contexts", "num_context")):
        first = results[sweep][0]["median_s"]
        for row in results[sweep]:
            row["ratio_to_first"] = round(row["median_s"] / first, 2)
    write_json("scaling", results)

    print(f"| samples (context {args.num_context}) | s/forecast | × first | CPU util |\n|---|---|---|---|")
    for row in results["samples"]:
        print(f"| {row['num_samples']} | {row['median_s']:.2f} | {row['ratio_to_first']} | {row['cpu_utilisation']} |")
    print(f"\n| context frames ({args.num_samples} samples) | s/forecast | × first | CPU util |\n|---|---|---|---|")
    for row in results["contexts"]:
        print(f"| {row['num_context']} | {row['median_s']:.2f} | {row['ratio_to_first']} | {row['cpu_utilisation']} |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.loglog([r["num_samples"] for r in results["samples"]], [r["median_s"] for r in results["samples"]], "o-")
    left.set(xlabel="samples", ylabel="seconds per forecast", title=f"context {args.num_context}, {args.size}px")
    right.plot([r["num_context"] for r in results["contexts"]], [r["median_s"] for r in results["contexts"]], "o-")
    right.set(xlabel="context frames", ylabel="seconds per forecast", title=f"{args.num_samples} samples, {args.size}px")
    figure.tight_layout()
    figure.savefig(RESULTS_DIR / "scaling.png", dpi=120)
    print(f"plot -> {RESULTS_DIR / 'scaling.png'}")


if __name__ == "__main__":
    main()
