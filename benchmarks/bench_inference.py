"""Forecast speed: `DeltaWorldForForecasting.generate` vs the straightforward reference rollout, same run, interleaved.

ViT-B/16-sized models (`DeltaWorldConfig()`, random weights), 4 context frames, 3-step rollout, 20 samples. For every
(size, batch) the callables below run interleaved (warm-up rounds first, then `--repeats` timed rounds):

* `reference_fp32`: benchmarks/reference_rollout.py in fp32 (the baseline of every ratio);
* `ours_fp32`: `generate` in fp32; outputs must match the reference within 1e-5;
* `ours_bf16`: `generate` on a `model.to(torch.bfloat16)` copy; its error vs fp32 is reported as relative RMS;
* `reference_bf16` (`--reference-bf16`): the reference on the bf16 copy, for a like-for-like bf16 ratio;
* `ours_autocast` (`--autocast`): `generate` of the fp32 model under `torch.autocast(bfloat16)`;
* `ours_fp32_compiled` / `ours_bf16_compiled` (`--compile`): `generate` after `compile_for_inference` (copies of the
  models); the first call, which compiles, is timed separately and reported as `compile_s`.

`--tune-allocator` calls `tune_cpu_allocator()` before anything else: freed memory is then reused instead of being
page-faulted again (process-wide, so it applies to the reference as much as to ours).

    python benchmarks/bench_inference.py --sizes 256 --batch-sizes 1 --repeats 3
    python benchmarks/bench_inference.py --sizes 512 --batch-sizes 1 --repeats 1 --no-bf16
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
from tqdm.auto import tqdm

from _common import build_model, interleaved, machine_info, make_clip, make_noise, max_abs_diff, relative_rms, write_json
from reference_rollout import ours, reference_rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["tiny", "vitb"], default="vitb")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--num-context", type=int, default=4)
    parser.add_argument("--num-future", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 model")
    parser.add_argument("--reference-bf16", action="store_true", help="also time the reference on the bf16 model")
    parser.add_argument("--autocast", action="store_true", help="also time generate under bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="also time generate after compile_for_inference")
    parser.add_argument("--tune-allocator", action="store_true", help="call tune_cpu_allocator() first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="inference")
    args = parser.parse_args()
    if args.tune_allocator:
        from deltatok_hf.inference import tune_cpu_allocator

        args.tune_allocator = tune_cpu_allocator()

    model = build_model(args.preset, args.device)
    model_bf16 = None if args.no_bf16 else copy.deepcopy(model).to(torch.bfloat16)
    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(args.device),
        "allocator_tuned": args.tune_allocator,
        "rows": [],
    }
    num_frames = args.num_context + args.num_future
    for size in args.sizes:
        for batch_size in args.batch_sizes:
            frames, timestamps = make_clip(batch_size, num_frames, size, args.device)
            noise = make_noise(model, batch_size, args.num_samples, args.num_future, args.device)
            context = args.num_context
            functions = {
                "reference_fp32": lambda: reference_rollout(model, frames, timestamps, context, noise),
                "ours_fp32": lambda: ours(model, frames, timestamps, context, noise),
            }
            if model_bf16 is not None:
                functions["ours_bf16"] = lambda: ours(model_bf16, frames, timestamps, context, noise)
                if args.reference_bf16:
                    functions["reference_bf16"] = lambda: reference_rollout(model_bf16, frames, timestamps, context, noise)
            if args.autocast:

                def autocast_run():
                    with torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16):
                        return ours(model, frames, timestamps, context, noise)

                functions["ours_autocast"] = autocast_run
            compile_seconds = {}
            if args.compile:
                import time

                from deltatok_hf.inference import compile_for_inference

                compiled = {"ours_fp32_compiled": copy.deepcopy(model)}
                if model_bf16 is not None:
                    compiled["ours_bf16_compiled"] = copy.deepcopy(model_bf16)
                for name, compiled_model in compiled.items():
                    compile_for_inference(compiled_model)
                    started = time.perf_counter()
                    ours(compiled_model, frames, timestamps, context, noise)  # compiles every block shape
                    compile_seconds[name] = round(time.perf_counter() - started, 2)
                    functions[name] = lambda m=compiled_model: ours(m, frames, timestamps, context, noise)
            print(f"size {size}, batch {batch_size}: {list(functions)} x ({args.warmup} warm-up + {args.repeats})")
            timing = interleaved(functions, args.repeats, args.warmup, args.device)
            outputs = timing.pop("outputs")
            reference_features, reference_tokens = outputs["reference_fp32"]
            base = timing["reference_fp32"]["median_s"]
            row = {"size": size, "batch_size": batch_size, "num_samples": args.num_samples, "timing": timing}
            if compile_seconds:
                row["compile_s"] = compile_seconds
            row["ratio_vs_reference_fp32"] = {name: round(t["median_s"] / base, 3) for name, t in timing.items()}
            base_cpu = timing["reference_fp32"]["median_cpu_s"]
            row["cpu_seconds_ratio_vs_reference_fp32"] = {
                name: round(t["median_cpu_s"] / base_cpu, 3) for name, t in timing.items()
            }
            row["fp32_max_abs_diff_features"] = max_abs_diff(outputs["ours_fp32"][0], reference_features)
            row["fp32_max_abs_diff_tokens"] = max_abs_diff(outputs["ours_fp32"][1], reference_tokens)
            if "ours_fp32_compiled" in outputs:
                row["fp32_compiled_max_abs_diff_features"] = max_abs_diff(outputs["ours_fp32_compiled"][0], reference_features)
            for name in ("ours_bf16", "reference_bf16", "ours_autocast", "ours_bf16_compiled"):
                if name in outputs:
                    row[f"{name}_relative_rms_features_vs_fp32"] = relative_rms(outputs[name][0], reference_features)
                    row[f"{name}_relative_rms_tokens_vs_fp32"] = relative_rms(outputs[name][1], reference_tokens)
            if "reference_bf16" in timing:
                row["ours_bf16_vs_reference_bf16"] = round(
                    timing["ours_bf16"]["median_s"] / timing["reference_bf16"]["median_s"], 3
                )
            results["rows"].append(row)
            path = write_json(args.output, results)
            summary = {k: v for k, v in row.items() if k != "timing"}
            tqdm.write(f"{summary}\n  -> {path}")
            del outputs


if __name__ == "__main__":
    main()
