"""The paper's ablation ladder on a synthetic world, at tiny sizes, on CPU.

Four rungs, each a predictor of the same size trained for the same number of steps on the same clips:

0. `dinoworld`: DINO-world, one learned query, every patch of every frame (`DinoWorldForForecasting`);
1. `dinoworld_bom`: the same with noise queries and Best-of-Many on patches (K = 16, the official default);
2. `frame_tokens`: DeltaWorld on a frame-token DeltaTok (`use_delta=False`), Best-of-Many (K = 256);
3. `delta_tokens`: DeltaWorld on delta tokens, Best-of-Many (K = 256).

Pipeline: a random-init tiny DINOv3 (no pretrained backbone can be downloaded here) turns every clip into features once;
the two tokenizers are trained on those features; each predictor trains on cached features (rungs 0-1) or cached
tokens (rungs 2-3). Evaluation on held-out clips: 20 sampled futures per clip (1 for the deterministic rung), scored
in feature space with `deltatok_hf.metrics.functional` against the true future and against every branch of the fork.

Everything here is synthetic data and a random backbone: the numbers compare the rungs' mechanics and costs on one toy
world; they are not the paper's results and say nothing about real video.

    python examples/ablation/run_ladder.py                 # the table of examples/ablation/README.md (~10 min CPU)
    python examples/ablation/run_ladder.py --steps 20 --tokenizer-steps 20 --train-clips 64 --eval-clips 8  # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from deltatok_hf import (
    DeltaTokConfig,
    DeltaTokModel,
    DeltaWorldConfig,
    DeltaWorldForForecasting,
    DinoWorldConfig,
    DinoWorldForForecasting,
)
from deltatok_hf.metrics.functional import generative_forecast_scores, smooth_l1_per_step
from deltatok_hf.training.ablation import RUNGS, peak_training_memory
from deltatok_hf.training.optim import build_lr_scheduler, build_optimizer
from deltatok_hf.training.recipes import get_recipe

RUNG_NAMES = {
    "dinoworld": "0: DINO-world (learned query)",
    "dinoworld_bom": "1: DINO-world + BoM on patches",
    "frame_tokens": "2: frame tokens + BoM",
    "delta_tokens": "3: delta tokens + BoM (DeltaWorld)",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train and score the four ablation rungs on a synthetic world (CPU).")
    parser.add_argument("--world", choices=("fork", "disc"), default="fork",
                        help="ForkWorld (a junction with 3 equally likely branches) or SyntheticMultimodalMotion")
    parser.add_argument("--train-clips", type=int, default=512)
    parser.add_argument("--eval-clips", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per predictor rung (the same for all)")
    parser.add_argument("--tokenizer-steps", type=int, default=200, help="optimizer steps per tokenizer")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="predictor learning rate, all rungs (the official 1e-4 is for 10^5 steps, not 200)")
    parser.add_argument("--num-samples", type=int, default=20, help="sampled futures per clip at evaluation")
    parser.add_argument("--memory-sizes", choices=("tiny", "mid"), default="tiny",
                        help="model sizes of the peak-memory column (fresh process per rung, random weights)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="examples/ablation/results/ladder.json")
    args = parser.parse_args(argv)
    for name in ("train_clips", "eval_clips", "steps", "tokenizer_steps", "batch_size", "num_samples", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}.")
    return args


# ---------------------------------------------------------------------------------------------- data


def load_world(kind: str, num_clips: int, seed: int) -> dict:
    """Clips as stacked tensors: `frames (C, T, 3, H, W)` uint8, `timestamps (C, T)`, `all_futures (C, M, F, 3, H, W)`."""
    from deltatok_hf.data import synthetic

    if kind == "fork":
        if not hasattr(synthetic, "ForkWorld"):
            raise ValueError("deltatok_hf.data.synthetic has no ForkWorld in this version; use --world disc.")
        world = synthetic.ForkWorld(num_clips, num_context_frames=4, num_future_frames=1, seed=seed)
    else:
        world = synthetic.SyntheticMultimodalMotion(num_clips, num_frames=5, num_context_frames=4, seed=seed)
    items = [world[index] for index in range(num_clips)]
    return {
        "frames": torch.stack([item["frames"] for item in items]),
        "timestamps": torch.stack([torch.as_tensor(item["timestamps"]) for item in items]),
        "all_futures": torch.stack([item["all_futures"] for item in items]),
        "num_context_frames": 4,
    }


@torch.no_grad()
def extract(model: DinoWorldForForecasting, frames: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Backbone features of `(C, T, 3, H, W)` frames in eval mode, `(C, T, N, D)`."""
    return torch.cat([model.extract_features(frames[start : start + batch_size]) for start in range(0, len(frames), batch_size)])


