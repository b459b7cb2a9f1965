"""The pipeline behind `deltatok-hf demo`: the bundled trained demo model when present, else a tiny random one; and the
fork-world forecast the demo shows first (several sampled futures of one junction, read back from their pixels)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .data.synthetic import ForkWorld, fork_mode_coverage
from .models.deltaworld import DeltaWorldConfig, DeltaWorldForForecasting
from .pipelines import DeltaWorldPipeline
from .pipelines.postprocessing import sample_mean

DEMO_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "demo_model"
# Seed of the random-weight fallback, so every run of the demo shows the same (meaningless) forecast.
RANDOM_DEMO_SEED = 0
# Seed of the fork-world clips the demo forecasts: held out (the demo model trained on seed 0, was scored on 1000),
# and chosen so that its first three clips take three different branches from three different headings.
FORK_DEMO_SEED = 2053

# How the demo names each selection method in its printout and pictures.
SELECTION_NAMES = {"k_medoids": "k-medoids", "farthest_point": "farthest-point"}


@dataclass
class DemoPipeline:
    """
    Args:
        pipeline ([`DeltaWorldPipeline`]): the demo pipeline, in eval mode.
        source (`str`): the directory it was loaded from, or a description of the random fallback.
        random_weights (`bool`): `True` for the random-weight fallback; its forecasts say nothing about quality.
    """

    pipeline: DeltaWorldPipeline
    source: str
    random_weights: bool


def load_demo_pipeline(model_dir: str | Path | None = None, dtype: torch.dtype | None = None) -> DemoPipeline:
    """
    Load `assets/demo_model/` (a saved pipeline with `model_index.json`, or a bare world model, as the demo-model
    training script writes them); without one, build `DeltaWorldConfig.tiny()` with random weights under
    `torch.manual_seed(RANDOM_DEMO_SEED)` (the global RNG state is restored afterwards).
    """
    model_dir = Path(model_dir) if model_dir is not None else DEMO_MODEL_DIR
    if (model_dir / "model_index.json").is_file() or (model_dir / "config.json").is_file():
        pipe = DeltaWorldPipeline.from_pretrained(model_dir, dtype=dtype)
        return DemoPipeline(pipeline=pipe, source=str(model_dir), random_weights=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_DEMO_SEED)
        model = DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()
    pipe = DeltaWorldPipeline(world_model=model)
    return DemoPipeline(
        pipeline=pipe.to(dtype=dtype) if dtype is not None else pipe,
        source=f"DeltaWorldConfig.tiny() with random weights (seed {RANDOM_DEMO_SEED}); no trained model at {model_dir}",
        random_weights=True,
    )


def fork_mode_names(num_modes: int) -> list[str]:
    """Names of the fork world's branches, in mode order (`fork_turn_angles`: mode 0 turns left the most)."""
    return ["left", "straight", "right"] if num_modes == 3 else [f"{index + 1}" for index in range(num_modes)]


@dataclass
class ForkDemoClip:
    """
    One fork-world clip forecast by a pipeline with an RGB decoder (first future frame only).

    Args:
        context_frames (`torch.ByteTensor` of shape `(num_context_frames, height, width, 3)`): what the model saw.
        context_timestamps (`torch.FloatTensor` of shape `(num_context_frames,)`): their times in seconds.
        branch_frames (`torch.ByteTensor` of shape `(num_modes, height, width, 3)`): the first future frame of every
            branch (rendered, not predicted).
        true_mode (`int`): the branch the clip really takes.
        sample_frames (`torch.ByteTensor` of shape `(num_samples, height, width, 3)`): every sample's decoded RGB.
        sample_modes (`torch.LongTensor` of shape `(num_samples,)`): the branch read from each sample's pixels
            (`read_fork_mode`), -1 where no disc is on a branch.
        mean_frame (`torch.ByteTensor` of shape `(height, width, 3)`): the pixel mean of the samples' RGB frames
            (weighted by `candidate_weights` when there are some).
        coverage (`float`): fraction of the branches some sample shows.
        candidate_indices (`torch.LongTensor` of shape `(num_samples,)`, *optional*): with `num_candidates`, which of
            the drawn futures were decoded.
        candidate_weights (`torch.FloatTensor` of shape `(num_samples,)`, *optional*): with `num_candidates`, the
            share of the drawn futures each decoded one stands for.
    """

    context_frames: torch.Tensor
    context_timestamps: torch.Tensor
    branch_frames: torch.Tensor
    true_mode: int
    sample_frames: torch.Tensor
    sample_modes: torch.Tensor
    mean_frame: torch.Tensor
    coverage: float
    candidate_indices: torch.Tensor | None = None
    candidate_weights: torch.Tensor | None = None


