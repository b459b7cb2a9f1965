#!/usr/bin/env python
"""Train the tiny demo pipeline bundled with deltatok-hf (`src/deltatok_hf/assets/demo_model/`) on a CPU, in minutes.

    python examples/train_demo_model.py

The demo has to show what the model is for: several different plausible futures. So it is trained on the fork world
(`deltatok_hf.data.ForkWorld`: a coloured disc reaches a junction, then turns left, goes straight or turns right,
equally likely), with the settings of `fork_world_experiment.py` (and its helpers, in
`deltatok_hf.training.experiments`), plus random views of
the bundled city clip so that the city part of `deltatok-hf demo` is not pure noise:

1. a tiny DeltaTok on backbone-feature pairs (the backbone is a tiny DINOv3-shaped ViT with **random, frozen
   weights**: no pretrained VFM can be downloaded here);
2. a tiny `DeltaTokRGBDecoder` (features -> pixels) on the backbone features of every training frame, the disc's
   pixels weighted up;
3. a tiny Best-of-Many DeltaWorld on cached delta tokens (tokenizer frozen);
4. held-out fork-world clips: mode coverage read from the decoded RGB pixels of 20 samples, best-of-20 feature error;
5. `DeltaWorldPipeline(world_model, rgb_decoder)` saved with `save_pretrained` (model_index.json + one folder per
   component) and a model card stating the time, the machine and the numbers.

Synthetic data and a random backbone: the result shows the mechanics (samples that fork where the data forks), it is
not a quality model.
"""

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting, DeltaWorldPipeline
from deltatok_hf.data import ForkWorld, demo_clip_path
from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig
from deltatok_hf.training import DataArguments, build_card_data, build_clip_dataset, render_model_card, write_json
from deltatok_hf.training.demo import fork_world_pixel_targets
from deltatok_hf.training.experiments import (
    backbone_features,
    encode_dataset,
    evaluate_fork_world,
    feature_pairs,
    fit,
    fit_rgb_decoder,
)

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "deltatok_hf" / "assets" / "demo_model"
# The fork world's frame rate (ForkWorld default): the pipeline's context spacing must match what the model saw.
FORK_FPS = 10.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=str, default=str(DEMO_DIR))
    parser.add_argument("--work_dir", type=str, default="outputs/demo_model_work", help="Summary JSON of the run.")
    data = parser.add_argument_group("data")
    data.add_argument("--frame_size", type=int, default=64)
    data.add_argument(
        "--num_modes", type=int, default=3,
        help="Fork-world branches (3: left / straight / right, the bundled demo's; 4 for the select-then-decode benchmark).",
    )
    data.add_argument(
        "--fork_speed", type=float, default=None,
        help="Disc speed in px per frame (default: ForkWorld's, a quarter of the frame; 4 branches at 64 px need <= 15.6).",
    )
    data.add_argument("--num_synthetic_videos", type=int, default=512, help="Fork-world training clips.")
    data.add_argument("--num_eval_items", type=int, default=64, help="Held-out fork-world clips for the card's numbers.")
    data.add_argument("--clip_views", type=int, default=128, help="Random 5-frame views of the bundled city clip.")
    stages = parser.add_argument_group("training (every stage: AdamW, linear warm-up, then constant)")
    stages.add_argument("--tokenizer_steps", type=int, default=1500)
    stages.add_argument("--decoder_steps", type=int, default=1000, help="RGB decoder steps.")
    stages.add_argument("--world_steps", type=int, default=600, help="DeltaWorld steps.")
    stages.add_argument("--batch_size", dest="train_batch_size", type=int, default=64, help="Every stage.")
    stages.add_argument("--learning_rate", type=float, default=1e-3, help="DeltaWorld and the RGB decoder.")
    stages.add_argument("--tokenizer_learning_rate", type=float, default=2e-3)
    stages.add_argument("--object_weight", type=float, default=20.0, help="RGB loss weight of the disc's pixels.")
    stages.add_argument("--weight_decay", type=float, default=0.4, help="DeltaWorld (the released recipe's 0.4).")
    stages.add_argument("--tokenizer_weight_decay", type=float, default=1e-2, help="DeltaTok and the RGB decoder.")
    stages.add_argument("--warmup_steps", type=int, default=20)
    stages.add_argument("--num_samples_train", type=int, default=32, help="Best-of-Many candidates K.")
    stages.add_argument("--layer_scale_init", type=float, default=0.1, help="Released: 1e-5 (too slow for minutes).")
    stages.add_argument("--tokenizer_intermediate_size", type=int, default=256, help="SwiGLU width of DeltaTok blocks.")
    parser.add_argument("--num_samples", type=int, default=20, help="Futures per held-out clip for the card's numbers.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_threads", type=int, default=1, help="torch CPU threads (tiny tensors: 1 is fastest).")
    args = parser.parse_args(argv)
    args.num_context_frames = 4  # the fork world's junction frame is the 4th (what `evaluate_fork_world` reads)
    return args


