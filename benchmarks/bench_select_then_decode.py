"""Select-then-decode on the fork world, and latent-only sampling, timed against plain decoded forecasts.

    cd benchmarks && ../.venv/bin/python bench_select_then_decode.py --model ../outputs/fork4_model --num-modes 4 \
        --fork-speed 15.5 --threads 1 --num-clips 96 --floor [--rows coverage latent sizes vitb_latent vitb_select]

1. `coverage`: on held-out `ForkWorld` clips (`--num-modes` / `--fork-speed` as the model was trained: the pipeline does
   not record them), a pipeline with an RGB decoder forecasts the first future frame with N plain draws, and with N
   chosen among `--num-candidates` futures drawn in token space by each of `--selections` (k-medoids, farthest-point)
   and decoded; all the candidates decoded give the ceiling (`--no-ceiling` skips it); `--floor` adds a diagnostic
   arm, select-then-decode with the choice replaced by "the first N" (`first_candidates_instead_of_selection`): the
   time of everything but the choice. Coverage = fraction of the branches that some decoded sample shows, read from
   its RGB pixels (`read_fork_mode`), averaged over clips. The arms run interleaved per clip (order alternating), same seed per clip; the time of an arm is the pipeline call alone (the
   clips are rendered before and the pixels read after), its CPU utilisation = process CPU / wall.
2. `latent`: 1000 futures x 3 steps with `output_type="latent"` (delta tokens only) vs a decoded 20-sample, 3-step
   forecast, interleaved; `vitb_latent`: the same with ViT-B sizes and random weights (`_common.build_model`) on random
   `--vitb-size` (256) px frames.
3. `sizes`: the time ratio of the coverage arms on fork clips rendered at each of `--sizes` (time only).
4. `mean`: how well the N kept futures' mean (`mean_future_features`, weighted by `candidate_weights`) estimates the
   mean of all the candidates decoded, against their plain mean and the mean of N plain draws (`mean_row`).
5. `vitb_select`: at ViT-B sizes, the time of N chosen among 256 (3 steps) vs N plain decoded draws (no coverage:
   random weights).

The 4-branch models come from `examples/train_demo_model.py --num_modes 4 ...` (RESULTS.md section 10); the default
`--model` is the bundled 3-branch demo. All are tiny, trained minutes on synthetic data with a random backbone: the
coverage numbers show the mechanics of the selection, not the quality of any model; ViT-B rows have random weights.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

import torch

from _common import build_model, interleaved, machine_info, make_clip, timed, write_json
from deltatok_hf import DeltaWorldPipeline
from deltatok_hf.pipelines import SELECTION_METHODS
from deltatok_hf.data import ForkWorld
from deltatok_hf.demo import fork_pipeline_inputs, fork_world_for, load_demo_pipeline, read_fork_forecast

# Held out from the demo model's training (seed 0), its card's evaluation (1000) and the demo's picture (2026).
BENCHMARK_WORLD_SEED = 3000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a saved pipeline with an RGB decoder (default: the demo's)")
    parser.add_argument("--num-clips", type=int, default=32)
    parser.add_argument("--num-modes", type=int, default=3, help="the fork world's branches, as the model was trained")
    parser.add_argument("--fork-speed", type=float, default=None, help="the fork world's disc speed, as trained")
    parser.add_argument(
        "--selections", nargs="+", default=["k_medoids", "farthest_point"], choices=SELECTION_METHODS,
        help="selection methods compared (one arm each)",
    )
    parser.add_argument("--num-samples", type=int, default=4)
    parser.add_argument("--num-candidates", type=int, default=256)
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the arm that decodes all candidates (the coverage ceiling)"
    )
    parser.add_argument(
        "--floor", action="store_true",
        help="add a diagnostic arm: select-then-decode with the choice replaced by the first --num-samples "
        "candidates (the time of everything but the choice)",
    )
    parser.add_argument("--tune-allocator", action="store_true", help="call tune_cpu_allocator() first")
    parser.add_argument("--latent-samples", type=int, default=1000)
    parser.add_argument("--decoded-samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="latent rows: timed rounds after one warm-up")
    parser.add_argument(
        "--rows", nargs="+", default=["coverage", "latent"],
        choices=("coverage", "latent", "sizes", "mean", "vitb_latent", "vitb_select"),
        help="what to measure; sizes: the time ratio of the coverage arms at several frame sizes; mean: how close the "
        "kept futures' mean comes to the mean of all the candidates; vitb_*: ViT-B sizes with random weights on random "
        "256 px frames (speed only)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="frame sizes of the sizes row")
    parser.add_argument("--size-repeats", type=int, default=30, help="sizes row: timed rounds after one warm-up")
    parser.add_argument("--vitb-repeats", type=int, default=2)
    parser.add_argument("--vitb-size", type=int, default=256, help="frame size of the vitb_* rows")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="select_then_decode", help="results/<output>.json")
    return parser.parse_args(argv)


def world_options(args) -> dict:
    return {"num_modes": args.num_modes, "speed": args.fork_speed}


def floor_arm(args) -> str:
    return f"draw_{args.num_candidates}_decode_first_{args.num_samples}"


@contextlib.contextmanager
def first_candidates_instead_of_selection():
    """
    For the `--floor` arm only: the pipeline's candidate selection replaced by "the first N candidates, equal
    weights", so that arm times everything select-then-decode does (the draw of all candidates in token space, the
    bookkeeping, decoding N) except the choice itself. Restored on exit.
    """
    from deltatok_hf.pipelines import pipeline_deltaworld

    def first(candidates, num_selected, method):
        batch_size = candidates.shape[0]
        indices = torch.arange(num_selected, device=candidates.device).expand(batch_size, -1)
        return indices, torch.full((batch_size, num_selected), 1 / num_selected, device=candidates.device)

    selection = pipeline_deltaworld.select_candidates
    pipeline_deltaworld.select_candidates = first
    try:
        yield
    finally:
        pipeline_deltaworld.select_candidates = selection


def select_arm(args, method: str) -> str:
    return f"select_{method}_{args.num_samples}_of_{args.num_candidates}"


def plain_and_selection_arms(args) -> dict[str, dict]:
    """Arm name -> pipeline options: N plain draws, then N chosen of `num_candidates` by each of `args.selections`."""
    arms = {f"plain_{args.num_samples}": dict(num_samples=args.num_samples)}
    for method in args.selections:
        arms[select_arm(args, method)] = dict(
            num_samples=args.num_samples, num_candidates=args.num_candidates, candidate_selection=method
        )
    return arms


def coverage_rows(pipe: DeltaWorldPipeline, args) -> dict:
    """Per arm: mean coverage over clips, median and total wall seconds, CPU utilisation."""
    world = fork_world_for(pipe, args.num_clips, seed=BENCHMARK_WORLD_SEED, **world_options(args))
    arms = plain_and_selection_arms(args)
    if not args.no_ceiling:
        arms[f"plain_{args.num_candidates}"] = dict(num_samples=args.num_candidates)
    if args.floor:  # select-then-decode with the choice replaced by "the first N" (a diagnostic)
        arms[floor_arm(args)] = dict(num_samples=args.num_samples, num_candidates=args.num_candidates)
    items = [world[index] for index in range(args.num_clips)]  # rendered once, outside the timer

    def forecast(index, name):
        generator = torch.Generator(device=pipe.device).manual_seed(index)
        call = lambda: pipe(**fork_pipeline_inputs(world, items[index]), generator=generator, **arms[name])  # noqa: E731
        if name != floor_arm(args):
            return call()
        with first_candidates_instead_of_selection():
            return call()

    forecast(0, f"plain_{args.num_samples}")  # warm-up (allocations, lazy imports)
    records = {name: {"coverage": [], "wall_s": [], "cpu_s": []} for name in arms}
    for index in range(args.num_clips):
        order = list(arms) if index % 2 == 0 else list(reversed(arms))
        for name in order:
            # Only the pipeline call is timed; reading the branches from the pixels is the benchmark's own work.
            output, wall, utilisation = timed(lambda: forecast(index, name), args.device)
            records[name]["coverage"].append(read_fork_forecast(world, items[index], output).coverage)
            records[name]["wall_s"].append(wall)
            records[name]["cpu_s"].append(wall * utilisation)
    rows = {}
    for name, record in records.items():
        rows[name] = {
            "mean_coverage": statistics.fmean(record["coverage"]),
            "median_wall_s": statistics.median(record["wall_s"]),
            "total_wall_s": sum(record["wall_s"]),
            "total_cpu_s": sum(record["cpu_s"]),
            "cpu_utilisation": sum(record["cpu_s"]) / sum(record["wall_s"]),
            "coverage_per_clip": record["coverage"],
        }
    return rows


def compare_calls(pipe: DeltaWorldPipeline, frames, timestamps, arms: dict[str, dict], args, repeats: int) -> dict:
    """Interleaved timing of 3-step forecasts of one clip, one pipeline call per arm (`arms`: name -> call options)."""
    step = float(timestamps[1] - timestamps[0])
    future = [float(timestamps[-1]) + step * (index + 1) for index in range(3)]
    call = lambda options: pipe(frames, timestamps=timestamps, future_timestamps=future, seed=0, **options)  # noqa: E731
    functions = {name: (lambda options=options: tuple(call(options).future_delta_tokens.shape)) for name, options in arms.items()}
    result = interleaved(functions, repeats=repeats, warmup=1, device=args.device)
    result["shapes"] = {name: list(shape) for name, shape in result.pop("outputs").items()}
    first, second = (result[name]["median_s"] for name in arms)
    result["time_ratio_first_over_second"] = first / second
    return result


def sizes_row(pipe: DeltaWorldPipeline, args) -> dict:
    """
    Time only: N plain draws vs N of `num_candidates` (the selection methods), one future frame, on a fork-world clip
    rendered at each of `args.sizes` and fed at that size (the model runs at any multiple of its patch size; more
    patches make decoding dearer while the predictor's cost per candidate stays the same). The weights do not change
    the time, so these rows say nothing about coverage at sizes the model was not trained on.
    """
    rows = {}
    for size in args.sizes:
        item = ForkWorld(1, num_context_frames=pipe.config.context_frames, size=size, fps=1 / pipe.config.context_interval)[0]
        context = pipe.config.context_frames
        frames, times, future = item["frames"][:context], item["timestamps"][:context], item["timestamps"][context:]
        call = lambda options: pipe(frames, timestamps=times, future_timestamps=future, size=size, seed=0, **options)  # noqa: E731
        arms = plain_and_selection_arms(args)
        functions = {name: (lambda options=options: call(options).future_delta_tokens.shape) for name, options in arms.items()}
        result = interleaved(functions, repeats=args.size_repeats, warmup=1, device=args.device)
        result.pop("outputs")
        plain = result[f"plain_{args.num_samples}"]
        result["selected_over_plain"] = {
            method: {
                "time_ratio": result[select_arm(args, method)]["median_s"] / plain["median_s"],
                "cpu_time_ratio": result[select_arm(args, method)]["median_cpu_s"] / plain["median_cpu_s"],
            }
            for method in args.selections
        }
        rows[str(size)] = result
    return rows


def mean_row(pipe: DeltaWorldPipeline, args) -> dict:
    """
    How well the mean of the N kept futures estimates the mean of all `num_candidates` drawn (the forecast one would
    get by decoding every candidate): per held-out clip, all candidates decoded once (`num_samples=num_candidates`,
    same seed: the same draws), then per selection method the relative L2 error of `mean_future_features` (weighted
    by `candidate_weights`) and of the plain mean of the same N, and of the first N draws (plain sampling).
    """
    world = fork_world_for(pipe, args.num_clips, seed=BENCHMARK_WORLD_SEED, **world_options(args))
    errors = {"first_n_draws": []}
    errors.update({f"{method}_{kind}": [] for method in args.selections for kind in ("weighted", "unweighted")})
    relative = lambda estimate, target: float((estimate - target).norm() / target.norm())  # noqa: E731
    for index in range(args.num_clips):
        inputs = fork_pipeline_inputs(world, world[index])
        everything = pipe(**inputs, num_samples=args.num_candidates, seed=index)
        target = everything.future_features.mean(0)
        errors["first_n_draws"].append(relative(everything.future_features[: args.num_samples].mean(0), target))
        for method in args.selections:
            kept = pipe(
                **inputs, num_samples=args.num_samples, num_candidates=args.num_candidates, candidate_selection=method,
                seed=index,
            )  # fmt: skip
            if not torch.equal(kept.future_delta_tokens, everything.future_delta_tokens[kept.candidate_indices]):
                raise RuntimeError("The kept futures are not among the candidates decoded at once (same seed).")
            errors[f"{method}_weighted"].append(relative(kept.mean_future_features, target))
            errors[f"{method}_unweighted"].append(relative(kept.future_features.mean(0), target))
    rows = {name: {"mean_relative_error": statistics.fmean(values), "per_clip": values} for name, values in errors.items()}
    for method in args.selections:
        weighted, unweighted = errors[f"{method}_weighted"], errors[f"{method}_unweighted"]
        rows[f"{method}_weighted"]["clips_closer_than_unweighted"] = sum(w < u for w, u in zip(weighted, unweighted))
    return rows


def latent_row(pipe: DeltaWorldPipeline, frames, timestamps, args, repeats: int) -> dict:
    """`latent_samples` futures x 3 steps as delta tokens vs a decoded `decoded_samples`-sample 3-step forecast."""
    arms = {
        f"latent_{args.latent_samples}x3": dict(num_samples=args.latent_samples, output_type="latent"),
        f"decoded_{args.decoded_samples}x3": dict(num_samples=args.decoded_samples),
    }
    return compare_calls(pipe, frames, timestamps, arms, args, repeats)


def select_row(pipe: DeltaWorldPipeline, frames, timestamps, args, repeats: int) -> dict:
    """Time only: `num_samples` chosen among `num_candidates` (3 steps) vs `num_samples` plain decoded draws."""
    arms = {
        f"select_{args.num_samples}_of_{args.num_candidates}x3": dict(
            num_samples=args.num_samples, num_candidates=args.num_candidates
        ),
        f"plain_{args.num_samples}x3": dict(num_samples=args.num_samples),
    }
    return compare_calls(pipe, frames, timestamps, arms, args, repeats)


def main(argv=None):
    args = parse_args(argv)
    if args.tune_allocator:
        from deltatok_hf import tune_cpu_allocator

        args.tune_allocator = tune_cpu_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    demo = load_demo_pipeline() if args.model is None else load_demo_pipeline(args.model)
    if demo.random_weights:
        raise SystemExit("No trained demo pipeline found; train it with examples/train_demo_model.py first.")
    pipe = demo.pipeline.to(args.device)
    pipe.set_progress_bar_config(disable=True)
    payload = {"machine": machine_info(args.device), "model": demo.source, "settings": vars(args)}

    if "coverage" in args.rows:
        payload["coverage"] = coverage_rows(pipe, args)
        plain = payload["coverage"][f"plain_{args.num_samples}"]
        payload["selected_over_plain"] = {}
        for method in args.selections:
            selected = payload["coverage"][select_arm(args, method)]
            payload["selected_over_plain"][method] = {
                "coverage_ratio": selected["mean_coverage"] / max(plain["mean_coverage"], 1e-9),
                "time_ratio": selected["total_wall_s"] / plain["total_wall_s"],
                "cpu_time_ratio": selected["total_cpu_s"] / plain["total_cpu_s"],
            }
        if args.floor:
            floor = payload["coverage"][floor_arm(args)]
            payload["floor_over_plain"] = {
                "time_ratio": floor["total_wall_s"] / plain["total_wall_s"],
                "cpu_time_ratio": floor["total_cpu_s"] / plain["total_cpu_s"],
            }
        write_json(args.output, payload)
        for name, row in payload["coverage"].items():
            print(
                f"{name}: coverage {row['mean_coverage']:.3f}, median {row['median_wall_s'] * 1000:.1f} ms/clip, "
                f"CPU util. {row['cpu_utilisation']:.2f}"
            )
        if args.floor:
            print(f"{floor_arm(args)} / plain (no choice): time x{payload['floor_over_plain']['time_ratio']:.2f}")
        for method, ratios in payload["selected_over_plain"].items():
            print(
                f"{method} / plain: coverage x{ratios['coverage_ratio']:.2f} (target >= 1.3), "
                f"time x{ratios['time_ratio']:.2f} (target <= 1.1), CPU time x{ratios['cpu_time_ratio']:.2f}"
            )
    if "sizes" in args.rows:
        payload["sizes"] = sizes_row(pipe, args)
        write_json(args.output, payload)
        for size, row in payload["sizes"].items():
            ratios = ", ".join(f"{method} x{r['time_ratio']:.2f} (CPU x{r['cpu_time_ratio']:.2f})" for method, r in row["selected_over_plain"].items())
            print(f"{size} px: plain {row[f'plain_{args.num_samples}']['median_s'] * 1000:.1f} ms; {ratios}")
    if "mean" in args.rows:
        payload["mean"] = mean_row(pipe, args)
        write_json(args.output, payload)
        for name, row in payload["mean"].items():
            closer = row.get("clips_closer_than_unweighted")
            note = "" if closer is None else f" (closer than the unweighted mean on {closer} of {args.num_clips} clips)"
            print(f"mean of {name}: relative error to the mean of all {args.num_candidates} {row['mean_relative_error']:.4f}{note}")
    if "latent" in args.rows:
        world = fork_world_for(pipe, 1, seed=BENCHMARK_WORLD_SEED, **world_options(args))
        item = world[0]
        context, times = item["frames"][: world.num_context_frames], item["timestamps"][: world.num_context_frames]
        payload["latent_demo"] = latent_row(pipe, context, times, args, args.repeats)
        write_json(args.output, payload)
        print(f"demo model: latent / decoded time x{payload['latent_demo']['time_ratio_first_over_second']:.2f} (target <= 1)")
    if {"vitb_latent", "vitb_select"} & set(args.rows):
        vitb = DeltaWorldPipeline(world_model=build_model("vitb", args.device), size=args.vitb_size)
        vitb.set_progress_bar_config(disable=True)
        frames, timestamps = make_clip(1, 4, args.vitb_size, args.device)
        for row, measure in (("vitb_latent", latent_row), ("vitb_select", select_row)):
            if row in args.rows:
                payload[row] = measure(vitb, frames[0], timestamps[0], args, args.vitb_repeats)
                write_json(args.output, payload)
                print(f"ViT-B (random) {row}: time ratio x{payload[row]['time_ratio_first_over_second']:.2f}")
    return payload


if __name__ == "__main__":
    main()