def fork_world_for(pipe: DeltaWorldPipeline, num_clips: int, seed: int = FORK_DEMO_SEED, **world_options) -> ForkWorld:
    """Fork-world clips in the pipeline's geometry: its frame size, context length and spacing, one future frame;
    `world_options` (`num_modes`, `speed`, `radius`) as the model was trained on (the pipeline does not record them)."""
    return ForkWorld(
        num_clips,
        num_context_frames=pipe.config.context_frames,
        num_future_frames=1,
        size=pipe.config.size,
        seed=seed,
        fps=1 / pipe.config.context_interval,
        **world_options,
    )


def fork_pipeline_inputs(world: ForkWorld, item: dict) -> dict:
    """The pipeline inputs for fork-world `item`: its context frames, their times and the future times to predict."""
    num_context = world.num_context_frames
    return {
        "video": item["frames"][:num_context],
        "timestamps": item["timestamps"][:num_context],
        "future_timestamps": item["timestamps"][num_context:],
    }


def weighted_mean_frame(frames: torch.Tensor, weights=None) -> torch.Tensor:
    """The pixel mean of sample frames `(S, H, W, 3)` uint8, weighted by select-then-decode's `candidate_weights`
    `(S,)` when given (normalised over these samples)."""
    weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)[None]
    return sample_mean(frames.float()[None], weights)[0].round().to(torch.uint8)


def read_fork_forecast(world: ForkWorld, item: dict, output) -> ForkDemoClip:
    """Read the branch of every sample of a pipeline `output` for fork-world `item` from its decoded pixels."""
    frames = torch.as_tensor(output.future_frames)[:, 0]  # (num_samples, H, W, 3) uint8
    sample_modes = world.read_mode(frames.permute(0, 3, 1, 2), item, step=0)  # (num_samples,)
    num_context = world.num_context_frames
    return ForkDemoClip(
        context_frames=item["frames"][:num_context].permute(0, 2, 3, 1),
        context_timestamps=item["timestamps"][:num_context],
        branch_frames=item["all_futures"][:, 0].permute(0, 2, 3, 1),
        true_mode=int(item["mode"]),
        sample_frames=frames,
        sample_modes=sample_modes,
        mean_frame=weighted_mean_frame(frames, output.candidate_weights),
        coverage=fork_mode_coverage(sample_modes, world.num_modes),
        candidate_indices=None if output.candidate_indices is None else torch.as_tensor(output.candidate_indices),
        candidate_weights=None if output.candidate_weights is None else torch.as_tensor(output.candidate_weights),
    )


def forecast_fork_clip(
    pipe: DeltaWorldPipeline,
    world: ForkWorld,
    index: int,
    num_samples: int | None = None,
    num_candidates: int | None = None,
    generator: torch.Generator | None = None,
    candidate_selection: str = "k_medoids",
) -> ForkDemoClip:
    """
    Forecast clip `index` of `world` with `pipe` (plain draws, or `num_candidates` drawn in token space and
    `num_samples` of them decoded) and read the branch of every sample from its decoded pixels.
    """
    if getattr(pipe, "rgb_decoder", None) is None:
        raise ValueError("The fork demo reads branches from decoded pixels: the pipeline needs an `rgb_decoder` component.")
    item = world[index]
    output = pipe(
        **fork_pipeline_inputs(world, item),
        num_samples=num_samples,
        num_candidates=num_candidates,
        candidate_selection=candidate_selection,
        generator=generator,
    )
    return read_fork_forecast(world, item, output)


