"""Plain numpy / torch implementations of the forecast metrics.

The `evaluate` modules in this folder (`forecast_miou`, `forecast_depth_rmse`, `generative_forecast`) only check
their inputs and delegate to these functions, which can also be used directly (e.g. inside an `accelerate` loop).

Protocol notes (official code: `training/base.py`, `training/world.py`, `datasets/kitti.py`):

- mIoU is accumulated over the whole dataset in one confusion matrix, like torchmetrics'
  `MulticlassJaccardIndex(num_classes, ignore_index=255, average="macro")`: pixels labelled `ignore_index` are
  dropped, and classes absent from both predictions and labels over the whole dataset are left out of the mean.
- Depth RMSE is pooled over all valid pixels of the dataset, like `MeanSquaredError(squared=False)` fed with the
  valid pixels only. A pixel is valid when `min_depth < label < max_depth` (strict, as in the official
  `apply_garg_mask`; this also drops the `label == 0` "no measurement" pixels) and, with `garg_crop=True`, inside
  the Garg crop.
- "Best of N" picks, per example, the sample whose *last* forecast step has the lowest mean smooth-L1 feature loss
  (beta 0.1) to the target, and scores that sample's whole trajectory; "mean of N" scores the mean of the samples.
"""

from collections.abc import Sequence

import numpy as np
import torch


# The official evaluation protocol's constants, one source for the metric modules, the benchmark readers
# (`deltatok_hf.data.benchmarks`) and the evaluation loop (`deltatok_hf.evaluation`).
IGNORE_INDEX = 255  # label value of unlabelled / ignored pixels
MIN_DEPTH = 1e-3  # metres; KITTI depth is valid strictly inside (MIN_DEPTH, MAX_DEPTH)
MAX_DEPTH = 80.0
SMOOTH_L1_BETA = 0.1  # the feature loss of the official evaluation criterion (`loss_beta` in training/world.py)
GARG_CROP_FRACTIONS = {"top": 0.40810811, "bottom": 0.99189189, "left": 0.03594771, "right": 0.96405229}


# ---------------------------------------------------------------------------------------------------------------------
# Input checks shared by the evaluate modules and the functions below
# ---------------------------------------------------------------------------------------------------------------------


def to_numpy(array: object, name: str) -> np.ndarray:
    """Convert a numpy array, torch tensor or nested list to a numpy array; a `TypeError` names `name` otherwise."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        if array.dtype == torch.bfloat16:
            array = array.float()
        return array.numpy()
    if isinstance(array, np.ndarray):
        return array
    if isinstance(array, (list, tuple)):
        try:
            return np.asarray(array)
        except ValueError as error:
            raise ValueError(f"`{name}` is a ragged nested list that is not an array: {error}") from None
    raise TypeError(f"`{name}` must be a numpy array, torch tensor or nested list, got {type(array).__name__}.")


def check_label_map_pair(prediction: object, reference: object, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Check one `(height, width)` integer prediction / label pair for segmentation and return them as arrays."""
    prediction = to_numpy(prediction, f"predictions[{index}]")
    reference = to_numpy(reference, f"references[{index}]")
    for name, array in (("predictions", prediction), ("references", reference)):
        if not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
            raise ValueError(
                f"`{name}[{index}]` must hold integer class ids, got dtype {array.dtype}. Pass `logits.argmax(1)` "
                "as predictions and integer label maps as references."
            )
        if array.ndim != 2:
            raise ValueError(f"`{name}[{index}]` must be a (height, width) map, got shape {array.shape}.")
    if prediction.shape != reference.shape:
        raise ValueError(
            f"`predictions[{index}]` has shape {prediction.shape} but `references[{index}]` has shape "
            f"{reference.shape}; upsample the predictions to the label size first."
        )
    return prediction, reference


