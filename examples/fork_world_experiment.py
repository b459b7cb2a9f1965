#!/usr/bin/env python
"""Best-of-Many vs deterministic DeltaWorld on the fork world, scored on decoded features and on decoded RGB pixels.

    python examples/fork_world_experiment.py --output_json outputs/fork_world.json --output_dir outputs/fork_world

`ForkWorld` clips: a colourful disc on a textured background drives along a diagonal for 4 context frames, then turns
left, goes straight or turns right (3 equally likely branches, 16 px = one patch per frame at 64 x 64 px). Everything
is trained here, from random initialisation, on the CPU:

1. a tiny DeltaTok (tiny DINOv3-shaped backbone with **random, frozen weights**: no pretrained VFM can be downloaded
   here) on feature pairs of the training clips, every branch included; then checked directly: decoded features of
   different branches' futures must differ much more than the reconstruction error;
2. a tiny `DeltaTokRGBDecoder` (features -> pixels) on the backbone features of the training frames, with the pixels
   the disc changes weighted up (`--object_weight`);
3. two tiny DeltaWorlds, identical (same tokenizer, cached delta tokens, seed, steps, optimizer, batches) except
   `use_best_of_many` (K noise queries per target vs the deterministic ablation's one learned query).

On held-out clips each predictor forecasts the first future frame (20 samples for Best-of-Many; the deterministic
model's single forecast counts as its 20 samples) and we report

- best-of-20 error of the decoded features (after the DeltaTok decoder) to the clip's true future: mean squared error
  and the official smooth-L1 (beta 0.1); ratio Best-of-Many / deterministic;
- mode coverage read from **RGB pixels**: each sample's features go through the RGB decoder, `read_fork_mode` finds
  the disc by its colour and names the branch it is on (or none); coverage is the fraction of the 3 branches some
  sample shows, averaged over clips;
- the energy score of the samples' decoded features (`deltatok_hf.metrics.functional`, lower is better), and the
  feature-space mode coverage of `generative_forecast_scores`.

All of it is synthetic data and random-init backbones: the numbers prove the mechanics of Best-of-Many (samples that
fork where the data forks), not the quality of any model on real video.
"""

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.data import ForkWorld, fork_mode_coverage
from deltatok_hf.metrics.functional import generative_forecast_scores
from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig
from deltatok_hf.training import build_lr_scheduler, build_optimizer, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multimodality_experiment import encode_dataset  # noqa: E402  (the example beside this one)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("fork world")
    data.add_argument("--num_train_items", type=int, default=512)
    data.add_argument("--num_eval_items", type=int, default=64)
    data.add_argument("--num_context_frames", type=int, default=4)
    data.add_argument("--num_modes", type=int, default=3)
    data.add_argument("--frame_size", type=int, default=64)
    stages = parser.add_argument_group("training (every stage: AdamW, linear warm-up, then constant)")
    stages.add_argument("--tokenizer_steps", type=int, default=1500)
    stages.add_argument("--decoder_steps", type=int, default=1000, help="RGB decoder steps.")
    stages.add_argument("--max_train_steps", type=int, default=600, help="DeltaWorld steps (each predictor).")
    stages.add_argument("--train_batch_size", type=int, default=64, help="Every stage.")
    stages.add_argument("--learning_rate", type=float, default=1e-3, help="DeltaWorld and the RGB decoder.")
    stages.add_argument("--tokenizer_learning_rate", type=float, default=2e-3)
    stages.add_argument(
        "--object_weight", type=float, default=20.0,
        help="RGB decoder loss weight of the pixels the disc changes (the disc is ~3%% of a frame).",
    )  # fmt: skip
    stages.add_argument("--weight_decay", type=float, default=0.4, help="DeltaWorld (the released recipe's 0.4).")
    stages.add_argument("--tokenizer_weight_decay", type=float, default=1e-2, help="DeltaTok and the RGB decoder.")
    stages.add_argument("--warmup_steps", type=int, default=20)
    stages.add_argument("--num_samples_train", type=int, default=32, help="Best-of-Many candidates K.")
    stages.add_argument(
        "--layer_scale_init", type=float, default=0.1,
        help="LayerScale start of tokenizer and predictor blocks (released: 1e-5, too slow to learn in minutes).",
    )  # fmt: skip
    stages.add_argument(
        "--tokenizer_intermediate_size", type=int, default=256,
        help="SwiGLU width of the tiny DeltaTok blocks (the tiny preset keeps the ViT-B template's 2048).",
    )  # fmt: skip
    parser.add_argument("--num_samples", type=int, default=20, help="Futures drawn per clip at evaluation.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--num_threads", type=int, default=1,
        help="torch CPU threads; the tensors are tiny, so more threads cost more than they give on a shared CPU.",
    )  # fmt: skip
    parser.add_argument("--output_json", type=str, default=None)
    parser.add_argument("--output_dir", type=str, default=None, help="Saves the four models and a picture of samples.")
    return parser.parse_args(argv)


