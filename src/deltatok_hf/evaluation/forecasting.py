"""The forecasting benchmark: DeltaWorld forecasts scored on VSPW / Cityscapes / KITTI (with a task head), a folder of
videos or synthetic clips. `examples/evaluate_forecasting.py` and `deltatok-hf evaluate` both run [`evaluate_forecasting`].

For each context / horizon pair, the window's last `context + horizon` frames are used: `context` frames are encoded,
`num_samples` futures are rolled out, and every future step is scored. Rows (official `training/world.py`):

- best-of-N: the sample closest to the true future features (smooth-L1, beta 0.1) *at the last step*, used for all
  steps of the horizon;
- mean-of-N: the mean of the samples' features;
- copy-last: the last context frame's features repeated (the "nothing moves" baseline);
- present: the true future frame's features (an oracle: the head's own accuracy, the upper bound).

The task head turns each row's features into segmentation (dataset mIoU, classes pooled over all windows) or depth
(RMSE pooled over all valid pixels). Feature-space scores: smooth-L1 per row and step, the energy score and the
diversity (mean pairwise distance) of the sample set, and on synthetic clips the mode coverage. Every formula comes
from `deltatok_hf.metrics.functional`, the same functions the `evaluate` metric modules delegate to.
"""

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
from transformers import AutoModel, PretrainedConfig

from ..data.benchmarks import (
    DEFAULT_TIME_STRIDE_SECONDS,
    LabelledWindows,
    SyntheticWindows,
    VideoFolderWindows,
    build_labelled_dataset,
    collate_windows,
)
from ..data.video_processor import align_to_labels, merge_square_crops, split_into_square_crops
from ..metrics.functional import (
    IGNORE_INDEX,
    SMOOTH_L1_BETA,
    best_of_n_index,
    depth_squared_error,
    energy_score,
    intersection_over_union,
    map_confusion_matrix,
    mean_pairwise_distance,
    mode_coverage,
    pooled_rmse,
    smooth_l1_per_step,
)
from .. import models  # noqa: F401  (registers the world models with AutoModel)
from ..models.deltaworld import DeltaWorldForForecasting
from ..models.heads import DeltaTokDepthHead, DeltaTokSegmentationHead
from ..pipelines.pipeline_deltaworld import feature_geometry
from .configuration import ForecastEvaluationConfig


logger = get_logger(__name__)

ROWS = ("best_of_n", "mean_of_n", "copy_last", "present")
ROW_TITLES = {
    "best_of_n": "best-of-N",
    "mean_of_n": "mean-of-N",
    "copy_last": "copy-last",
    "present": "present (oracle)",
}


def load_task_head(path: str) -> DeltaTokSegmentationHead | DeltaTokDepthHead:
    """Load a converted or trained task head in eval mode, picking the class from its `config.json`."""
    config_dict, _ = PretrainedConfig.get_config_dict(path)
    model_type = config_dict.get("model_type")
    head_classes = {
        DeltaTokSegmentationHead.config_class.model_type: DeltaTokSegmentationHead,
        DeltaTokDepthHead.config_class.model_type: DeltaTokDepthHead,
    }
    if model_type not in head_classes:
        raise ValueError(f"Head {path} has model_type {model_type!r}; expected one of {sorted(head_classes)}.")
    return head_classes[model_type].from_pretrained(path).eval()


def head_task(head: DeltaTokSegmentationHead | DeltaTokDepthHead) -> str:
    return "segmentation" if isinstance(head, DeltaTokSegmentationHead) else "depth"


def build_evaluation_dataset(config: ForecastEvaluationConfig) -> torch.utils.data.Dataset:
    """The evaluation windows (`context + max(horizons)` frames each) of `config.dataset`."""
    num_frames = config.context + max(config.horizons)
    if config.dataset == "synthetic":
        dataset = SyntheticWindows(
            num_videos=config.num_synthetic_videos,
            num_frames=num_frames,
            num_context_frames=config.context,
            size=config.size,
            seed=config.seed,
        )
    elif config.dataset == "videos":
        dataset = VideoFolderWindows(
            config.data_root,
            num_frames=num_frames,
            frame_size=config.size,
            time_stride_seconds=config.time_stride_seconds,
        )
    else:
        dataset = build_labelled_dataset(
            config.dataset,
            config.data_root,
            num_frames=num_frames,
            frame_size=config.size,
            split=config.split,
            split_file=config.split_file,
            time_stride_seconds=config.time_stride_seconds,
        )
    if len(dataset) == 0:
        raise ValueError(f"No evaluation windows found for dataset {config.dataset!r} under {config.data_root}.")
    if config.max_windows is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(config.max_windows, len(dataset))))
    return dataset