def run_fork_demo(
    pipe: DeltaWorldPipeline,
    out_dir: str | Path,
    num_clips: int = 3,
    num_samples: int | None = None,
    num_candidates: int | None = None,
    seed: int = 0,
    max_samples_shown: int = 8,
    gif: bool = False,
    caveat: str | None = None,
    selection_candidates: int | None = 256,
    candidate_selection: str = "k_medoids",
) -> dict:
    """
    Forecast `num_clips` held-out fork-world clips (seed `FORK_DEMO_SEED`) and write `fork.png` (see
    [`deltatok_hf.visualization.make_fork_grid`]), `fork.json` and, with `gif`, `fork.gif` to `out_dir`. Returns the
    report written to `fork.json`: per clip the true branch, the branch every sample shows and the coverage; and, with
    `selection_candidates`, select-then-decode on the same clips: as many futures as there are branches, kept by
    `candidate_selection` (k-medoids by default; also used for the first part with `num_candidates`) among
    `selection_candidates` drawn in token space, each with its branch and the share of the drawn futures it stands for.
    """
    from .visualization import save_fork_gif, save_fork_png  # noqa: PLC0415 (PIL drawing only when asked)

    out_dir = Path(out_dir)
    world = fork_world_for(pipe, num_clips)
    names = fork_mode_names(world.num_modes)
    generator = torch.Generator(device=pipe.device).manual_seed(seed)
    clips = [
        forecast_fork_clip(pipe, world, index, num_samples, num_candidates, generator, candidate_selection)
        for index in range(num_clips)
    ]
    drawn = len(clips[0].sample_frames)
    shown = min(max_samples_shown, drawn)
    title = f"Fork world (synthetic): {drawn} sampled futures per clip, {shown} shown" + (f" ({caveat})" if caveat else "")
    report = {
        "world": {"seed": FORK_DEMO_SEED, "num_modes": world.num_modes, "mode_names": names, "size": world.size},
        "num_samples": drawn,
        "num_candidates": num_candidates,
        "candidate_selection": candidate_selection if num_candidates is not None else None,
        "seed": seed,
        "clips": [
            {
                "true_mode": names[clip.true_mode],
                "sample_modes": [names[mode] if mode >= 0 else "none" for mode in clip.sample_modes.tolist()],
                "samples_per_mode": {
                    name: int((clip.sample_modes == mode).sum()) for mode, name in [*enumerate(names), (-1, "none")]
                },
                "coverage": clip.coverage,
            }
            for clip in clips
        ],
        "mean_coverage": sum(clip.coverage for clip in clips) / num_clips,
        "picture": str(save_fork_png(clips, out_dir / "fork.png", names, max_samples_shown=shown, title=title)),
        "gif": str(save_fork_gif(clips, out_dir / "fork.gif", max_samples_shown=shown, title=title)) if gif else None,
    }
    if selection_candidates is not None:
        kept = [
            forecast_fork_clip(
                pipe, world, index, num_samples=world.num_modes, num_candidates=selection_candidates,
                generator=generator, candidate_selection=candidate_selection,
            )
            for index in range(num_clips)
        ]  # fmt: skip
        report["select_then_decode"] = {
            "num_candidates": selection_candidates,
            "num_kept": world.num_modes,
            "method": candidate_selection,
            "clips": [
                {
                    "kept": [
                        {"mode": names[mode] if mode >= 0 else "none", "weight": round(float(weight), 4)}
                        for mode, weight in zip(clip.sample_modes.tolist(), clip.candidate_weights.tolist())
                    ],
                    "coverage": clip.coverage,
                }
                for clip in kept
            ],
            "mean_coverage": sum(clip.coverage for clip in kept) / num_clips,
            "picture": str(
                save_fork_png(
                    kept, out_dir / "fork_selected.png", names, max_samples_shown=world.num_modes,
                    title=f"Fork world (synthetic): {world.num_modes} of {selection_candidates} futures kept by "
                    f"{SELECTION_NAMES[candidate_selection]} in token space, each with the share of the drawn futures it "
                    "stands for"
                    + (f" ({caveat})" if caveat else ""),
                )
            ),
        }  # fmt: skip
    if caveat:
        report["warning"] = caveat
    (out_dir / "fork.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


__all__ = [
    "DEMO_MODEL_DIR",
    "FORK_DEMO_SEED",
    "SELECTION_NAMES",
    "DemoPipeline",
    "ForkDemoClip",
    "forecast_fork_clip",
    "fork_pipeline_inputs",
    "fork_mode_names",
    "fork_world_for",
    "load_demo_pipeline",
    "read_fork_forecast",
    "run_fork_demo",
    "weighted_mean_frame",
]
