#!/usr/bin/env python
"""Evaluate DeltaWorld forecasts on VSPW / Cityscapes / KITTI (with a task head), a folder of videos or synthetic clips.

    # the paper's benchmark protocol (frames 512 on the short side, 20 samples, 4 context frames, horizons 1 and 3)
    accelerate launch examples/evaluate_forecasting.py --model path/to/deltaworld --dataset cityscapes \
        --data_root /data/cityscapes --head path/to/cityscapes-head --output_dir eval/cityscapes
    # feature-space scores only: any folder of videos, or the synthetic multimodal clips (adds mode coverage)
    accelerate launch examples/evaluate_forecasting.py --model path/to/deltaworld --dataset videos --data_root clips/

For each context / horizon pair, the window's last `context + horizon` frames are used: `context` frames are encoded,
`num_samples` futures are rolled out, and every future step is scored. Rows (official `training/world.py`):

- best-of-N: the sample closest to the true future features (smooth-L1, beta 0.1) *at the last step*, used for all
  steps of the horizon;
- mean-of-N: the mean of the samples' features;
- copy-last: the last context frame's features repeated (the "nothing moves" baseline);
- present: the true future frame's features (an oracle: the head's own accuracy, the upper bound).

The task head turns each row's features into segmentation (dataset mIoU, classes pooled over all windows) or depth
(RMSE pooled over all valid pixels). Feature-space scores: smooth-L1 per row and step, the energy score and the
diversity (mean pairwise distance) of the sample set, and on synthetic clips the mode coverage.

Writes `results.json` and `results.md` into `--output_dir`.
"""

import argparse
import json
import logging
import math
from collections import defaultdict
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import PretrainedConfig

from deltatok_hf import DeltaWorldForForecasting
from deltatok_hf.metrics.functional import (
    energy_score,
    intersection_over_union,
    mean_pairwise_distance,
    mode_coverage,
    smooth_l1_per_step,
)
from deltatok_hf.models.heads import DeltaTokDepthHead, DeltaTokSegmentationHead


# The dataset readers live next to this script (examples/ is on sys.path when it runs).
from forecasting_datasets import (
    DEFAULT_TIME_STRIDE_SECONDS,
    IGNORE_INDEX,
    SyntheticWindows,
    VideoFolderWindows,
    align_to_labels,
    build_labelled_dataset,
    collate_windows,
    merge_square_crops,
    split_into_square_crops,
)


logger = get_logger(__name__)

DATASETS = ("vspw", "cityscapes", "kitti", "synthetic", "videos")
ROWS = ("best_of_n", "mean_of_n", "copy_last", "present")
ROW_TITLES = {
    "best_of_n": "best-of-N",
    "mean_of_n": "mean-of-N",
    "copy_last": "copy-last",
    "present": "present (oracle)",
}
# Smooth-L1 beta of the official evaluation criterion (`loss_beta` in training/world.py).
SMOOTH_L1_BETA = 0.1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=str, required=True, help="DeltaWorld folder or Hub id.")
    parser.add_argument("--dataset", type=str, required=True, choices=DATASETS)
    parser.add_argument("--data_root", type=str, default=None, help="Local dataset root (nothing is downloaded).")
    parser.add_argument("--split", type=str, default="val", help="VSPW / Cityscapes split.")
    parser.add_argument("--split_file", type=str, default=None, help="KITTI split list (e.g. the Eigen test list).")
    parser.add_argument("--head", type=str, default=None, help="Converted task head folder (segmentation or depth).")
    parser.add_argument("--num_samples", type=int, default=20, help="Futures sampled per window.")
    parser.add_argument("--context", type=int, default=4, help="Context frames.")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 3], help="Future frames per rollout.")
    parser.add_argument("--size", type=int, default=512, help="Frame short side (official 512; a multiple of 16).")
    parser.add_argument(
        "--time_stride_seconds",
        type=float,
        default=None,
        help="Spacing of the window's frames (default: the official one of the dataset).",
    )
    parser.add_argument("--batch_size", type=int, default=1, help="Windows per batch and process.")
    parser.add_argument("--max_windows", type=int, default=None, help="Evaluate only the first windows.")
    parser.add_argument("--num_synthetic_videos", type=int, default=64, help="Clips of --dataset synthetic.")
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=str, required=True)
    args = parser.parse_args(argv)

    if args.num_samples < 1:
        raise ValueError(f"--num_samples must be >= 1, got {args.num_samples}.")
    if args.context < 1:
        raise ValueError(f"--context must be >= 1, got {args.context}.")
    if not args.horizons or min(args.horizons) < 1:
        raise ValueError(f"--horizons must be positive integers, got {args.horizons}.")
    if args.size <= 0 or args.size % 16:
        raise ValueError(f"--size must be a positive multiple of 16 (the patch size), got {args.size}.")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}.")
    if args.dataset in ("vspw", "cityscapes", "kitti", "videos") and args.data_root is None:
        raise ValueError(f"--data_root is required for --dataset {args.dataset}.")
    if args.head is not None and args.dataset in ("synthetic", "videos"):
        raise ValueError(f"--head needs a labelled dataset (vspw, cityscapes, kitti), got --dataset {args.dataset}.")
    args.horizons = sorted(set(args.horizons))
    return args


