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
import json
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.data import ForkWorld
from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig
from deltatok_hf.training import write_json
from deltatok_hf.training.demo import fork_world_pixel_targets
from deltatok_hf.training.experiments import (
    backbone_features,
    decode_rgb,
    encode_dataset,
    evaluate_fork_world,
    feature_pairs,
    fit,
    fit_rgb_decoder,
    forecast_first_future_frame,
    mean_squared_error,
    read_modes,
)


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
    schedule = dict(batch_size=args.train_batch_size, warmup_steps=args.warmup_steps, seed=args.seed)

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
        tokenizer, lambda index: tokenizer(features=pairs[index], grid_size=grid_size).loss, pairs.shape[0],
        args.tokenizer_steps, learning_rate=args.tokenizer_learning_rate, weight_decay=args.tokenizer_weight_decay,
        description="DeltaTok", **schedule,
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
    # The disc's pixels weigh `object_weight` (see `weighted_pixel_loss`); targets in the order of frame_features.
    frame_pixels, pixel_weights = fork_world_pixel_targets(train_items, args.object_weight)
    frame_targets = frame_pixels.float() / 255  # (num_frames_total, 3, H, W) on 0..1

    decoder_losses = fit_rgb_decoder(
        decoder, frame_features, frame_targets, pixel_weights, grid_size, args.decoder_steps,
        learning_rate=args.learning_rate, weight_decay=args.tokenizer_weight_decay, **schedule,
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
    evaluation = dict(num_samples=args.num_samples, num_context_frames=args.num_context_frames, seed=args.seed)
    pictures = {}
    for name, use_best_of_many in (("best_of_many", True), ("deterministic", False)):
        config = DeltaWorldConfig.tiny(
            use_best_of_many=use_best_of_many,
            num_samples_train=args.num_samples_train,
            layer_scale_init=args.layer_scale_init,
        )
        set_seed(args.seed)
        model = DeltaWorldForForecasting.from_tokenizer(tokenizer, config)
        tokens, timestamps = train_cache["delta_tokens"], train_cache["timestamps"]

        def predictor_loss(index, model=model):
            return model(delta_tokens=tokens[index], timestamps=timestamps[index]).loss

        losses = fit(
            model, predictor_loss, tokens.shape[0], args.max_train_steps, learning_rate=args.learning_rate,
            weight_decay=args.weight_decay, description=name, **schedule,
        )  # fmt: skip
        scores = evaluate_fork_world(model, eval_cache, decoder, eval_world, eval_items, **evaluation)
        results[name] = {"final_train_loss": sum(losses[-20:]) / 20, **scores}
        timings[f"{name}_seconds"] = time.perf_counter() - start - sum(timings.values())
        if args.output_dir:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            model.save_pretrained(Path(args.output_dir) / name)
            shown = forecast_first_future_frame(
                model, eval_cache, 6, num_context_frames=args.num_context_frames, seed=args.seed, num_items=4
            )  # (4, 6 or 1, N, D)
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