def check_depth_map_pair(prediction: object, reference: object, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Check one depth prediction / label pair; a `(1, height, width)` prediction is squeezed to `(height, width)`."""
    prediction = to_numpy(prediction, f"predictions[{index}]")
    reference = to_numpy(reference, f"references[{index}]")
    if prediction.ndim == 3 and prediction.shape[0] == 1:
        prediction = prediction[0]  # (1, height, width) -> (height, width), the head's channel dim
    for name, array in (("predictions", prediction), ("references", reference)):
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"`{name}[{index}]` must hold floating-point depths, got dtype {array.dtype}.")
        if array.ndim != 2:
            raise ValueError(f"`{name}[{index}]` must be a (height, width) depth map, got shape {array.shape}.")
    if prediction.shape != reference.shape:
        raise ValueError(
            f"`predictions[{index}]` has shape {prediction.shape} but `references[{index}]` has shape "
            f"{reference.shape}; upsample the predictions to the label size first."
        )
    return prediction, reference


def check_forecast_example(
    samples: object, target: object, modes: object | None = None, index: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Check one example of sampled forecasts and return float64 tensors.

    Shapes: `samples (num_samples, num_steps, num_patches, hidden_size)`, `target (num_steps, num_patches,
    hidden_size)`, `modes (num_modes, num_steps, num_patches, hidden_size)`.
    """
    arrays = {"samples": samples, "target": target}
    if modes is not None:
        arrays["modes"] = modes
    tensors = {}
    for name, array in arrays.items():
        array = to_numpy(array, f"{name}[{index}]")
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"`{name}[{index}]` must hold floating-point features, got dtype {array.dtype}.")
        tensors[name] = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float64)
    samples, target, modes = tensors["samples"], tensors["target"], tensors.get("modes")
    if samples.ndim != 4 or samples.shape[0] == 0:
        raise ValueError(
            f"`samples[{index}]` must have shape (num_samples >= 1, num_steps, num_patches, hidden_size), got "
            f"{tuple(samples.shape)}."
        )
    if target.ndim != 3:
        raise ValueError(
            f"`target[{index}]` must have shape (num_steps, num_patches, hidden_size), got {tuple(target.shape)}."
        )
    if samples.shape[1:] != target.shape:
        raise ValueError(
            f"`samples[{index}]` of shape {tuple(samples.shape)} does not match `target[{index}]` of shape "
            f"{tuple(target.shape)} in (num_steps, num_patches, hidden_size)."
        )
    if modes is not None and (modes.ndim != 4 or modes.shape[0] == 0 or modes.shape[1:] != target.shape):
        raise ValueError(
            f"`modes[{index}]` must have shape (num_modes >= 1, {', '.join(map(str, target.shape))}) to match "
            f"`target[{index}]`, got {tuple(modes.shape)}."
        )
    return samples, target, modes


# ---------------------------------------------------------------------------------------------------------------------
# Segmentation
# ---------------------------------------------------------------------------------------------------------------------