# ---------------------------------------------------------------------------------------------- training


def train_steps(model, loss_of_batch, num_items: int, steps: int, batch_size: int, learning_rate: float,
                weight_decay: float, max_grad_norm: float | None, seed: int, description: str) -> dict:
    """AdamW (the package's parameter groups), linear warm-up over the first 10% of steps, then constant."""
    model.train()
    optimizer = build_optimizer(model, learning_rate, weight_decay)
    scheduler = build_lr_scheduler(optimizer, max(1, steps // 10))
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    generator = torch.Generator().manual_seed(seed)
    losses, seconds = [], []
    for _ in tqdm(range(steps), desc=description, leave=False):
        indices = torch.randint(num_items, (batch_size,), generator=generator)
        start = time.perf_counter()
        loss = loss_of_batch(indices, generator)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    model.eval()
    settled = seconds[min(5, len(seconds) - 1) :]  # the first steps pay one-time setup
    return {
        "final_loss": statistics.fmean(losses[-max(1, steps // 10) :]),
        "step_seconds": statistics.fmean(settled),
        "train_seconds": sum(seconds),
    }


def train_tokenizer(use_delta: bool, backbone_state: dict, features: torch.Tensor, args) -> tuple[DeltaTokModel, dict]:
    """A tiny DeltaTok (delta or frame tokens) trained to reconstruct frame t from (t - 1, t) (or t alone)."""
    torch.manual_seed(args.seed)
    tokenizer = DeltaTokModel(DeltaTokConfig.tiny(use_delta=use_delta, use_rope_augmentation=False))
    tokenizer.backbone.load_state_dict(backbone_state)
    recipe = get_recipe("deltatok", "released")
    num_frames = features.shape[1]

    def loss_of_batch(indices, generator):
        # Frame 0 is reconstructed from the black frame (as the first delta token of a clip is), later frames from
        # their predecessor; one position per batch.
        frame = int(torch.randint(num_frames, (1,), generator=generator))
        pair = features[indices, max(0, frame - 1) : frame + 1]
        return tokenizer(features=pair, grid_size=(4, 4)).loss

    summary = train_steps(
        tokenizer, loss_of_batch, len(features), args.tokenizer_steps, args.batch_size, recipe.learning_rate,
        recipe.weight_decay, recipe.max_grad_norm, args.seed, f"tokenizer ({'delta' if use_delta else 'frame'})",
    )
    return tokenizer, summary


def build_rung(rung: str, backbone_state: dict, tokenizers: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    if rung.startswith("dinoworld"):
        config = DinoWorldConfig.tiny(use_best_of_many=rung == "dinoworld_bom", use_rope_augmentation=False)
        model = DinoWorldForForecasting(config)
        model.backbone.load_state_dict(backbone_state)
        return model
    tokenizer = tokenizers[rung]
    return DeltaWorldForForecasting.from_tokenizer(tokenizer, DeltaWorldConfig.tiny())


@torch.no_grad()
def tokenize(tokenizer: DeltaTokModel, features: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Tokens of whole clips `(C, T, D)`, the first against the black frame."""
    return torch.cat([tokenizer.tokenize(features[start : start + batch_size], grid_size=(4, 4)) for start in range(0, len(features), batch_size)])


# ---------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def tokenizer_floor(tokenizer: DeltaTokModel, features: torch.Tensor, tokens: torch.Tensor, num_context: int) -> float:
    """Feature error of decoding the *true* future tokens (from the last context frame, step by step): the best any
    predictor over these tokens can do, the same smooth-L1 as best-of-N."""
    previous, decoded = features[:, num_context - 1], []
    for step in range(num_context, features.shape[1]):
        previous = tokenizer.decode(tokens[:, step], previous, grid_size=(4, 4))  # (C, N, D)
        decoded.append(previous)
    return float(smooth_l1_per_step(torch.stack(decoded, dim=1), features[:, num_context:]).mean())


@torch.no_grad()
def forecast(model, rung: str, features, tokens, timestamps, num_context: int, num_samples: int, seed: int) -> torch.Tensor:
    """`(C, S, F, N, D)` sampled future features of every clip, from cached context features / tokens."""
    generator = torch.Generator().manual_seed(seed)
    kwargs = {"timestamps": timestamps[:, :num_context], "future_timestamps": timestamps[:, num_context:],
              "num_samples": num_samples, "generator": generator}
    if rung.startswith("dinoworld"):
        return model.generate(features=features[:, :num_context], **kwargs).future_features
    return model.generate(
        delta_tokens=tokens[:, :num_context], last_features=features[:, num_context - 1], **kwargs
    ).future_features


@torch.no_grad()
def inference_cost(model, frames: torch.Tensor, timestamps: torch.Tensor, num_context: int, num_samples: int) -> dict:
    """FLOPs (FlopCounterMode) and median wall time of one clip's forecast of `num_samples` futures, from its frames."""
    kwargs = {"timestamps": timestamps[:1, :num_context], "future_timestamps": timestamps[:1, num_context:],
              "num_samples": num_samples}
    context = frames[:1, :num_context].float()
    model.generate(context, **kwargs)  # warm-up (and DeltaWorld's black-frame cache)
    counter = FlopCounterMode(display=False)
    with counter:
        model.generate(context, **kwargs)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.generate(context, **kwargs)
        times.append(time.perf_counter() - start)
    return {"gflops": counter.get_total_flops() / 1e9, "seconds": statistics.median(times)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    print(f"World: {args.world}; {args.train_clips} training and {args.eval_clips} evaluation clips (synthetic)")
    train_world = load_world(args.world, args.train_clips, args.seed)
    eval_world = load_world(args.world, args.eval_clips, args.seed + 1000)
    num_context = train_world["num_context_frames"]

    # 1. One random-init tiny backbone, shared by every rung (same weights), run once over all clips.
    feature_model = DinoWorldForForecasting(DinoWorldConfig.tiny(use_rope_augmentation=False)).eval()
    backbone_state = feature_model.backbone.state_dict()
    train_features = extract(feature_model, train_world["frames"])  # (C, T, N, D)
    eval_features = extract(feature_model, eval_world["frames"])
    futures = eval_world["all_futures"]  # (C, M, F, 3, H, W)
    mode_features = extract(feature_model, futures.flatten(1, 2)).unflatten(1, futures.shape[1:3])  # (C, M, F, N, D)

    # 2. The two tokenizers (rungs 2 and 3), then their token caches.
    tokenizers, tokenizer_summaries, train_tokens, eval_tokens = {}, {}, {}, {}
    for rung, use_delta in (("frame_tokens", False), ("delta_tokens", True)):
        tokenizer, summary = train_tokenizer(use_delta, backbone_state, train_features, args)
        tokenizers[rung], tokenizer_summaries[rung] = tokenizer, summary
        train_tokens[rung], eval_tokens[rung] = tokenize(tokenizer, train_features), tokenize(tokenizer, eval_features)
        print(f"tokenizer {rung}: final loss {summary['final_loss']:.4f}, {summary['train_seconds']:.0f} s")

    # 3. The four rungs: same predictor size, steps, batch, learning rate and clips.
    recipe = get_recipe("deltaworld", "released")
    results = {}
    for rung in RUNGS:
        model = build_rung(rung, backbone_state, tokenizers)
        timestamps = train_world["timestamps"]
        if rung.startswith("dinoworld"):
            def loss_of_batch(indices, generator, model=model):
                return model(features=train_features[indices], timestamps=timestamps[indices]).loss
        else:
            def loss_of_batch(indices, generator, model=model, tokens=train_tokens[rung]):
                return model(delta_tokens=tokens[indices], timestamps=timestamps[indices]).loss
        training = train_steps(model, loss_of_batch, args.train_clips, args.steps, args.batch_size, args.learning_rate,
                               recipe.weight_decay, recipe.max_grad_norm, args.seed, RUNG_NAMES[rung])
        num_samples = args.num_samples if model.config.use_best_of_many else 1
        samples = forecast(model, rung, eval_features, eval_tokens.get(rung), eval_world["timestamps"], num_context,
                           num_samples, args.seed)
        targets = eval_features[:, num_context:]
        scores = generative_forecast_scores(list(samples), list(targets), list(mode_features))
        cost = inference_cost(model, eval_world["frames"], eval_world["timestamps"], num_context, num_samples)
        memory = peak_training_memory({"rung": rung, "sizes": args.memory_sizes, "batch_size": args.batch_size})
        floor = tokenizer_floor(tokenizers[rung], eval_features, eval_tokens[rung], num_context) if rung in tokenizers else None
        results[rung] = {
            "name": RUNG_NAMES[rung],
            "tokenizer_floor": floor,
            "num_samples": num_samples,
            "num_samples_train": model.config.num_samples_train if model.config.use_best_of_many else None,
            "best_of_n_loss": scores["best_of_n_loss"],
            "mean_of_n_loss": scores["mean_of_n_loss"],
            "energy_score": scores["energy_score"],
            "mode_coverage": scores["mode_coverage"],
            **{f"train_{key}": value for key, value in training.items()},
            "peak_train_memory_mib": memory["peak_growth_bytes"] / 2**20,
            "inference_gflops": cost["gflops"],
            "inference_seconds": cost["seconds"],
        }
        print(f"{RUNG_NAMES[rung]}: best-of-{num_samples} {scores['best_of_n_loss']:.4f}, coverage "
              f"{scores['mode_coverage']:.2f}, {training['step_seconds'] * 1e3:.0f} ms/step")

    # Reference: repeat the last context frame's features (no model at all).
    copy_last = eval_features[:, num_context - 1 : num_context].expand_as(eval_features[:, num_context:])
    summary = {
        "copy_last_frame_loss": float(smooth_l1_per_step(copy_last, eval_features[:, num_context:]).mean()),
        "arguments": vars(args),
        "tokenizers": tokenizer_summaries,
        "rungs": results,
        "total_seconds": time.perf_counter() - started,
        "note": "synthetic data, random-init tiny backbone: mechanics and costs, not the paper's results",
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=2))
    print(render_table(summary))
    print(f"Wrote {output} ({summary['total_seconds']:.0f} s)")
    return summary


def render_table(summary: dict) -> str:
    memory_sizes = summary["arguments"]["memory_sizes"]
    lines = [
        f"| rung | best-of-N | mean-of-N | tokenizer floor | energy score | mode coverage | train step (ms) | peak train "
        f"memory ({memory_sizes}, MiB) | inference GFLOP | inference (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in summary["rungs"].values():
        samples = result["num_samples"]
        lines.append(
            f"| {result['name']} (N={samples}) | {result['best_of_n_loss']:.4f} | {result['mean_of_n_loss']:.4f} | "
            f"{'-' if result['tokenizer_floor'] is None else format(result['tokenizer_floor'], '.4f')} | "
            f"{result['energy_score']:.2f} | {result['mode_coverage']:.2f} | {result['train_step_seconds'] * 1e3:.0f} | "
            f"{result['peak_train_memory_mib']:.1f} | {result['inference_gflops']:.3f} | "
            f"{result['inference_seconds'] * 1e3:.0f} |"
        )
    lines.append(f"| copy the last context frame (no model) | {summary['copy_last_frame_loss']:.4f} | "
                 f"{summary['copy_last_frame_loss']:.4f} | - | - | - | - | - | - | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