def _base_dataset(dataset: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
    return dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset


def check_head_matches_dataset(head, dataset: torch.utils.data.Dataset, config: ForecastEvaluationConfig) -> None:
    """A head must predict the dataset's task (and, for segmentation, its number of classes)."""
    base = _base_dataset(dataset)
    task = getattr(base, "task", None)
    if head_task(head) != task:
        raise ValueError(f"Head {config.head} is a {head_task(head)} head but {config.dataset} is scored on {task}.")
    if task == "segmentation" and head.config.num_labels != base.num_labels:
        raise ValueError(
            f"Head {config.head} predicts {head.config.num_labels} classes but {config.dataset} has {base.num_labels}."
        )


def row_features(samples: torch.Tensor, target: torch.Tensor, context_features: torch.Tensor) -> dict:
    """Features of every row: `(batch, horizon, num_patches, hidden_size)` each.

    `samples` `(batch, num_samples, horizon, N, D)`, `target` `(batch, horizon, N, D)`, `context_features`
    `(batch, context, N, D)`.
    """
    horizon = target.shape[1]
    sample_losses = smooth_l1_per_step(samples, target[:, None], SMOOTH_L1_BETA)  # (batch, num_samples, horizon)
    best_index = best_of_n_index(sample_losses)  # (batch,)
    batch_index = torch.arange(samples.shape[0], device=samples.device)
    return {
        "best_of_n": samples[batch_index, best_index],
        "mean_of_n": samples.mean(dim=1),
        "copy_last": context_features[:, -1:].expand(-1, horizon, -1, -1),
        "present": target,
    }


def apply_head(head, features: torch.Tensor, grid_size, label_size, layout) -> torch.Tensor:
    """Head on `(crops * batch, N, D)` features -> class ids or depth `(crops * batch, H, W)` on the label halves."""
    if isinstance(head, DeltaTokSegmentationHead):
        logits = head(features, grid_size=grid_size).logits.float()
        return align_to_labels(logits, label_size, layout).argmax(dim=1)
    depth = head(features, grid_size=grid_size).predicted_depth.float()
    return align_to_labels(depth, label_size, layout)[:, 0]


def task_statistics(predictions: torch.Tensor, labels: torch.Tensor, task: str, num_labels: int | None) -> torch.Tensor:
    """Per-map sums that pool over a dataset: confusion matrices `(batch, C, C)` for segmentation, or
    `(squared error sum, valid pixels)` `(batch, 2)` for depth (labels are zeroed outside the valid pixels already)."""
    predictions, labels = predictions.cpu(), labels.cpu()
    if task == "segmentation":
        confusions = [
            map_confusion_matrix(prediction, label, num_labels, IGNORE_INDEX, index)
            for index, (prediction, label) in enumerate(zip(predictions, labels))
        ]
        return torch.stack([torch.from_numpy(confusion) for confusion in confusions])
    errors = [
        depth_squared_error(prediction, label, index=index)
        for index, (prediction, label) in enumerate(zip(predictions, labels))
    ]
    return torch.tensor(errors, dtype=torch.float64)


def _per_window(values: list[list[float]], layout) -> torch.Tensor:
    """Per-crop values `(crops * batch, horizon)` averaged over the crops of each window -> `(batch, horizon)`."""
    return merge_square_crops(torch.tensor(values, dtype=torch.float64), layout) / layout.num_crops


@torch.no_grad()
def evaluate_horizon(
    model: DeltaWorldForForecasting,  # or a DinoWorldForForecasting (the same generate / feature geometry)
    head,
    batch: dict,
    context: int,
    horizon: int,
    num_samples: int,
    generator: torch.Generator,
    modes_available: bool,
) -> dict:
    """Score one batch of windows at one horizon; returns per-window statistics `(batch, ...)` keyed by name."""
    frames, timestamps = batch["frames"], batch["timestamps"]
    labels = batch.get("labels")
    start = frames.shape[1] - context - horizon
    frames, timestamps = frames[:, start:], timestamps[:, start:]
    labels = labels[:, start + context :] if labels is not None else None

    # Rectangular frames: two square crops per window (the labels: two halves), scored as separate windows.
    frames, labels, layout = split_into_square_crops(frames, labels)
    timestamps = timestamps.repeat(layout.num_crops, 1)
    grid_size = feature_geometry(model).grid_size(*frames.shape[-2:])

    output = model.generate(
        frames=frames[:, :context],
        timestamps=timestamps[:, :context],
        future_timestamps=timestamps[:, context:],
        num_samples=num_samples,
        generator=generator,
    )
    samples = output.future_features.float()  # (crops * batch, num_samples, horizon, N, D)
    target = feature_geometry(model).extract_features(frames[:, context:]).float()  # (crops * batch, horizon, N, D)
    rows = row_features(samples, target, output.context_features.float())

    statistics = {}
    # Feature space: smooth-L1 of every row and step, averaged over the crops of a window.
    for name in ("best_of_n", "mean_of_n", "copy_last"):
        losses = smooth_l1_per_step(rows[name], target, SMOOTH_L1_BETA)  # (crops * batch, horizon)
        statistics[f"{name}/smooth_l1"] = merge_square_crops(losses.double(), layout) / layout.num_crops
    step_samples = samples.flatten(3)  # (crops * batch, num_samples, horizon, N * D)
    step_target = target.flatten(2)  # (crops * batch, horizon, N * D)
    crops = range(len(target))
    statistics["energy_score"] = _per_window(
        [[energy_score(step_samples[i, :, t], step_target[i, t]) for t in range(horizon)] for i in crops], layout
    )
    statistics["diversity"] = _per_window(
        [[mean_pairwise_distance(step_samples[i, :, t]) for t in range(horizon)] for i in crops], layout
    )

    if modes_available and "all_futures" in batch:
        # Features of every true future of the clip: (batch, num_modes, horizon, N, D); synthetic frames are square.
        futures = batch["all_futures"][:, :, -horizon:]
        batch_size, num_modes = futures.shape[:2]
        mode_features = feature_geometry(model).extract_features(futures.flatten(0, 1)).float()
        mode_features = mode_features.unflatten(0, (batch_size, num_modes))
        coverage = [
            mode_coverage(samples[i].flatten(1), mode_features[i].flatten(1))["coverage"] for i in range(batch_size)
        ]
        statistics["mode_coverage"] = torch.tensor(coverage, dtype=torch.float64)[:, None]

    if head is not None:
        label_size = tuple(labels.shape[-2:])
        task = head_task(head)
        for name, features in rows.items():
            per_step = []
            for step in range(horizon):
                predictions = apply_head(head, features[:, step], grid_size, label_size, layout)
                values = task_statistics(predictions, labels[:, step], task, getattr(head.config, "num_labels", None))
                per_step.append(merge_square_crops(values, layout))
            statistics[f"{name}/task"] = torch.stack(per_step, dim=1)  # (batch, horizon, ...)
    return statistics


def _task_scores(task_sum: torch.Tensor, task: str) -> dict:
    """mIoU and pixel accuracy from a pooled confusion matrix, or the pooled RMSE; empty when nothing was labelled."""
    if task == "segmentation":
        confusion = task_sum.numpy()
        if confusion.sum() == 0:
            return {}
        iou = intersection_over_union(confusion, ignore_index=None)
        return {"mean_iou": iou["mean_iou"], "pixel_accuracy": iou["pixel_accuracy"]}
    squared_error, num_pixels = task_sum.tolist()
    return {"rmse": pooled_rmse(squared_error, int(num_pixels))} if num_pixels > 0 else {}


def summarize(sums: dict, counts: dict, horizons, context: int, task: str | None) -> dict:
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
                    row.update(_task_scores(task_sum[step], task))
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
    """The report as markdown tables: one per context / horizon pair, rows by steps, then the sample-set scores."""
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
            lines += [
                "",
                "Mode coverage (fraction of true futures nearest to at least one sample): "
                f"{_format(result['mode_coverage'])}",
            ]
        lines.append("")
    return "\n".join(lines)


def evaluate_forecasting(config: ForecastEvaluationConfig, accelerator: Accelerator | None = None) -> dict:
    """Run the benchmark of `config`, write `results.json` and `results.md` into `config.output_dir`, return the report.

    Multi-process runs (`accelerate launch`) split the windows and gather per-window statistics before pooling.
    """
    if not isinstance(config, ForecastEvaluationConfig):
        raise TypeError(f"`config` must be a ForecastEvaluationConfig, got {type(config).__name__}.")
    accelerator = accelerator or Accelerator()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    set_seed(config.seed)
    horizons = config.sorted_horizons

    # 1. Model, head, data.
    # Any world model of the package by its config's model_type (DeltaWorld, or a DINO-world rung of the ablation).
    model = AutoModel.from_pretrained(config.model).eval().to(accelerator.device)
    patch_size = feature_geometry(model).patch_size
    if config.size % patch_size:
        raise ValueError(f"`size` must be a multiple of the model's patch size {patch_size}, got {config.size}.")
    num_samples = config.num_samples or (model.config.num_samples_eval if model.config.use_best_of_many else 1)
    head = load_task_head(config.head).to(accelerator.device) if config.head else None
    dataset = build_evaluation_dataset(config)
    task = getattr(_base_dataset(dataset), "task", None)
    if head is not None:
        check_head_matches_dataset(head, dataset, config)
    elif isinstance(_base_dataset(dataset), LabelledWindows):
        logger.warning(f"No head given: {config.dataset} is scored in feature space only.")
    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=False, collate_fn=collate_windows, num_workers=config.num_workers
    )
    dataloader = accelerator.prepare(dataloader)
    generator = torch.Generator(device=accelerator.device).manual_seed(config.seed + accelerator.process_index)
    # Mode coverage is meaningful when the context is the synthetic clip's own context (the first frames).
    largest_horizon = max(horizons)

    # 2. Loop: per batch and horizon, per-window statistics, gathered across processes and summed.
    logger.info(f"Evaluating {len(dataset)} windows of {config.dataset} (horizons {horizons}, {num_samples} samples)")
    sums, counts = {}, defaultdict(int)
    for batch in tqdm(dataloader, disable=not accelerator.is_local_main_process, desc="windows"):
        for horizon in horizons:
            statistics = evaluate_horizon(
                model,
                head,
                batch,
                config.context,
                horizon,
                num_samples,
                generator,
                modes_available=horizon == largest_horizon,
            )
            statistics = accelerator.gather_for_metrics({k: v.to(accelerator.device) for k, v in statistics.items()})
            key = f"context_{config.context}_horizon_{horizon}"
            for name, values in statistics.items():
                total = values.cpu().sum(dim=0)
                sums[f"{key}/{name}"] = sums[f"{key}/{name}"] + total if f"{key}/{name}" in sums else total
            counts[key] += len(next(iter(statistics.values())))

    # 3. Summary.
    report = {
        "dataset": config.dataset,
        "model": config.model,
        "head": config.head,
        "task": task if head is not None else None,
        "num_windows": len(dataset),
        "num_samples": num_samples,
        "context": config.context,
        "horizons": horizons,
        "size": config.size,
        "time_stride_seconds": config.time_stride_seconds or DEFAULT_TIME_STRIDE_SECONDS[config.dataset] or "clip",
        "seed": config.seed,
        "results": summarize(sums, counts, horizons, config.context, task if head is not None else None),
    }
    if accelerator.is_main_process:
        output_dir = Path(config.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "results.json").write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
        markdown = render_markdown(report)
        (output_dir / "results.md").write_text(markdown)
        logger.info(f"Wrote {output_dir / 'results.json'} and results.md\n{markdown}")
    accelerator.wait_for_everyone()
    return report