def segmentation_confusion_matrix(
    predictions: Sequence, references: Sequence, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """Dataset-level confusion matrix, shape `(num_classes, num_classes)`, rows = label, columns = prediction.

    `predictions` and `references` are sequences of `(height, width)` integer maps; pixels whose label is
    `ignore_index` are dropped. Other label values and all predictions must lie in `[0, num_classes)`.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes <= 0:
        raise ValueError(f"`num_classes` must be a positive integer, got {num_classes!r}.")
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for index, (prediction, reference) in enumerate(zip(predictions, references)):
        confusion += map_confusion_matrix(prediction, reference, num_classes, ignore_index, index)
    return confusion


def map_confusion_matrix(
    prediction: object, reference: object, num_classes: int, ignore_index: int = IGNORE_INDEX, index: int = 0
) -> np.ndarray:
    """Confusion matrix `(num_classes, num_classes)` (rows = label) of one `(height, width)` class-id map.

    Sum these over a dataset for [`intersection_over_union`]; a loop that gathers per-example statistics across
    processes (`accelerate`'s `gather_for_metrics`) keeps them per map. `index` only names the map in errors.
    """
    prediction, reference = check_label_map_pair(prediction, reference, index)
    keep = reference != ignore_index
    prediction = prediction[keep].astype(np.int64)
    reference = reference[keep].astype(np.int64)
    if prediction.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    if prediction.min() < 0 or prediction.max() >= num_classes:
        raise ValueError(
            f"`predictions[{index}]` holds class ids in [{prediction.min()}, {prediction.max()}], outside "
            f"[0, num_classes={num_classes})."
        )
    if reference.min() < 0 or reference.max() >= num_classes:
        raise ValueError(
            f"`references[{index}]` holds label ids in [{reference.min()}, {reference.max()}] (besides "
            f"ignore_index={ignore_index}), outside [0, num_classes={num_classes})."
        )
    counts = np.bincount(reference * num_classes + prediction, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def intersection_over_union(confusion: np.ndarray, ignore_index: int | None = 255) -> dict:
    """Per-class IoU and their macro mean from a `(num_classes, num_classes)` confusion matrix.

    A class absent from both predictions and labels (zero union) gets IoU `nan` and is left out of the mean, as is
    the class `ignore_index` when it lies in `[0, num_classes)` (torchmetrics' `average="macro"` behaviour).
    """
    confusion = confusion.astype(np.float64)
    intersection = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class_iou = np.where(union > 0, intersection / np.where(union > 0, union, 1.0), np.nan)
    if ignore_index is not None and 0 <= ignore_index < len(per_class_iou):
        per_class_iou[ignore_index] = np.nan
    present = ~np.isnan(per_class_iou)
    mean_iou = float(per_class_iou[present].mean()) if present.any() else float("nan")
    total = confusion.sum()
    pixel_accuracy = float(intersection.sum() / total) if total > 0 else float("nan")
    return {"mean_iou": mean_iou, "per_class_iou": per_class_iou, "pixel_accuracy": pixel_accuracy}


def forecast_mean_iou(
    predictions: Sequence, references: Sequence, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> dict:
    """Dataset-level mean IoU of `(height, width)` class-id maps; see [`intersection_over_union`] for the rules.

    Returns a dict with `mean_iou` (float), `per_class_iou` (list of `num_classes` floats, `nan` for classes absent
    from predictions and labels), `pixel_accuracy` (float) and `num_pixels` (labelled pixels counted).
    """
    confusion = segmentation_confusion_matrix(predictions, references, num_classes, ignore_index)
    result = intersection_over_union(confusion, ignore_index)
    return {
        "mean_iou": result["mean_iou"],
        "per_class_iou": result["per_class_iou"].tolist(),
        "pixel_accuracy": result["pixel_accuracy"],
        "num_pixels": int(confusion.sum()),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Depth
# ---------------------------------------------------------------------------------------------------------------------


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean `(height, width)` mask of the Garg crop (Garg et al., ECCV 2016) used for KITTI Eigen-split depth."""
    mask = np.zeros((height, width), dtype=bool)
    top, bottom = int(GARG_CROP_FRACTIONS["top"] * height), int(GARG_CROP_FRACTIONS["bottom"] * height)
    left, right = int(GARG_CROP_FRACTIONS["left"] * width), int(GARG_CROP_FRACTIONS["right"] * width)
    mask[top:bottom, left:right] = True
    return mask


def depth_valid_mask(
    reference: np.ndarray, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH, garg_crop: bool = False
) -> np.ndarray:
    """Pixels that count for depth metrics: `min_depth < reference < max_depth` (strict), in the Garg crop if asked."""
    valid = (reference > min_depth) & (reference < max_depth)
    if garg_crop:
        valid &= garg_crop_mask(*reference.shape)
    return valid


def forecast_depth_rmse(
    predictions: Sequence,
    references: Sequence,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = False,
) -> dict:
    """Depth RMSE over the valid pixels (see [`depth_valid_mask`]) of `(height, width)` depth maps.

    Returns a dict with:
        - `pooled_rmse`: sqrt of the mean squared error over all valid pixels of the dataset (the official number,
          `torchmetrics.MeanSquaredError(squared=False)` accumulated over batches);
        - `per_image_mean_rmse`: the mean over images of each image's RMSE (images without valid pixels skipped);
        - `num_valid_pixels` and `num_images` (images with at least one valid pixel).
    """
    if not 0 <= min_depth < max_depth:
        raise ValueError(f"Need 0 <= min_depth < max_depth, got min_depth={min_depth!r}, max_depth={max_depth!r}.")
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
    squared_error_sum = 0.0
    num_valid_pixels = 0
    per_image_rmse = []
    for index, (prediction, reference) in enumerate(zip(predictions, references)):
        image_sum, count = depth_squared_error(prediction, reference, min_depth, max_depth, garg_crop, index)
        if count == 0:
            continue
        squared_error_sum += image_sum
        num_valid_pixels += count
        per_image_rmse.append(pooled_rmse(image_sum, count))
    return {
        "pooled_rmse": pooled_rmse(squared_error_sum, num_valid_pixels),
        "per_image_mean_rmse": float(np.mean(per_image_rmse)) if per_image_rmse else float("nan"),
        "num_valid_pixels": num_valid_pixels,
        "num_images": len(per_image_rmse),
    }


def depth_squared_error(
    prediction: object, reference: object, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, garg_crop=False, index=0
) -> tuple[float, int]:
    """`(sum of squared errors, number of valid pixels)` of one depth map (see [`depth_valid_mask`]), in float64.

    Sum both over a dataset and take [`pooled_rmse`] for the official number. Apply `garg_crop` only to whole
    KB-cropped maps: the crop's fractions are relative to the full map, not to a square crop's half of it.
    """
    prediction, reference = check_depth_map_pair(prediction, reference, index)
    valid = depth_valid_mask(reference, min_depth, max_depth, garg_crop)
    error = prediction[valid].astype(np.float64) - reference[valid].astype(np.float64)
    return float(np.square(error).sum()), int(valid.sum())


def pooled_rmse(squared_error_sum: float, num_valid_pixels: int) -> float:
    """Root of the mean squared error over all pooled pixels; `nan` when no pixel was valid."""
    return float(np.sqrt(squared_error_sum / num_valid_pixels)) if num_valid_pixels else float("nan")


# ---------------------------------------------------------------------------------------------------------------------
# Sets of sampled forecasts
# ---------------------------------------------------------------------------------------------------------------------


def smooth_l1_per_step(prediction: torch.Tensor, target: torch.Tensor, beta: float = SMOOTH_L1_BETA) -> torch.Tensor:
    """Mean smooth-L1 loss over (num_patches, hidden_size): `(..., num_steps, N, D)` -> `(..., num_steps)`."""
    return torch.nn.functional.smooth_l1_loss(
        prediction, target.expand_as(prediction), reduction="none", beta=beta
    ).mean(dim=(-2, -1))


def best_of_n_index(sample_losses: torch.Tensor) -> torch.Tensor:
    """The best-of-N sample from per-step losses `(..., num_samples, num_steps)` -> indices `(...)`.

    As the official evaluation (training/world.py), the sample is picked on the *last* step only and then scored on
    every step of its trajectory (not the closest sample per step, which would be an oracle per step).
    """
    return sample_losses[..., -1].argmin(dim=-1)


def pairwise_distances(first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distances between rows: `(n, dim)`, `(m, dim)` -> `(n, m)`; `second=None` compares `first` with itself.

    Computed from the Gram matrix in float64 (one matrix product, fast for the ~10^5-10^6 dims of flattened feature
    maps); squared distances are clamped at zero and self-distances are exactly zero.
    """
    first = first.to(torch.float64)
    same = second is None
    second = first if same else second.to(torch.float64)
    squared = (
        first.square().sum(dim=1)[:, None] + second.square().sum(dim=1)[None, :] - 2.0 * (first @ second.T)
    ).clamp_min_(0.0)
    if same:
        squared.fill_diagonal_(0.0)
    return squared.sqrt()


def energy_score(samples: torch.Tensor, target: torch.Tensor, fair: bool = False) -> float:
    """Energy score of an ensemble, a proper scoring rule for multivariate forecasts (lower is better).

    `ES = mean_i ||X_i - y|| - 1 / (2 n^2) * sum_{i,j} ||X_i - X_j||` with `samples (n, dim)` and `target (dim,)`
    (Gneiting & Raftery 2007). With `fair=True` the spread term is divided by `2 n (n - 1)` instead (the unbiased
    "fair" energy score of Ferro 2014), which does not reward small ensembles for being small; it is `nan` for n=1.
    """
    num_samples = samples.shape[0]
    accuracy = torch.linalg.vector_norm(samples - target[None], dim=-1).mean()
    spread_sum = pairwise_distances(samples).sum()
    if fair:
        if num_samples < 2:
            return float("nan")
        return float(accuracy - spread_sum / (2 * num_samples * (num_samples - 1)))
    return float(accuracy - spread_sum / (2 * num_samples**2))


def mean_pairwise_distance(samples: torch.Tensor) -> float:
    """Sample diversity: mean Euclidean distance over the `n (n - 1)` ordered pairs of distinct samples (nan if n=1)."""
    num_samples = samples.shape[0]
    if num_samples < 2:
        return float("nan")
    return float(pairwise_distances(samples).sum() / (num_samples * (num_samples - 1)))


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor) -> dict:
    """Which known true futures (`modes (num_modes, dim)`) the samples (`(num_samples, dim)`) land near.

    Each sample is assigned its nearest mode (Euclidean); `coverage` is the fraction of modes that are the nearest
    mode of at least one sample. Also returns `nearest_mode_index` and `nearest_mode_distance` per sample.
    """
    distances = pairwise_distances(samples, modes)  # (num_samples, num_modes)
    nearest_distance, nearest_index = distances.min(dim=1)
    covered = torch.zeros(modes.shape[0], dtype=torch.bool)
    covered[nearest_index] = True
    return {
        "coverage": float(covered.double().mean()),
        "nearest_mode_index": nearest_index.tolist(),
        "nearest_mode_distance": nearest_distance.tolist(),
    }


def score_forecast_samples(
    samples: object, target: object, modes: object | None = None, beta: float = SMOOTH_L1_BETA
) -> dict:
    """Score one example's set of sampled forecasts against its target (and, optionally, its known modes).

    Args:
        samples: `(num_samples, num_steps, num_patches, hidden_size)` forecast features.
        target: `(num_steps, num_patches, hidden_size)` true future features.
        modes: optional `(num_modes, num_steps, num_patches, hidden_size)` known true futures.
        beta: smooth-L1 beta of the feature loss (0.1, the official `loss_beta`).

    Returns a dict of floats and per-step lists (length `num_steps`): `best_of_n_index`, `best_of_n_loss_per_step`,
    `mean_of_n_loss_per_step`, `energy_score` / `energy_score_fair` (whole trajectory flattened) and their
    `*_per_step` versions (each step's `num_patches * hidden_size` features flattened), `diversity` and
    `diversity_per_step`, and, with `modes`, `mode_coverage`, `nearest_mode_index`, `nearest_mode_distance`
    (per sample, trajectories flattened).
    """
    if not beta > 0:
        raise ValueError(f"`beta` must be positive, got {beta!r}.")
    samples, target, modes = check_forecast_example(samples, target, modes)
    num_samples, num_steps = samples.shape[:2]

    # (num_samples, num_steps); the official selection uses the last step only (training/world.py)
    sample_losses = smooth_l1_per_step(samples, target, beta)
    best_index = int(best_of_n_index(sample_losses))
    mean_loss = smooth_l1_per_step(samples.mean(dim=0), target, beta)  # (num_steps,)

    flat_samples = samples.reshape(num_samples, -1)  # (num_samples, num_steps * num_patches * hidden_size)
    flat_target = target.reshape(-1)
    step_samples = samples.reshape(num_samples, num_steps, -1)  # (num_samples, num_steps, num_patches * hidden)
    step_target = target.reshape(num_steps, -1)
    result = {
        "best_of_n_index": best_index,
        "best_of_n_loss_per_step": sample_losses[best_index].tolist(),
        "mean_of_n_loss_per_step": mean_loss.tolist(),
        "energy_score": energy_score(flat_samples, flat_target),
        "energy_score_fair": energy_score(flat_samples, flat_target, fair=True),
        "energy_score_per_step": [energy_score(step_samples[:, t], step_target[t]) for t in range(num_steps)],
        "energy_score_fair_per_step": [
            energy_score(step_samples[:, t], step_target[t], fair=True) for t in range(num_steps)
        ],
        "diversity": mean_pairwise_distance(flat_samples),
        "diversity_per_step": [mean_pairwise_distance(step_samples[:, t]) for t in range(num_steps)],
    }
    if modes is not None:
        coverage = mode_coverage(flat_samples, modes.reshape(modes.shape[0], -1))
        result["mode_coverage"] = coverage["coverage"]
        result["nearest_mode_index"] = coverage["nearest_mode_index"]
        result["nearest_mode_distance"] = coverage["nearest_mode_distance"]
    return result


def generative_forecast_scores(
    samples: Sequence, target: Sequence, modes: Sequence | None = None, beta: float = SMOOTH_L1_BETA
) -> dict:
    """Average [`score_forecast_samples`] over a dataset of examples.

    Returns per-step lists and their step means: `best_of_n_loss_per_step`, `best_of_n_loss`,
    `mean_of_n_loss_per_step`, `mean_of_n_loss`, `energy_score`, `energy_score_fair`, `energy_score_per_step`,
    `energy_score_fair_per_step`, `diversity`, `diversity_per_step`, `best_of_n_index` (one per example) and, with
    `modes`, `mode_coverage` (mean over examples), `mean_nearest_mode_distance` and `nearest_mode_distance`
    (per example, per sample). All examples must have the same number of steps.
    """
    if len(samples) != len(target):
        raise ValueError(f"Got {len(samples)} `samples` entries but {len(target)} `target` entries.")
    if modes is not None and len(modes) != len(target):
        raise ValueError(f"Got {len(modes)} `modes` entries but {len(target)} `target` entries.")
    if len(samples) == 0:
        raise ValueError("Need at least one example to score.")
    per_example = []
    for index in range(len(samples)):
        try:
            per_example.append(
                score_forecast_samples(samples[index], target[index], None if modes is None else modes[index], beta)
            )
        except ValueError as error:
            raise ValueError(f"Example {index}: {error}") from None
    num_steps = {len(example["best_of_n_loss_per_step"]) for example in per_example}
    if len(num_steps) != 1:
        raise ValueError(f"All examples must have the same number of steps, got {sorted(num_steps)}.")

    def average(key: str) -> float | list[float]:
        values = np.asarray([example[key] for example in per_example], dtype=np.float64)
        return values.mean(axis=0).tolist()

    result = {
        "best_of_n_loss_per_step": average("best_of_n_loss_per_step"),
        "mean_of_n_loss_per_step": average("mean_of_n_loss_per_step"),
    }
    result["best_of_n_loss"] = float(np.mean(result["best_of_n_loss_per_step"]))
    result["mean_of_n_loss"] = float(np.mean(result["mean_of_n_loss_per_step"]))
    for key in (
        "energy_score",
        "energy_score_fair",
        "energy_score_per_step",
        "energy_score_fair_per_step",
        "diversity",
        "diversity_per_step",
    ):
        result[key] = average(key)
    result["best_of_n_index"] = [example["best_of_n_index"] for example in per_example]
    if modes is not None:
        result["mode_coverage"] = average("mode_coverage")
        result["nearest_mode_distance"] = [example["nearest_mode_distance"] for example in per_example]
        result["mean_nearest_mode_distance"] = float(
            np.mean([np.mean(example["nearest_mode_distance"]) for example in per_example])
        )
    return result


def as_map_list(maps: object, name: str, ndims: tuple[int, ...] = (3,)) -> list | None:
    """
    A `(batch, [1,] height, width)` array or tensor becomes a list of per-example maps; a list stays a list. `ndims`
    are the accepted ranks of the batched form (3, or 3 and 4 for depth maps with a channel axis).
    """
    if maps is None:
        return None
    if isinstance(maps, (list, tuple)):
        return list(maps)
    array = to_numpy(maps, name)
    if array.ndim not in ndims:
        shape = "(batch, [1,] height, width)" if 4 in ndims else "(batch, height, width)"
        raise ValueError(f"`{name}` must be a list of (height, width) maps or a {shape} array, got shape {array.shape}.")
    return list(array)