def load_head(path: str) -> DeltaTokSegmentationHead | DeltaTokDepthHead:
    """Load a converted head, picking the class from its `config.json`."""
    config_dict, _ = PretrainedConfig.get_config_dict(path)
    model_type = config_dict.get("model_type")
    head_classes = {
        DeltaTokSegmentationHead.config_class.model_type: DeltaTokSegmentationHead,
        DeltaTokDepthHead.config_class.model_type: DeltaTokDepthHead,
    }
    if model_type not in head_classes:
        raise ValueError(f"--head {path} has model_type {model_type!r}; expected one of {sorted(head_classes)}.")
    return head_classes[model_type].from_pretrained(path).eval()


def build_dataset(args):
    """The evaluation windows (`context + max(horizons)` frames each) of `--dataset`."""
    num_frames = args.context + max(args.horizons)
    if args.dataset == "synthetic":
        dataset = SyntheticWindows(
            num_videos=args.num_synthetic_videos,
            num_frames=num_frames,
            num_context_frames=args.context,
            size=args.size,
            seed=args.seed,
        )
    elif args.dataset == "videos":
        stride = args.time_stride_seconds or DEFAULT_TIME_STRIDE_SECONDS["videos"]
        dataset = VideoFolderWindows(
            args.data_root, num_frames=num_frames, frame_size=args.size, time_stride_seconds=stride
        )
    else:
        dataset = build_labelled_dataset(
            args.dataset,
            args.data_root,
            num_frames=num_frames,
            frame_size=args.size,
            split=args.split,
            split_file=args.split_file,
            time_stride_seconds=args.time_stride_seconds,
        )
    if len(dataset) == 0:
        raise ValueError(f"No evaluation windows found for --dataset {args.dataset} under {args.data_root}.")
    if args.max_windows is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(args.max_windows, len(dataset))))
    return dataset


def row_features(samples, target, context_features) -> dict:
    """Features of every row: `(batch, horizon, num_patches, hidden_size)` each, plus the best sample's index.

    `samples` `(batch, num_samples, horizon, N, D)`, `target` `(batch, horizon, N, D)`, `context_features`
    `(batch, context, N, D)`.
    """
    horizon = target.shape[1]
    # (batch, num_samples, horizon); the official best-of-N picks on the last step only
    sample_losses = smooth_l1_per_step(samples, target[:, None], SMOOTH_L1_BETA)
    best_index = sample_losses[:, :, -1].argmin(dim=1)
    batch_index = torch.arange(samples.shape[0], device=samples.device)
    return {
        "best_of_n": samples[batch_index, best_index],
        "mean_of_n": samples.mean(dim=1),
        "copy_last": context_features[:, -1:].expand(-1, horizon, -1, -1),
        "present": target,
    }