def fit(model, batch_loss, num_examples: int, num_steps: int, args, learning_rate: float, weight_decay: float, desc):
    """AdamW on `batch_loss(indices)` over random batches of `num_examples` cached examples; returns the losses."""
    model.train()
    optimizer = build_optimizer(model, learning_rate, weight_decay)
    scheduler = build_lr_scheduler(optimizer, args.warmup_steps)
    generator = torch.Generator().manual_seed(args.seed)
    losses = []
    for _ in tqdm(range(num_steps), desc=desc):
        loss = batch_loss(torch.randint(0, num_examples, (args.train_batch_size,), generator=generator))
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def backbone_features(tokenizer: DeltaTokModel, world: ForkWorld, batch_size: int = 64) -> tuple[torch.Tensor, ...]:
    """Frozen backbone features of every clip and of every branch's future:
    `(num_items, num_frames, N, D)` and `(num_items, num_modes, num_future, N, D)`."""
    clips, futures = [], []
    for start in range(0, len(world), batch_size):
        items = [world[index] for index in range(start, min(start + batch_size, len(world)))]
        clips.append(tokenizer.extract_features(torch.stack([item["frames"] for item in items])))
        branch_frames = torch.stack([item["all_futures"] for item in items])  # (batch, K, F, 3, H, W)
        futures.append(tokenizer.extract_features(branch_frames.flatten(1, 2)).unflatten(1, branch_frames.shape[1:3]))
    return torch.cat(clips), torch.cat(futures)


def feature_pairs(clips: torch.Tensor, futures: torch.Tensor, black: torch.Tensor, num_context: int) -> torch.Tensor:
    """Every (previous, current) pair a DeltaTok sees on these clips: black -> first frame, consecutive context frames,
    last context frame -> each branch's first frame, then along each branch. `(num_pairs, 2, N, D)`."""
    num_items = clips.shape[0]
    context = torch.cat((black.expand(num_items, 1, *black.shape), clips[:, :num_context]), dim=1)
    pairs = [torch.stack((context[:, :-1], context[:, 1:]), dim=2).flatten(0, 1)]  # (num_items * C, 2, N, D)
    for mode in range(futures.shape[1]):
        branch = torch.cat((clips[:, num_context - 1 : num_context], futures[:, mode]), dim=1)  # (items, 1 + F, N, D)
        pairs.append(torch.stack((branch[:, :-1], branch[:, 1:]), dim=2).flatten(0, 1))
    return torch.cat(pairs)


