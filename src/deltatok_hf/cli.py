"""The `deltatok-hf` command.

    deltatok-hf forecast VIDEO --model PATH_OR_ID [--num-samples 20 --future 3 --out DIR ...]
    deltatok-hf demo [--out DIR]
    deltatok-hf convert --deltatok PATH --deltaworld PATH --weights PATH --output DIR [--preset vitb|tiny]
    deltatok-hf evaluate --model PATH_OR_ID --dataset vspw|cityscapes|kitti|videos|synthetic --output-dir DIR [...]
    deltatok-hf train-deltatok --train_data DIR_OR_ID --output_dir DIR [--model_config tiny|vitb ...]
    deltatok-hf train-deltaworld --train_data DIR_OR_ID | --token_cache DIR --output_dir DIR [...]
    deltatok-hf cache-tokens --train_data DIR_OR_ID --tokenizer DIR_OR_ID --output_dir DIR [...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# `deltatok_hf.pipelines.SELECTION_METHODS`, spelled out so that `--help` does not import diffusers (a test keeps them equal).
SELECTION_CHOICES = ("k_medoids", "farthest_point")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_forecast_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    # Options left unset are not passed on: their defaults are the pipeline's and the model's (one place each).
    parser.add_argument("--num-samples", type=_positive_int, default=None,
                        help="sampled futures (default: the model's num_samples_eval; 1 for a deterministic model)")
    parser.add_argument("--future", type=_positive_int, default=None, help="future frames to forecast (default 3)")
    parser.add_argument("--context-frames", type=_positive_int, default=None,
                        help="context frames read from the video (default: the pipeline's, 4)")
    parser.add_argument("--interval", type=_positive_float, default=None,
                        help="seconds between context frames; the future keeps their spacing (default: the pipeline's, 0.2)")
    parser.add_argument("--start", type=float, default=None,
                        help="time of the first context frame in seconds (default: the context ends on the last frame); "
                        "when the video goes on, the real future is read and scored")
    parser.add_argument("--candidates", type=_positive_int, default=None,
                        help="draw this many futures in token space and decode --num-samples of them, chosen for diversity")
    parser.add_argument("--selection", choices=SELECTION_CHOICES, default="k_medoids",
                        help="how --candidates are chosen: k_medoids (typical futures of different groups, default) or "
                        "farthest_point (the most spread out)")
    parser.add_argument("--out", default=default_out, help=f"output directory (default {default_out})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise queries (default 0)")
    parser.add_argument("--size", type=_positive_int, default=None, help="frame size (default: the pipeline's, 256)")
    parser.add_argument("--resize-mode", choices=("square_crops", "resize_square", "none"), default=None,
                        help="how frames are brought to the model's size (default: the pipeline's, square_crops)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="model precision")
    parser.add_argument("--max-samples-shown", type=_positive_int, default=4, help="samples drawn in the picture")
    parser.add_argument("--gif", action="store_true",
                        help="also write forecast.gif (one per crop; the demo also fork.gif), with diffusers' export_to_gif")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltatok-hf",
        description="DeltaTok / DeltaWorld world models: forecast, demo, convert, evaluate, and training "
        "(train-deltatok, train-deltaworld, train-dinoworld, train-rgb-decoder, cache-tokens).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    forecast = commands.add_parser("forecast", help="sample futures of a video and write forecast.png / .json")
    forecast.add_argument("video", help="video file")
    forecast.add_argument("--model", required=True, help="local directory or Hub id of a DeltaWorld model")
    _add_forecast_arguments(forecast, default_out="forecast_output")

    demo = commands.add_parser(
        "demo", help="the bundled demo model: sampled futures that fork (fork.png), then the bundled city clip"
    )
    _add_forecast_arguments(demo, default_out="deltatok_demo")

    convert = commands.add_parser("convert", help="convert official checkpoints to the Hugging Face format")
    convert.add_argument("--deltatok", help="official DeltaTok checkpoint (e.g. deltatok-kinetics/pytorch_model.bin)")
    convert.add_argument("--deltaworld", help="official DeltaWorld checkpoint (e.g. deltaworld-kinetics/pytorch_model.bin)")
    convert.add_argument("--weights", help="a whole official DeltaWorld state dict (every key, backbone included)")
    convert.add_argument("--head", help="official task-head checkpoint (bn.* and head.* keys), converted on its own")
    convert.add_argument(
        "--head-kind", choices=("segmentation", "depth"), default="segmentation", help="kind of --head (default segmentation)"
    )
    convert.add_argument(
        "--dinoworld", help="official DINO-world state dict (backbone.backbone.*, predictor.*, q_embed.weight), on its own"
    )
    convert.add_argument("--rgb-head", help="official RGB head checkpoint (rgb-head-imagenet), converted on its own")
    convert.add_argument(
        "--rgb-feature-norm",
        help="with --rgb-head: where the backbone's final LayerNorm comes from (DINOv3 / DeltaTok / DeltaWorld "
        "directory or Hub id, or a state-dict file holding the backbone)",
    )
    convert.add_argument("--output", required=True, help="output directory")
    convert.add_argument("--preset", choices=("vitb", "tiny"), default="vitb", help="model sizes (default vitb)")
    _add_evaluate_command(commands)
    _add_training_commands(commands)
    return parser


# ----------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------


def _add_evaluate_command(commands) -> None:
    """`deltatok-hf evaluate`: the options of `examples/evaluate_forecasting.py`, built from the same config dataclass
    (so its defaults and checks are the config's, and nothing is passed for an option the user did not set)."""
    from .evaluation.configuration import ForecastEvaluationConfig, config_argument_parser  # noqa: PLC0415

    options = config_argument_parser(ForecastEvaluationConfig, add_help=False)
    commands.add_parser(
        "evaluate",
        parents=[options],
        formatter_class=options.formatter_class,
        help="score forecasts on VSPW / Cityscapes / KITTI, a folder of videos or synthetic clips",
        description="The forecasting benchmark of examples/evaluate_forecasting.py (the same code); writes "
        "results.json and results.md into --output-dir.",
    )


def _evaluate_command(args: argparse.Namespace) -> int:
    from .evaluation import ForecastEvaluationConfig, evaluate_forecasting  # noqa: PLC0415

    config = ForecastEvaluationConfig.from_namespace(args)
    report = evaluate_forecasting(config)
    output_dir = Path(config.output_dir)
    print(f"wrote {output_dir / 'results.json'} and {output_dir / 'results.md'} ({report['num_windows']} windows)")
    return 0


# ----------------------------------------------------------------------------------------------
# forecast / demo
# ----------------------------------------------------------------------------------------------


def _feature_errors(output) -> dict:
    """Per-step errors of the forecast against the real future features (MSE over patches and channels)."""
    truth = output.ground_truth_features.float()  # (F, N, D)
    samples = output.future_features.float()  # (S, F, N, D)
    per_sample = (samples - truth).pow(2).mean((-1, -2))  # (S, F)
    mean_error = (output.mean_future_features.float() - truth).pow(2).mean((-1, -2))  # (F,)
    chosen_on_last = int(per_sample[:, -1].argmin())
    return {
        "best_of_n_mse_per_step": per_sample.min(0).values.tolist(),
        "best_of_n_sample_per_step": per_sample.argmin(0).tolist(),
        "best_on_last_step_mse_per_step": per_sample[chosen_on_last].tolist(),
        "best_on_last_step_sample": chosen_on_last,
        "mean_prediction_mse_per_step": mean_error.tolist(),
        "average_sample_mse_per_step": per_sample.mean(0).tolist(),
        "note": "best_of_n picks the closest sample per step (oracle); best_on_last_step picks one sample by its "
        "last-step error (the official evaluation's choice).",
    }


def _view_summary(output) -> dict:
    samples = output.future_features.float()
    summary = {
        "crop_box_top_left_height_width": list(output.crop_box) if output.crop_box is not None else None,
        "grid_size": list(output.grid_size),
        "shapes": {
            "future_features": list(samples.shape),
            "mean_future_features": list(output.mean_future_features.shape),
            "future_delta_tokens": list(output.future_delta_tokens.shape),
            "context_features": list(output.context_features.shape),
        },
        # Standard deviation across samples, averaged over patches and channels: how much the futures differ.
        "sample_spread_per_step": samples.std(0, unbiased=samples.shape[0] > 1).mean((-1, -2)).tolist(),
        "delta_token_spread_per_step": output.future_delta_tokens.float().std(0, unbiased=samples.shape[0] > 1).mean(-1).tolist(),
    }
    if output.candidate_indices is not None:
        summary["candidate_indices"] = output.candidate_indices.tolist()
        summary["candidate_weights"] = [round(float(weight), 4) for weight in output.candidate_weights]
    if output.ground_truth_features is not None:
        summary["errors_vs_ground_truth"] = _feature_errors(output)
    return summary


def run_forecast(
    pipe, video: str, args: argparse.Namespace, model_description: str, random_weights: bool, caveat: str | None = None
) -> dict:
    """
    Forecast `video` with `pipe` and write `forecast.png`, `forecast.json` (and GIFs) to `args.out`. `caveat` is shown in
    the picture's title and stored in the JSON (e.g. that the model is a demo model, not a quality model).
    """
    if random_weights and caveat is None:
        caveat = "RANDOM WEIGHTS, not a quality result"
    from .visualization import save_forecast_gif, save_forecast_png  # noqa: PLC0415

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = tqdm(total=4, desc="forecast", unit="step", disable=args.quiet, file=sys.stderr)
    started = time.perf_counter()

    progress.set_postfix_str("reading frames and sampling futures")
    options = {
        "num_samples": args.num_samples,
        "num_candidates": args.candidates,
        "candidate_selection": args.selection if args.candidates is not None else None,
        "num_future_frames": args.future,
        "max_context_frames": args.context_frames,
        "context_interval": args.interval,
        "start_time": args.start,
        "size": args.size,
        "resize_mode": args.resize_mode,
    }
    pipe.set_progress_bar_config(disable=args.quiet)
    outputs = pipe(
        str(video),
        read_ground_truth=args.start is not None,
        seed=args.seed,
        **{name: value for name, value in options.items() if value is not None},
    )
    outputs = outputs if isinstance(outputs, list) else [outputs]
    num_samples = outputs[0].num_samples
    progress.update(2)

    progress.set_postfix_str("drawing")
    title = f"{Path(video).name}: {num_samples} samples" + (f" ({caveat})" if caveat else "")
    picture = save_forecast_png(outputs, out_dir / "forecast.png", title=title, max_samples_shown=args.max_samples_shown)
    gifs = []
    if args.gif:
        for index, output in enumerate(outputs):
            name = "forecast.gif" if len(outputs) == 1 else f"forecast_crop{index + 1}.gif"
            gifs.append(str(save_forecast_gif(output, out_dir / name, max_samples_shown=args.max_samples_shown)))
    progress.update()

    progress.set_postfix_str("writing json")
    first = outputs[0]
    report = {
        "video": str(video),
        "model": model_description,
        "random_weights": random_weights,
        "num_samples": num_samples,
        "num_candidates": args.candidates,
        "candidate_selection": args.selection if args.candidates is not None else None,
        "seed": args.seed,
        "device": str(pipe.device),
        "dtype": str(pipe.world_model.dtype).replace("torch.", ""),
        "resize_mode": args.resize_mode or pipe.config.resize_mode,
        "size": args.size or pipe.config.size,
        "context_timestamps": first.context_timestamps.tolist(),
        "future_timestamps": first.future_timestamps.tolist(),
        "ground_truth_available": first.ground_truth_features is not None,
        "frame_size_after_resize": list(first.frame_size),
        "views": [_view_summary(output) for output in outputs],
        "picture": str(picture),
        "gifs": gifs,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if random_weights:
        report["warning"] = "Random-weight model: these numbers show the mechanics only, not forecast quality."
    elif caveat:
        report["warning"] = caveat
    (out_dir / "forecast.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    progress.update()
    progress.close()
    return report


def _print_summary(report: dict) -> None:
    print(f"wrote {report['picture']}")
    print(f"wrote {Path(report['picture']).with_suffix('.json')}")
    for gif in report["gifs"]:
        print(f"wrote {gif}")
    for index, view in enumerate(report["views"]):
        spread = ", ".join(f"{value:.4f}" for value in view["sample_spread_per_step"])
        line = f"view {index + 1}: sample spread per step [{spread}]"
        errors = view.get("errors_vs_ground_truth")
        if errors:
            best = ", ".join(f"{value:.4f}" for value in errors["best_of_n_mse_per_step"])
            mean = ", ".join(f"{value:.4f}" for value in errors["mean_prediction_mse_per_step"])
            line += f"; best-of-{report['num_samples']} MSE [{best}]; mean MSE [{mean}]"
        print(line)
    print(f"done in {report['seconds']:.1f} s")


def _forecast_command(args: argparse.Namespace) -> int:
    from .pipelines import DeltaWorldPipeline  # noqa: PLC0415

    pipe = DeltaWorldPipeline.from_pretrained(args.model, dtype=DTYPES[args.dtype]).to(args.device)
    report = run_forecast(pipe, args.video, args, model_description=str(args.model), random_weights=False)
    _print_summary(report)
    return 0


# Shown in the picture's title and stored in the JSON; the terminal gets the longer DEMO_MODEL_NOTE.
DEMO_MODEL_CAVEAT = "demo model, random backbone, synthetic training: not a quality result"
DEMO_MODEL_NOTE = (
    "tiny demo model with a random-init backbone (no pretrained VFM), trained for minutes on a CPU on the synthetic "
    "fork world and views of the city clip: it shows the mechanics (samples that fork where the data forks), not "
    "forecast quality"
)


# The demo's context starts here, so that the clip goes on after it and the forecast is scored against the real future.
DEMO_START_TIME = 1.0
# Fork-world clips in fork.png; at most this many samples of each are drawn (the branches read use all of them).
DEMO_FORK_CLIPS = 3
DEMO_FORK_SAMPLES_SHOWN = 8


def _demo_command(args: argparse.Namespace) -> int:
    from .data.video import demo_clip_path  # noqa: PLC0415
    from .demo import SELECTION_NAMES, load_demo_pipeline, run_fork_demo  # noqa: PLC0415

    demo = load_demo_pipeline(dtype=DTYPES[args.dtype])
    if demo.random_weights:
        print(
            "NOTE: no trained demo model is bundled, so this demo uses a tiny RANDOM-WEIGHT model "
            "(DeltaWorldConfig.tiny()). It shows the mechanics only; its forecasts and numbers are not quality results "
            "(with LayerScale at its 1e-5 init, every random-weight sample stays close to the last context frame)."
        )
    else:
        print(f"model: {demo.source}")
        print(f"NOTE: {DEMO_MODEL_NOTE}.")
    pipe = demo.pipeline.to(args.device)
    caveat = "RANDOM WEIGHTS, not a quality result" if demo.random_weights else DEMO_MODEL_CAVEAT
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    # 1. The fork: what a generative world model is for (several plausible futures), on clips where we know them all.
    fork = None
    if getattr(pipe, "rgb_decoder", None) is not None:
        pipe.set_progress_bar_config(disable=True)
        fork = run_fork_demo(
            pipe, out_dir, num_clips=DEMO_FORK_CLIPS, num_samples=args.num_samples, num_candidates=args.candidates,
            seed=args.seed, max_samples_shown=max(args.max_samples_shown, DEMO_FORK_SAMPLES_SHOWN), gif=args.gif,
            caveat=caveat, candidate_selection=args.selection,
        )  # fmt: skip
    else:
        print("(no RGB decoder in this pipeline: the fork-world picture needs one and is skipped)")

    # 2. The bundled city clip, as `deltatok-hf forecast` shows any video.
    video = str(demo_clip_path())
    print(f"video: {video}")
    if args.start is None:
        args.start = DEMO_START_TIME
    report = run_forecast(
        pipe, video, args, model_description=demo.source, random_weights=demo.random_weights,
        caveat=None if demo.random_weights else DEMO_MODEL_CAVEAT,
    )  # fmt: skip

    if fork is not None:
        names = fork["world"]["mode_names"]
        print(
            f"\nfork.png - the fork world (synthetic): in each of {DEMO_FORK_CLIPS} held-out clips a coloured disc "
            f"drives to a junction (the {pipe.config.context_frames} context frames) and then takes one of "
            f"{len(names)} equally likely branches ({', '.join(names)}). Per clip (one row): the context, the "
            f"{len(names)} possible next frames (the true one marked), {min(fork['num_samples'], max(args.max_samples_shown, DEMO_FORK_SAMPLES_SHOWN))} "
            f"of the {fork['num_samples']} sampled futures as decoded RGB with the branch read from their pixels, and "
            "the pixel mean of all samples (a ghost of every branch taken)."
        )
        for index, clip in enumerate(fork["clips"]):
            counts = ", ".join(f"{name} {count}" for name, count in clip["samples_per_mode"].items())
            print(
                f"  clip {index + 1} (true branch: {clip['true_mode']}): samples read as {counts} -> "
                f"{clip['coverage'] * len(names):.0f}/{len(names)} branches covered"
            )
        selection = fork.get("select_then_decode")
        if selection is not None:
            print(
                f"select-then-decode on the same clips: {selection['num_candidates']} futures drawn as delta tokens, "
                f"{selection['num_kept']} kept by {SELECTION_NAMES[selection['method']]} in token space and decoded (the "
                "share of the drawn futures each stands for in brackets; fork_selected.png ends each row with their "
                "pixel mean weighted by those shares):"
            )
            for index, clip in enumerate(selection["clips"]):
                kept = ", ".join(f"{future['mode']} ({future['weight']:.2f})" for future in clip["kept"])
                print(f"  clip {index + 1}: {kept} -> {clip['coverage'] * len(names):.0f}/{len(names)} branches covered")
            print(f"wrote {selection['picture']}")
        print(f"wrote {fork['picture']}")
        print(f"wrote {Path(fork['picture']).with_suffix('.json')}")
        if fork["gif"]:
            print(f"wrote {fork['gif']}")
    print(
        f"\nforecast.png - the bundled city clip: real frames, then the features (PCA colours, one basis per picture) "
        "of the context, the real future and each sample, their mean"
        + (", and each sample decoded to RGB by the pipeline's RGB decoder." if getattr(pipe, "rgb_decoder", None) else ".")
    )
    _print_summary(report)
    print(f"CAVEAT: {caveat}; synthetic fork world, random backbone - mechanics only.")
    if fork is not None:
        pictures = [fork["picture"]] + ([fork["select_then_decode"]["picture"]] if fork.get("select_then_decode") else [])
        pictures = ", ".join(str(Path(picture).resolve()) for picture in pictures + [report["picture"]])
        print(f"Open the pictures: {pictures}")
    else:
        print(f"Open the picture: {Path(report['picture']).resolve()}")
    return 0


def _convert_command(args: argparse.Namespace) -> int:
    from .convert import cli_convert  # noqa: PLC0415

    return int(cli_convert(args))


# ----------------------------------------------------------------------------------------------
# train-deltatok / train-deltaworld / cache-tokens: the same code as examples/train_*.py and cache_delta_tokens.py
# ----------------------------------------------------------------------------------------------

# command -> (arguments dataclass, function of deltatok_hf.training, help). Options are the dataclass fields, with the
# scripts' underscore spelling (`--train_data`); run on several devices with `accelerate launch -m deltatok_hf.cli ...`.
TRAINING_COMMANDS = {
    "train-deltatok": ("DeltaTokTrainingArguments", "train_deltatok", "train or fine-tune a DeltaTok tokenizer"),
    "train-deltaworld": ("DeltaWorldTrainingArguments", "train_deltaworld", "train or fine-tune a DeltaWorld predictor"),
    "cache-tokens": ("CacheTokensArguments", "cache_delta_tokens", "store the delta tokens of sampled clips"),
    "train-dinoworld": (
        "DinoWorldTrainingArguments", "train_dinoworld", "train a DINO-world baseline (the paper's ablation steps 0-1)"
    ),
    "train-rgb-decoder": (
        "RGBDecoderTrainingArguments", "train_rgb_decoder", "fit an RGB decoder (features -> pixels) on frozen backbone features"
    ),
}


def _add_training_commands(commands) -> None:
    from . import training  # noqa: PLC0415

    for name, (arguments_class, _, help_text) in TRAINING_COMMANDS.items():
        options = training.build_argument_parser(getattr(training, arguments_class), add_help=False)
        commands.add_parser(name, parents=[options], help=help_text, description=f"{help_text} (see examples/README.md)")


def _training_command(args: argparse.Namespace) -> int:
    from . import training  # noqa: PLC0415

    arguments_class, function, _ = TRAINING_COMMANDS[args.command]
    getattr(training, function)(training.arguments_from_namespace(getattr(training, arguments_class), args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `deltatok-hf`; returns the exit code (2 on bad input, with the reason on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "forecast": _forecast_command,
        "demo": _demo_command,
        "convert": _convert_command,
        "evaluate": _evaluate_command,
    }
    handlers.update(dict.fromkeys(TRAINING_COMMANDS, _training_command))
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"deltatok-hf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