def apply_head(head, features, grid_size, label_size, layout) -> torch.Tensor:
    """Head on `(crops * batch, N, D)` features -> class ids or depth `(crops * batch, H, W)` on the label halves."""
    if isinstance(head, DeltaTokSegmentationHead):
        logits = head(features, grid_size=grid_size).logits.float()
        return align_to_labels(logits, label_size, layout).argmax(dim=1)
    depth = head(features, grid_size=grid_size).predicted_depth.float()
    return align_to_labels(depth, label_size, layout)[:, 0]


def segmentation_confusion(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-map confusion matrices `(batch, num_classes, num_classes)` (rows = label), pixels labelled 255 dropped."""
    confusions = []
    for prediction, label in zip(predictions, labels):
        keep = label != IGNORE_INDEX
        codes = label[keep] * num_classes + prediction[keep]
        confusions.append(torch.bincount(codes, minlength=num_classes * num_classes))
    return torch.stack(confusions).view(-1, num_classes, num_classes)


def depth_errors(predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-map `(squared error sum, valid pixels)` `(batch, 2)` over pixels with depth > 0 (official `_valid_depth`)."""
    valid = labels > 0
    squared = (predictions.double() - labels.double()).square() * valid
    return torch.stack([squared.flatten(1).sum(1), valid.flatten(1).sum(1).double()], dim=1)


@torch.no_grad()
def evaluate_horizon(model, head, batch, context: int, horizon: int, num_samples: int, generator, modes_available):
    """Score one batch of windows at one horizon; returns per-window statistics `(batch, ...)` keyed by name."""
    frames, timestamps = batch["frames"], batch["timestamps"]
    labels = batch.get("labels")
    start = frames.shape[1] - context - horizon
    frames, timestamps = frames[:, start:], timestamps[:, start:]
    labels = labels[:, start + context :] if labels is not None else None

    # Rectangular frames: two square crops per window (the labels: two halves), scored as separate windows.
    frames, labels, layout = split_into_square_crops(frames, labels)
    timestamps = timestamps.repeat(layout.num_crops, 1)
    grid_size = model.tokenizer.grid_size(*frames.shape[-2:])

    output = model.generate(
        frames=frames[:, :context],
        timestamps=timestamps[:, :context],
        future_timestamps=timestamps[:, context:],
        num_samples=num_samples,
        generator=generator,
    )
    samples = output.future_features.float()  # (crops * batch, num_samples, horizon, N, D)
    target = model.tokenizer.extract_features(frames[:, context:]).float()  # (crops * batch, horizon, N, D)
    rows = row_features(samples, target, output.context_features.float())

    statistics = {}
    # Feature space: smooth-L1 of every row and step, averaged over the crops of a window.
    for name in ("best_of_n", "mean_of_n", "copy_last"):
        losses = smooth_l1_per_step(rows[name], target, SMOOTH_L1_BETA)  # (crops * batch, horizon)
        statistics[f"{name}/smooth_l1"] = merge_square_crops(losses.double(), layout) / layout.num_crops
    step_samples = samples.flatten(3)  # (crops * batch, num_samples, horizon, N * D)
    step_target = target.flatten(2)  # (crops * batch, horizon, N * D)
    energy = torch.tensor(
        [[energy_score(step_samples[i, :, t], step_target[i, t]) for t in range(horizon)] for i in range(len(target))],
        dtype=torch.float64,
    )
    diversity = torch.tensor(
        [[mean_pairwise_distance(step_samples[i, :, t]) for t in range(horizon)] for i in range(len(target))],
        dtype=torch.float64,
    )
    statistics["energy_score"] = merge_square_crops(energy, layout) / layout.num_crops
    statistics["diversity"] = merge_square_crops(diversity, layout) / layout.num_crops

    if modes_available and "all_futures" in batch:
        # Features of every true future of the clip: (batch, num_modes, horizon, N, D); synthetic frames are square.
        futures = batch["all_futures"][:, :, -horizon:]
        batch_size, num_modes = futures.shape[:2]
        mode_features = model.tokenizer.extract_features(futures.flatten(0, 1)).float()
        mode_features = mode_features.unflatten(0, (batch_size, num_modes))
        coverage = [
            mode_coverage(samples[i].flatten(1), mode_features[i].flatten(1))["coverage"] for i in range(batch_size)
        ]
        statistics["mode_coverage"] = torch.tensor(coverage, dtype=torch.float64)[:, None]

    if head is not None:
        label_size = tuple(labels.shape[-2:])
        for name, features in rows.items():
            per_step = []
            for step in range(horizon):
                predictions = apply_head(head, features[:, step], grid_size, label_size, layout)
                if isinstance(head, DeltaTokSegmentationHead):
                    values = segmentation_confusion(predictions, labels[:, step], head.config.num_labels)
                else:
                    values = depth_errors(predictions, labels[:, step])
                per_step.append(merge_square_crops(values, layout))
            statistics[f"{name}/task"] = torch.stack(per_step, dim=1)  # (batch, horizon, ...)
    return statistics


def summarize(sums: dict, counts: dict, horizons, context, task: str | None) -> dict:
    """Turn the accumulated sums into per-horizon, per-step, per-row numbers."""
    results = {}
    for horizon in horizons:
        key = f"context_{context}_horizon_{horizon}"
        prefix = f"{key}/"
        count = counts[key]
        steps = {}
        for step in range(horizon):
            step_result = {}
            for name in ROWS:
                smooth_l1 = 0.0 if name == "present" else float(sums[prefix + f"{name}/smooth_l1"][step] / count)
                row = {"smooth_l1": smooth_l1}
                task_sum = sums.get(prefix + f"{name}/task")
                if task_sum is not None:
                    if task == "segmentation":
                        confusion = task_sum[step].numpy()
                        if confusion.sum() > 0:
                            iou = intersection_over_union(confusion, ignore_index=None)
                            row["mean_iou"] = iou["mean_iou"]
                            row["pixel_accuracy"] = iou["pixel_accuracy"]
                    else:
                        squared_error, num_pixels = task_sum[step].tolist()
                        if num_pixels > 0:
                            row["rmse"] = math.sqrt(squared_error / num_pixels)
                step_result[name] = row
            step_result["energy_score"] = float(sums[prefix + "energy_score"][step] / count)
            step_result["diversity"] = float(sums[prefix + "diversity"][step] / count)
            steps[str(step + 1)] = step_result
        results[key] = {"context": context, "horizon": horizon, "num_windows": int(count), "steps": steps}
        if prefix + "mode_coverage" in sums:
            results[key]["mode_coverage"] = float(sums[prefix + "mode_coverage"][0] / count)
    return results


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4f}"


