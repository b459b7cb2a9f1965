"""The synthetic experiments of `examples/` (`fork_world_experiment.py`, `multimodality_experiment.py`,
`train_demo_model.py`): a short fitting loop for tiny models on cached examples, backbone features and DeltaTok
feature pairs of a `ForkWorld`, delta tokens of a synthetic dataset (every alternative future included), and the
fork-world evaluation of a predictor from RGB pixels decoded from its samples.

The scripts run on random-init tiny backbones and synthetic clips: whatever these functions measure there proves the
mechanics (samples that fork where the data forks), not the quality of a model on real video.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import ForkWorld, collate_clips, fork_mode_coverage
from ..metrics.functional import generative_forecast_scores
from .optim import build_lr_scheduler, build_optimizer


def fit(
    model: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    num_examples: int,
    num_steps: int,
    *,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    warmup_steps: int,
    seed: int,
    description: str | None = None,
) -> list[float]:
    """
    AdamW (the package's parameter groups) with a linear warm-up, then a constant rate, on `batch_loss(indices)`:
    every step draws `batch_size` indices of the `num_examples` cached examples uniformly with replacement, from a
    generator seeded with `seed` (so two models fitted with the same seed see the same batches). The model is left in
    eval mode. Returns the loss of every step.
    """
    for name, value, minimum in (("num_examples", num_examples, 1), ("batch_size", batch_size, 1)):
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    for name, value in (("num_steps", num_steps), ("warmup_steps", warmup_steps)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}.")
    model.train()
    optimizer = build_optimizer(model, learning_rate, weight_decay)
    scheduler = build_lr_scheduler(optimizer, warmup_steps)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in tqdm(range(num_steps), desc=description):
        loss = batch_loss(torch.randint(0, num_examples, (batch_size,), generator=generator))
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def backbone_features(tokenizer, world: ForkWorld, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Frozen backbone features (`tokenizer.extract_features`) of every clip of `world` and of every branch's future.

    Returns:
        `(clips, futures)`: `(num_items, num_frames, num_patches, hidden_size)` and
        `(num_items, num_modes, num_future_frames, num_patches, hidden_size)`.
    """
    clips, futures = [], []
    for start in range(0, len(world), batch_size):
        items = [world[index] for index in range(start, min(start + batch_size, len(world)))]
        clips.append(tokenizer.extract_features(torch.stack([item["frames"] for item in items])))
        branch_frames = torch.stack([item["all_futures"] for item in items])  # (batch, K, F, 3, H, W)
        branch_features = tokenizer.extract_features(branch_frames.flatten(1, 2))  # (batch, K * F, N, D)
        futures.append(branch_features.unflatten(1, branch_frames.shape[1:3]))  # (batch, K, F, N, D)
    return torch.cat(clips), torch.cat(futures)


def feature_pairs(
    clips: torch.Tensor, futures: torch.Tensor, black: torch.Tensor, num_context_frames: int
) -> torch.Tensor:
    """
    Every (previous, current) feature pair a DeltaTok sees on these clips: the black frame -> the first frame,
    consecutive context frames, the last context frame -> each branch's first future frame, then along each branch.

    Args:
        clips: `(num_items, num_frames, N, D)`; the first `num_context_frames` frames are used.
        futures: `(num_items, num_modes, num_future_frames, N, D)`; `num_modes = 0` for clips without branches.
        black: `(N, D)` features of the black frame.

    Returns:
        `(num_pairs, 2, N, D)`.
    """
    num_items = clips.shape[0]
    context = torch.cat((black.expand(num_items, 1, *black.shape), clips[:, :num_context_frames]), dim=1)
    pairs = [torch.stack((context[:, :-1], context[:, 1:]), dim=2).flatten(0, 1)]  # (num_items * C, 2, N, D)
    for mode in range(futures.shape[1]):
        junction = clips[:, num_context_frames - 1 : num_context_frames]  # (num_items, 1, N, D)
        branch = torch.cat((junction, futures[:, mode]), dim=1)  # (num_items, 1 + F, N, D)
        pairs.append(torch.stack((branch[:, :-1], branch[:, 1:]), dim=2).flatten(0, 1))
    return torch.cat(pairs)


@torch.no_grad()
def encode_dataset(tokenizer, dataset: Sequence[dict], batch_size: int = 32) -> dict:
    """
    Delta tokens of every clip of `dataset` (`tokenizer.encode_frames`), and, when its items carry `all_futures`
    (`ForkWorld`, `SyntheticMultimodalMotion`), the tokens and features of the first future frame of every alternative
    future, plus the last context frame's features that decoding a forecast starts from.

    Returns:
        A dict with `delta_tokens (num_items, num_frames, D_token)` and `timestamps (num_items, num_frames)`; with
        branches also `modes (num_items,)` (the branch each clip took), `mode_tokens (num_items, num_modes, D_token)`,
        `mode_features (num_items, num_modes, N, D)` and `last_context_features (num_items, N, D)`.
    """
    tokens, timestamps, modes, mode_tokens, mode_features, last_context_features = [], [], [], [], [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc="encoding"):
        items = [dataset[index] for index in range(start, min(start + batch_size, len(dataset)))]
        batch = collate_clips(items)
        clip_tokens, clip_features = tokenizer.encode_frames(batch["frames"])
        tokens.append(clip_tokens)
        timestamps.append(batch["timestamps"])
        if "all_futures" in items[0]:
            num_context = items[0]["frames"].shape[0] - items[0]["all_futures"].shape[1]
            modes.append(torch.tensor([int(item["mode"]) for item in items]))
            futures = torch.stack([torch.as_tensor(item["all_futures"]) for item in items])  # (batch, K, F, 3, H, W)
            context = batch["frames"][:, :num_context]  # (batch, C, 3, H, W)
            num_clips, num_modes = futures.shape[:2]
            # One clip per (clip, branch): the shared context, then that branch's future.
            branch_clips = torch.cat((context[:, None].expand(-1, num_modes, -1, -1, -1, -1), futures), dim=2)
            branch_tokens, branch_features = tokenizer.encode_frames(branch_clips.flatten(0, 1))
            # first future frame only: (batch, K, D_token) and (batch, K, N, D)
            mode_tokens.append(branch_tokens[:, num_context].unflatten(0, (num_clips, num_modes)))
            mode_features.append(branch_features[:, num_context].unflatten(0, (num_clips, num_modes)))
            last_context_features.append(clip_features[:, num_context - 1])
    encoded = {"delta_tokens": torch.cat(tokens), "timestamps": torch.cat(timestamps)}
    if modes:
        encoded.update(
            modes=torch.cat(modes),
            mode_tokens=torch.cat(mode_tokens),
            mode_features=torch.cat(mode_features),
            last_context_features=torch.cat(last_context_features),
        )
    return encoded


def mean_squared_error(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Mean over the last two axes (patches, channels): `(..., N, D)` -> `(...)`."""
    return (first - second).square().mean(dim=(-2, -1))


def weighted_pixel_loss(
    decoder: nn.Module, features: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, grid_size: tuple[int, int]
) -> torch.Tensor:
    """
    Weighted squared error of an RGB decoder's pixels, normalised by the mean weight: `features (batch, N, D)`,
    `targets (batch, 3, H, W)` on 0..1, `weights (batch, 1, H, W)` (e.g. `fork_world_pixel_targets`' disc weights).

    Note: a weighted squared error, not the L1 of `train_rgb_decoder`: with a plain loss a short run spends itself on
    the background texture and leaves the small disc out, and the disc is all a fork-world mode reader looks at.
    """
    pixels = decoder(features, grid_size=grid_size).pixel_values  # (batch, 3, H, W), 0..1
    return (weights * (pixels - targets).square()).mean() / weights.mean()


def fit_rgb_decoder(
    decoder: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    grid_size: tuple[int, int],
    num_steps: int,
    **fit_kwargs,
) -> list[float]:
    """[`fit`] an RGB decoder with [`weighted_pixel_loss`] on `features (frames, N, D)` -> `targets (frames, 3, H, W)`
    (0..1) weighted by `weights (frames, 1, H, W)`; `fit_kwargs` as for [`fit`]. Returns the loss of every step."""

    def batch_loss(index):
        return weighted_pixel_loss(decoder, features[index], targets[index], weights[index], grid_size)

    return fit(decoder, batch_loss, features.shape[0], num_steps, description="RGB decoder", **fit_kwargs)


@torch.no_grad()
def decode_rgb(decoder: nn.Module, features: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """`(..., N, D)` features -> `(..., 3, H, W)` RGB on 0..255 (float, clamped) through an RGB decoder."""
    leading = features.shape[:-2]
    pixels = decoder(features.reshape(-1, *features.shape[-2:]), grid_size=grid_size).pixel_values  # (M, 3, H, W)
    return (pixels.clamp(0, 1) * 255).reshape(*leading, *pixels.shape[1:])


def read_modes(world: ForkWorld, items: Sequence[dict], frames: torch.Tensor) -> torch.Tensor:
    """The branch each of `frames (num_items, num_frames, 3, H, W)` shows at the first future step (-1 for none):
    `(num_items, num_frames)`."""
    return torch.stack([world.read_mode(frames[index], items[index], step=0) for index in range(len(items))])


@torch.no_grad()
def forecast_first_future_frame(
    model, cache: dict, num_samples: int, *, num_context_frames: int, seed: int, num_items: int | None = None
) -> torch.Tensor:
    """
    Decoded features of `num_samples` forecasts (1 for a deterministic model) of the first future frame of the first
    `num_items` (default: all) clips of an `encode_dataset` cache, the noise drawn from a generator seeded `seed + 1`.

    Returns:
        `(num_items, num_samples or 1, N, D)`.
    """
    model.eval()
    rows, context = slice(num_items), slice(num_context_frames)
    first_future = slice(num_context_frames, num_context_frames + 1)
    output = model.generate(
        delta_tokens=cache["delta_tokens"][rows, context],
        timestamps=cache["timestamps"][rows, context],
        future_timestamps=cache["timestamps"][rows, first_future],
        last_features=cache["last_context_features"][rows],
        num_samples=num_samples if model.config.use_best_of_many else 1,
        generator=torch.Generator().manual_seed(seed + 1),
    )
    return output.future_features[:, :, 0]


@torch.no_grad()
def evaluate_fork_world(
    model,
    cache: dict,
    decoder: nn.Module,
    world: ForkWorld,
    items: Sequence[dict],
    *,
    num_samples: int,
    num_context_frames: int,
    seed: int,
) -> dict:
    """
    Scores of a DeltaWorld's forecasts of the first future frame of held-out fork-world clips (`cache` from
    `encode_dataset(tokenizer, world)`, `items` the world's items in order). A deterministic model's single forecast
    counts as its `num_samples` samples.

    Returns a dict of floats: best-of-N and mean-sample feature MSE, best-of-N smooth-L1, energy score, feature-space
    mode coverage and diversity (`generative_forecast_scores`), and, read from the RGB pixels `decoder` makes of each
    sample, the fraction of branches some sample shows (`rgb_mode_coverage`, averaged over clips), the fraction of
    samples on some branch and on the clip's true branch. (The `best_of_20_*` keys name the default N = 20.)
    """
    # (items, samples, 1, N, D); the deterministic forecast repeated as its N "samples"
    samples = forecast_first_future_frame(
        model, cache, num_samples, num_context_frames=num_context_frames, seed=seed
    )[:, :, None]
    samples = samples.expand(-1, num_samples, -1, -1, -1)
    batch = torch.arange(samples.shape[0])
    true_features = cache["mode_features"][batch, cache["modes"]]  # (items, N, D)
    scores = generative_forecast_scores(
        samples=list(samples), target=list(true_features[:, None]), modes=list(cache["mode_features"][:, :, None])
    )
    feature_error = mean_squared_error(samples[:, :, 0], true_features[:, None])  # (items, samples)
    grid_size = (world.size // 16, world.size // 16)
    shown = read_modes(world, items, decode_rgb(decoder, samples[:, :, 0], grid_size))  # (items, samples)
    return {
        "best_of_20_feature_mse": feature_error.min(dim=1).values.mean().item(),
        "mean_sample_feature_mse": feature_error.mean().item(),
        "best_of_20_feature_smooth_l1": scores["best_of_n_loss"],
        "energy_score": scores["energy_score"],
        "rgb_mode_coverage": sum(fork_mode_coverage(row, world.num_modes) for row in shown) / len(items),
        "rgb_samples_on_a_branch": (shown >= 0).float().mean().item(),
        "rgb_samples_on_the_true_branch": (shown == cache["modes"][:, None]).float().mean().item(),
        "feature_mode_coverage": scores["mode_coverage"],
        "diversity": scores["diversity"],
    }


__all__ = [
    "backbone_features",
    "decode_rgb",
    "encode_dataset",
    "evaluate_fork_world",
    "feature_pairs",
    "fit",
    "fit_rgb_decoder",
    "forecast_first_future_frame",
    "mean_squared_error",
    "read_modes",
    "weighted_pixel_loss",
]