def city_clips(args) -> list[dict]:
    """`clip_views` random 5-frame views (random crop, 0.08-0.12 s apart, close to the fork world's 0.1 s) of the
    bundled city clip, decoded once."""
    arguments = DataArguments(
        train_data=str(demo_clip_path()), num_frames=args.num_context_frames + 1, frame_size=args.frame_size,
        clips_per_video=args.clip_views, time_stride_range=[0.08, 0.12], seed=args.seed,
    )  # fmt: skip
    return [{"frames": item["frames"], "timestamps": item["timestamps"]} for item in build_clip_dataset(arguments)]


@torch.no_grad()
def clip_features(tokenizer: DeltaTokModel, clips: list[dict], batch_size: int = 64) -> torch.Tensor:
    """Backbone features of every frame of `clips`: `(num_clips, num_frames, N, D)`."""
    frames = torch.stack([clip["frames"] for clip in clips])  # (num_clips, T, 3, H, W)
    return torch.cat([tokenizer.extract_features(chunk) for chunk in frames.split(batch_size)])


def loss_summary(losses: list[float]) -> dict:
    """What the card reads: steps, first loss, mean of the last 20."""
    return {"global_step": len(losses), "losses": {"1": losses[0]}, "final_loss": sum(losses[-20:]) / min(20, len(losses))}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    set_seed(args.seed)
    world_kwargs = dict(
        num_context_frames=args.num_context_frames, num_future_frames=1, size=args.frame_size, num_modes=args.num_modes,
        speed=args.fork_speed,
    )
    train_world = ForkWorld(args.num_synthetic_videos, seed=args.seed, **world_kwargs)
    eval_world = ForkWorld(args.num_eval_items, seed=args.seed + 1000, **world_kwargs)
    train_items = [train_world[index] for index in range(len(train_world))]
    eval_items = [eval_world[index] for index in range(len(eval_world))]
    city = city_clips(args)
    grid_size = (args.frame_size // 16, args.frame_size // 16)
    schedule = dict(batch_size=args.train_batch_size, warmup_steps=args.warmup_steps, seed=args.seed)

    # 1. DeltaTok. Note: as in fork_world_experiment.py, three deviations from the released recipe for a run of
    # minutes on 64 px frames: RoPE augmentation off, LayerScale from 0.1 instead of 1e-5, a narrower SwiGLU.
    tokenizer = DeltaTokModel(
        DeltaTokConfig.tiny(
            use_rope_augmentation=False,
            layer_scale_init=args.layer_scale_init,
            intermediate_size=args.tokenizer_intermediate_size,
        )
    ).eval()
    clips, futures = backbone_features(tokenizer, train_world)  # (items, T, N, D), (items, K, 1, N, D)
    city_frames_features = clip_features(tokenizer, city)  # (views, T, N, D)
    black = tokenizer.black_frame_features(args.frame_size, args.frame_size)
    no_branches = city_frames_features.new_empty(len(city), 0, 0, *city_frames_features.shape[2:])
    pairs = torch.cat(
        (
            feature_pairs(clips, futures, black, args.num_context_frames),
            feature_pairs(city_frames_features, no_branches, black, city_frames_features.shape[1]),
        )
    )  # (num_pairs, 2, N, D)
    tokenizer_losses = fit(
        tokenizer, lambda index: tokenizer(features=pairs[index], grid_size=grid_size).loss, pairs.shape[0],
        args.tokenizer_steps, learning_rate=args.tokenizer_learning_rate, weight_decay=args.tokenizer_weight_decay,
        description="DeltaTok", **schedule,
    )  # fmt: skip
    timings = {"tokenizer_seconds": time.perf_counter() - start}

    # 2. RGB decoder on the backbone features of every training frame: fork world (context and every branch) and city.
    decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(feature_size=64, image_size=args.frame_size))
    decoder.copy_feature_norm_from(tokenizer)
    fork_pixels, fork_weights = fork_world_pixel_targets(train_items, args.object_weight)  # disc pixels weigh more
    city_pixels = torch.stack([clip["frames"] for clip in city]).flatten(0, 1)  # (city_frames, 3, H, W)
    frame_features = torch.cat((clips.flatten(0, 1), futures.flatten(0, 2), city_frames_features.flatten(0, 1)))
    frame_targets = torch.cat((fork_pixels, city_pixels)).float() / 255  # (frames, 3, H, W) on 0..1
    pixel_weights = torch.cat((fork_weights, torch.ones(city_pixels.shape[0], 1, *city_pixels.shape[2:])))

    decoder_losses = fit_rgb_decoder(
        decoder, frame_features, frame_targets, pixel_weights, grid_size, args.decoder_steps,
        learning_rate=args.learning_rate, weight_decay=args.tokenizer_weight_decay, **schedule,
    )  # fmt: skip
    timings["rgb_decoder_seconds"] = time.perf_counter() - start - sum(timings.values())

    # 3. Best-of-Many DeltaWorld on cached delta tokens of both sources (5 tokens per clip each).
    train_cache = encode_dataset(tokenizer, train_world)
    eval_cache = encode_dataset(tokenizer, eval_world)
    city_cache = encode_dataset(tokenizer, city)
    tokens = torch.cat((train_cache["delta_tokens"], city_cache["delta_tokens"]))  # (clips, 5, D)
    timestamps = torch.cat((train_cache["timestamps"], city_cache["timestamps"]))  # (clips, 5)
    config = DeltaWorldConfig.tiny(
        use_best_of_many=True, num_samples_train=args.num_samples_train, layer_scale_init=args.layer_scale_init
    )
    config.num_samples_eval = args.num_samples
    set_seed(args.seed)
    world = DeltaWorldForForecasting.from_tokenizer(tokenizer, config)
    world_losses = fit(
        world, lambda index: world(delta_tokens=tokens[index], timestamps=timestamps[index]).loss, tokens.shape[0],
        args.world_steps, learning_rate=args.learning_rate, weight_decay=args.weight_decay, description="DeltaWorld",
        **schedule,
    )  # fmt: skip
    timings["deltaworld_seconds"] = time.perf_counter() - start - sum(timings.values())

    # 4. Held-out fork-world clips: coverage from decoded RGB pixels, best-of-N feature error.
    results = evaluate_fork_world(
        world, eval_cache, decoder, eval_world, eval_items, num_samples=args.num_samples,
        num_context_frames=args.num_context_frames, seed=args.seed,
    )  # fmt: skip
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start

    # 5. The pipeline, as the package ships it.
    pipe = DeltaWorldPipeline(
        world_model=world.eval(), rgb_decoder=decoder.eval(), size=args.frame_size, context_frames=args.num_context_frames,
        context_interval=1 / FORK_FPS,
    )  # fmt: skip
    output_dir = Path(args.output_dir)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    pipe.save_pretrained(output_dir)
    machine = f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs, {args.num_threads} torch thread(s)"
    card = render_model_card(
        "demo_model_template.md",
        build_card_data("deltaworld", tags=["deltaworld", "demo", "not-for-evaluation"]),
        minutes=f"{seconds / 60:.1f}",
        cpu_minutes=f"{cpu_seconds / 60:.1f}",
        machine=machine,
        args=vars(args),
        tokenizer_summary=loss_summary(tokenizer_losses),
        decoder_summary=loss_summary(decoder_losses),
        world_summary=loss_summary(world_losses),
        results=results,
        num_parameters=sum(p.numel() for p in world.parameters()) + sum(p.numel() for p in decoder.parameters()),
    )
    card.save(str(output_dir / "README.md"))
    summary = {"seconds": seconds, "cpu_seconds": cpu_seconds, "timings": timings, "machine": machine, "results": results}
    write_json(Path(args.work_dir) / "demo_summary.json", {**summary, "settings": vars(args)})
    size_mb = sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file()) / 2**20
    print(
        f"Saved the demo pipeline to {output_dir} ({size_mb:.1f} MB) after {seconds / 60:.1f} min wall, "
        f"{cpu_seconds / 60:.1f} min CPU. Held-out fork world, {args.num_samples} samples: RGB mode coverage "
        f"{results['rgb_mode_coverage']:.2f}, best-of-{args.num_samples} feature MSE {results['best_of_20_feature_mse']:.4f} "
        f"(one sample on average {results['mean_sample_feature_mse']:.4f})."
    )
    return summary


if __name__ == "__main__":
    main()