def render_markdown(report: dict) -> str:
    task_metric = {"segmentation": ("mean_iou", "mIoU ↑", 100.0), "depth": ("rmse", "RMSE (m) ↓", 1.0)}.get(
        report["task"]
    )
    lines = [
        f"# Forecasting evaluation: {report['dataset']}",
        "",
        f"- model: `{report['model']}`",
        f"- head: `{report['head']}`" if report["head"] else "- head: none (feature-space scores only)",
        f"- windows: {report['num_windows']}, samples: {report['num_samples']}, context: {report['context']}, "
        f"frame short side: {report['size']}, frame spacing (s): {report['time_stride_seconds']}",
        "",
        "Rows: best-of-N = sample closest to the truth at the last step (smooth-L1 in feature space); mean-of-N = "
        "mean of the samples' features; copy-last = last context features repeated; present = the true future "
        "frame's features (oracle upper bound). Steps are future frames (t+1 is the first).",
        "",
    ]
    for result in report["results"].values():
        horizon = result["horizon"]
        step_keys = [str(step + 1) for step in range(horizon)]
        lines += [f"## Context {result['context']}, horizon {horizon} ({result['num_windows']} windows)", ""]
        header = ["row"]
        if task_metric is not None:
            header += [f"t+{step} {task_metric[1]}" for step in step_keys]
        header += [f"t+{step} smooth-L1 ↓" for step in step_keys]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name in ROWS:
            if task_metric is None and name == "present":
                continue
            cells = [ROW_TITLES[name]]
            if task_metric is not None:
                for step in step_keys:
                    value = result["steps"][step][name].get(task_metric[0])
                    cells.append(_format(value * task_metric[2] if value is not None else None))
            cells += [_format(result["steps"][step][name]["smooth_l1"]) for step in step_keys]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += ["| sample set | " + " | ".join(f"t+{step}" for step in step_keys) + " |"]
        lines += ["|" + "---|" * (horizon + 1)]
        for name, title in (("energy_score", "energy score ↓"), ("diversity", "diversity")):
            lines.append(f"| {title} | " + " | ".join(_format(result["steps"][s][name]) for s in step_keys) + " |")
        if "mode_coverage" in result:
            lines += ["", f"Mode coverage (fraction of true futures nearest to at least one sample): "
                      f"{_format(result['mode_coverage'])}"]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    accelerator = Accelerator()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    set_seed(args.seed)

    # 1. Model, head, data.
    model = DeltaWorldForForecasting.from_pretrained(args.model).eval().to(accelerator.device)
    head = load_head(args.head).to(accelerator.device) if args.head else None
    dataset = build_dataset(args)
    base_dataset = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
    task = getattr(base_dataset, "task", None)
    if head is not None:
        head_task = "segmentation" if isinstance(head, DeltaTokSegmentationHead) else "depth"
        if head_task != task:
            raise ValueError(
                f"--head {args.head} is a {head_task} head but --dataset {args.dataset} is scored on {task}."
            )
        if task == "segmentation" and head.config.num_labels != base_dataset.num_labels:
            raise ValueError(
                f"--head {args.head} predicts {head.config.num_labels} classes but {args.dataset} has "
                f"{base_dataset.num_labels}."
            )
    elif task is not None:
        logger.warning(f"No --head given: {args.dataset} is scored in feature space only.")
    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=False, collate_fn=collate_windows, num_workers=args.num_workers
    )
    dataloader = accelerator.prepare(dataloader)
    generator = torch.Generator(device=accelerator.device).manual_seed(args.seed + accelerator.process_index)
    # Mode coverage is meaningful when the context is the synthetic clip's own context (the first frames).
    largest_horizon = max(args.horizons)

    # 2. Loop: per batch and horizon, per-window statistics, gathered across processes and summed.
    logger.info(
        f"Evaluating {len(dataset)} windows of {args.dataset} (horizons {args.horizons}, {args.num_samples} samples)"
    )
    sums, counts = {}, defaultdict(int)
    for batch in tqdm(dataloader, disable=not accelerator.is_local_main_process, desc="windows"):
        for horizon in args.horizons:
            statistics = evaluate_horizon(
                model,
                head,
                batch,
                args.context,
                horizon,
                args.num_samples,
                generator,
                modes_available=horizon == largest_horizon,
            )
            statistics = accelerator.gather_for_metrics({k: v.to(accelerator.device) for k, v in statistics.items()})
            key = f"context_{args.context}_horizon_{horizon}"
            for name, values in statistics.items():
                total = values.cpu().sum(dim=0)
                sums[f"{key}/{name}"] = sums[f"{key}/{name}"] + total if f"{key}/{name}" in sums else total
            counts[key] += len(next(iter(statistics.values())))

    # 3. Summary.
    results = summarize(sums, counts, args.horizons, args.context, task if head is not None else None)
    report = {
        "dataset": args.dataset,
        "model": args.model,
        "head": args.head,
        "task": task if head is not None else None,
        "num_windows": len(dataset),
        "num_samples": args.num_samples,
        "context": args.context,
        "horizons": args.horizons,
        "size": args.size,
        "time_stride_seconds": args.time_stride_seconds or DEFAULT_TIME_STRIDE_SECONDS.get(args.dataset) or "clip",
        "seed": args.seed,
        "results": results,
    }
    if accelerator.is_main_process:
        output_dir = Path(args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "results.json").write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
        markdown = render_markdown(report)
        (output_dir / "results.md").write_text(markdown)
        logger.info(f"Wrote {output_dir / 'results.json'} and results.md\n{markdown}")
    accelerator.wait_for_everyone()
    return report


if __name__ == "__main__":
    main()