def mean_squared_error(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Mean over the last two axes (patches, channels): `(..., N, D)` -> `(...)`."""
    return (first - second).square().mean(dim=(-2, -1))


@torch.no_grad()
def decode_rgb(decoder: DeltaTokRGBDecoder, features: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """`(..., N, D)` features -> `(..., 3, H, W)` RGB on 0..255 (float, clamped)."""
    leading = features.shape[:-2]
    pixels = decoder(features.reshape(-1, *features.shape[-2:]), grid_size=grid_size).pixel_values
    return (pixels.clamp(0, 1) * 255).reshape(*leading, *pixels.shape[1:])


def read_modes(world: ForkWorld, items: list[dict], frames: torch.Tensor) -> torch.Tensor:
    """Branch shown in `frames (num_items, num_frames, 3, H, W)` of the first future step, -1 for none."""
    return torch.stack([world.read_mode(frames[index], items[index], step=0) for index in range(len(items))])


@torch.no_grad()
def forecast_first_future_frame(model, cache: dict, num_samples: int, args, num_items: int | None = None):
    """Decoded features of `num_samples` forecasts (1 for the deterministic model) of the first future frame of the
    first `num_items` cached clips: `(num_items, num_samples, N, D)`."""
    model.eval()
    rows, context = slice(num_items), slice(args.num_context_frames)
    first_future = slice(args.num_context_frames, args.num_context_frames + 1)
    output = model.generate(
        delta_tokens=cache["delta_tokens"][rows, context],
        timestamps=cache["timestamps"][rows, context],
        future_timestamps=cache["timestamps"][rows, first_future],
        last_features=cache["last_context_features"][rows],
        num_samples=num_samples if model.config.use_best_of_many else 1,
        generator=torch.Generator().manual_seed(args.seed + 1),
    )
    return output.future_features[:, :, 0]


@torch.no_grad()
def evaluate(model, cache: dict, decoder, world: ForkWorld, items: list[dict], args) -> dict:
    # (items, samples, 1, N, D); the deterministic forecast repeated as its 20 "samples"
    samples = forecast_first_future_frame(model, cache, args.num_samples, args)[:, :, None]
    samples = samples.expand(-1, args.num_samples, -1, -1, -1)
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


def save_picture(path: Path, world: ForkWorld, items: list[dict], rows: dict, num_items: int = 4) -> None:
    """One row per clip: last context frame, the true branches, then decoded samples of each predictor."""
    from PIL import Image

    lines = []
    for index in range(num_items):
        last_context = items[index]["frames"][world.num_context_frames - 1].float()
        tiles = [last_context, *items[index]["all_futures"][:, 0].float()]
        for pictures in rows.values():
            tiles.extend(pictures[index])
        lines.append(torch.cat(tiles, dim=2))  # (3, H, tiles * W)
    image = torch.cat(lines, dim=1).permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2), Image.NEAREST).save(path)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    timings = {}
    set_seed(args.seed)
    world_kwargs = dict(
        num_context_frames=args.num_context_frames, num_future_frames=1, size=args.frame_size, num_modes=args.num_modes
    )
    train_world = ForkWorld(args.num_train_items, seed=args.seed, **world_kwargs)
    eval_world = ForkWorld(args.num_eval_items, seed=args.seed + 1000, **world_kwargs)
    eval_items = [eval_world[index] for index in range(len(eval_world))]
    grid_size = (args.frame_size // 16, args.frame_size // 16)

    # 1. DeltaTok. Note: three deviations from the released recipe, for a run of minutes on 64 px frames: RoPE
    # augmentation off, LayerScale starting at 0.1 instead of 1e-5, a narrower SwiGLU (see the arguments).
    tokenizer_config = DeltaTokConfig.tiny(
        use_rope_augmentation=False,
        layer_scale_init=args.layer_scale_init,
        intermediate_size=args.tokenizer_intermediate_size,
    )
    tokenizer = DeltaTokModel(tokenizer_config).eval()
    clips, futures = backbone_features(tokenizer, train_world)
    black = tokenizer.black_frame_features(args.frame_size, args.frame_size)
    pairs = feature_pairs(clips, futures, black, args.num_context_frames)
    tokenizer_losses = fit(
        tokenizer,
        lambda index: tokenizer(features=pairs[index], grid_size=grid_size).loss,
        pairs.shape[0], args.tokenizer_steps, args, args.tokenizer_learning_rate, args.tokenizer_weight_decay,
        "DeltaTok",
    )  # fmt: skip
    timings["tokenizer_seconds"] = time.perf_counter() - start
    train_cache = encode_dataset(tokenizer, train_world)
    eval_cache = encode_dataset(tokenizer, eval_world)

    # Do decoded features keep the branches apart? Reconstruct every branch's first future frame from its true token.
    junction_features = eval_cache["last_context_features"][:, None].expand_as(eval_cache["mode_features"])
    with torch.no_grad():
        reconstructions = tokenizer.decode(eval_cache["mode_tokens"], junction_features)  # (items, K, N, D)
    reconstruction_error = mean_squared_error(reconstructions, eval_cache["mode_features"]).mean().item()
    different = ~torch.eye(args.num_modes, dtype=torch.bool)
    branch_distances = mean_squared_error(reconstructions[:, :, None], reconstructions[:, None])  # (items, K, K)
    branch_distance = branch_distances[:, different].mean().item()

    # 2. RGB decoder on backbone features of every training frame (context and every branch).
    decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(feature_size=64, image_size=args.frame_size))
    decoder.copy_feature_norm_from(tokenizer)
    frame_features = torch.cat((clips.flatten(0, 1), futures.flatten(0, 2)))  # (num_frames_total, N, D)
    train_items = [train_world[index] for index in range(len(train_world))]
    frame_pixels = torch.cat(
        (
            torch.stack([item["frames"] for item in train_items]).flatten(0, 1),
            torch.stack([item["all_futures"] for item in train_items]).flatten(0, 2),
        )
    )  # (num_frames_total, 3, H, W), the order of frame_features
    backgrounds = torch.stack([item["background"] for item in train_items])  # (num_items, 3, H, W)
    frame_backgrounds = torch.cat(
        (
            backgrounds.repeat_interleave(train_world.num_frames, dim=0),
            backgrounds.repeat_interleave(args.num_modes, dim=0),
        )
    )  # (num_frames_total, 3, H, W)
    # Note: a weighted squared error, not the L1 of `train_rgb_decoder.py`: with a plain loss the decoder spends its
    # few minutes on the texture and leaves the (small) disc out, and the disc is all the mode reader looks at.
    pixel_weights = 1 + (args.object_weight - 1) * (frame_pixels != frame_backgrounds).any(dim=1, keepdim=True).float()

    def decoder_loss(index):
        pixels = decoder(frame_features[index], grid_size=grid_size).pixel_values  # (batch, 3, H, W), 0..1
        error = pixel_weights[index] * (pixels - frame_pixels[index].float() / 255).square()
        return error.mean() / pixel_weights[index].mean()

    decoder_losses = fit(
        decoder, decoder_loss, frame_features.shape[0], args.decoder_steps, args, args.learning_rate,
        args.tokenizer_weight_decay, "RGB decoder",
    )  # fmt: skip
    timings["rgb_decoder_seconds"] = time.perf_counter() - start - sum(timings.values())
    # Calibration of the pixel reader: the true branches and their DeltaTok reconstructions, through the RGB decoder.
    modes = torch.arange(args.num_modes).expand(len(eval_items), -1)
    true_read = read_modes(eval_world, eval_items, decode_rgb(decoder, eval_cache["mode_features"], grid_size))
    reconstruction_read = read_modes(eval_world, eval_items, decode_rgb(decoder, reconstructions, grid_size))
    results = {
        "tokenizer": {
            "final_loss": sum(tokenizer_losses[-20:]) / 20,
            "reconstruction_mse": reconstruction_error,
            "mse_between_decoded_branches": branch_distance,
            "branch_separation_over_reconstruction_error": branch_distance / reconstruction_error,
        },
        "rgb_decoder": {
            "final_weighted_mse": sum(decoder_losses[-20:]) / 20,
            "reads_true_branch_from_decoded_true_features": (true_read == modes).float().mean().item(),
            "reads_true_branch_from_decoded_reconstructions": (reconstruction_read == modes).float().mean().item(),
        },
    }

    # 3. Two predictors, identical but for Best-of-Many.
    pictures = {}
    for name, use_best_of_many in (("best_of_many", True), ("deterministic", False)):
        config = DeltaWorldConfig.tiny(
            use_best_of_many=use_best_of_many,
            num_samples_train=args.num_samples_train,
            layer_scale_init=args.layer_scale_init,
        )
        config.tokenizer_config = copy.deepcopy(tokenizer.config)
        set_seed(args.seed)
        model = DeltaWorldForForecasting(config)
        model.tokenizer.load_state_dict(tokenizer.state_dict())
        tokens, timestamps = train_cache["delta_tokens"], train_cache["timestamps"]

        def predictor_loss(index, model=model):
            return model(delta_tokens=tokens[index], timestamps=timestamps[index]).loss

        losses = fit(
            model, predictor_loss, tokens.shape[0], args.max_train_steps, args, args.learning_rate, args.weight_decay,
            name,
        )  # fmt: skip
        scores = evaluate(model, eval_cache, decoder, eval_world, eval_items, args)
        results[name] = {"final_train_loss": sum(losses[-20:]) / 20, **scores}
        timings[f"{name}_seconds"] = time.perf_counter() - start - sum(timings.values())
        if args.output_dir:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            model.save_pretrained(Path(args.output_dir) / name)
            shown = forecast_first_future_frame(model, eval_cache, 6, args, num_items=4)  # (4, 6 or 1, N, D)
            pictures[name] = decode_rgb(decoder, shown, grid_size)

    bom, deterministic = results["best_of_many"], results["deterministic"]
    results["ratio_best_of_20_feature_mse"] = bom["best_of_20_feature_mse"] / deterministic["best_of_20_feature_mse"]
    results["ratio_best_of_20_feature_smooth_l1"] = (
        bom["best_of_20_feature_smooth_l1"] / deterministic["best_of_20_feature_smooth_l1"]
    )
    results["chance_coverage_one_sample"] = 1 / args.num_modes
    results["seconds"] = time.perf_counter() - start
    results["cpu_seconds"] = time.process_time() - cpu_start
    results["timings"] = timings
    results["settings"] = vars(args)
    if args.output_dir:
        tokenizer.save_pretrained(Path(args.output_dir) / "deltatok")
        decoder.save_pretrained(Path(args.output_dir) / "rgb_decoder")
        save_picture(Path(args.output_dir) / "samples.png", eval_world, eval_items, pictures)
    print(json.dumps({key: value for key, value in results.items() if key != "settings"}, indent=2))
    if args.output_json:
        write_json(args.output_json, results)
    return results


if __name__ == "__main__":
    main()
