"""Pictures of forecasts: PCA of patch features to RGB, task-map colouring, and labelled grids (PNG / GIF).

All features shown in one picture are projected on ONE PCA basis fitted on everything in it (context, ground truth
and sampled futures), so a colour means the same feature direction in every cell. The official code
(`training/base.py`, `pca`) fits the basis on the targets only and projects the predictions on it; we include the
predictions in the fit so that a sample drifting off the target distribution is not clipped to black.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "PCABasis",
    "fit_pca_basis",
    "features_to_pca_images",
    "segmentation_to_rgb",
    "depth_to_rgb",
    "make_forecast_grid",
    "save_forecast_png",
    "save_forecast_gif",
    "make_fork_grid",
    "save_fork_png",
    "save_fork_gif",
]

# Viridis anchors (every 32nd entry of matplotlib's table) so the package does not need matplotlib.
_VIRIDIS_ANCHORS = np.array(
    [
        [68, 1, 84], [71, 39, 119], [62, 73, 137], [49, 103, 142], [38, 130, 142],
        [31, 157, 138], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37],
    ],
    dtype=np.float32,
)  # fmt: skip


@dataclass
class PCABasis:
    """
    A 3-component PCA basis plus the per-component range used to map projections to `[0, 1]`.

    Args:
        mean (`torch.Tensor` of shape `(hidden_size,)`): the mean feature of the fitted set.
        components (`torch.Tensor` of shape `(hidden_size, 3)`): principal directions, strongest first.
        low / high (`torch.Tensor` of shape `(3,)`): smallest / largest projection seen when fitting.
    """

    mean: torch.Tensor
    components: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def project(self, features: torch.Tensor, grid_size: tuple[int, int]) -> np.ndarray:
        """`(..., num_patches, hidden_size)` features -> `(..., rows, columns, 3)` uint8 RGB."""
        rows, columns = grid_size
        if features.shape[-2] != rows * columns:
            raise ValueError(
                f"features have {features.shape[-2]} patches but grid_size={grid_size} holds {rows * columns}."
            )
        flat = torch.nan_to_num(features.detach().to("cpu", torch.float64)).reshape(-1, features.shape[-1])
        projected = (flat - self.mean) @ self.components  # (num_vectors, 3)
        scaled = ((projected - self.low) / (self.high - self.low).clamp(min=1e-6)).clamp(0, 1)
        image = (scaled * 255).round().to(torch.uint8).numpy()
        return image.reshape(*features.shape[:-2], rows, columns, 3)


def fit_pca_basis(features: Sequence[torch.Tensor] | torch.Tensor, max_vectors: int = 65536) -> PCABasis:
    """
    Fit a shared 3-component PCA basis on feature tensors `(..., hidden_size)` (all pooled together).

    The eigen-decomposition of the covariance is computed in float64 (deterministic); every component's sign is chosen
    so that its loadings sum to a positive number (the official convention), so a basis refitted on the same data
    gives the same colours. At most `max_vectors` rows (evenly strided) are used to fit.
    """
    if isinstance(features, torch.Tensor):
        features = [features]
    if len(features) == 0:
        raise ValueError("fit_pca_basis needs at least one feature tensor.")
    hidden_size = features[0].shape[-1]
    rows = [torch.nan_to_num(f.detach().to("cpu", torch.float64)).reshape(-1, hidden_size) for f in features]
    data = torch.cat(rows)  # (num_vectors, hidden_size)
    if data.shape[0] > max_vectors:
        data = data[:: -(-data.shape[0] // max_vectors)]
    mean = data.mean(0)
    centred = data - mean
    covariance = centred.T @ centred / max(centred.shape[0] - 1, 1)
    covariance.diagonal().add_(1e-6)
    _, eigenvectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    components = eigenvectors[:, -3:].flip(-1).clone()  # (hidden_size, 3), strongest first
    signs = torch.where(components.sum(0) < 0, -1.0, 1.0).to(components.dtype)
    components = components * signs
    projected = centred @ components
    return PCABasis(mean=mean, components=components, low=projected.amin(0), high=projected.amax(0))


def features_to_pca_images(
    feature_sets: Sequence[torch.Tensor], grid_size: tuple[int, int]
) -> list[np.ndarray]:
    """Project every tensor of `feature_sets` (`(..., num_patches, hidden)`) on one shared basis; uint8 RGB grids."""
    basis = fit_pca_basis(list(feature_sets))
    return [basis.project(features, grid_size) for features in feature_sets]


def segmentation_to_rgb(class_map: torch.Tensor | np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """Class ids `(..., height, width)` -> uint8 RGB with a fixed random palette (seed 0, as the official plots)."""
    palette = np.random.default_rng(seed=0).integers(0, 256, (256, 3), dtype=np.uint8)
    palette[ignore_index % 256] = 0
    ids = np.asarray(class_map.cpu() if isinstance(class_map, torch.Tensor) else class_map).astype(np.int64)
    return palette[ids % 256]


def depth_to_rgb(depth: torch.Tensor | np.ndarray, max_depth: float | None = None) -> np.ndarray:
    """Depth `(..., height, width)` -> uint8 RGB with a viridis colour map; `max_depth` defaults to the maximum."""
    values = np.asarray(depth.detach().float().cpu() if isinstance(depth, torch.Tensor) else depth, dtype=np.float32)
    top = float(max_depth) if max_depth is not None else float(np.nanmax(values)) if values.size else 1.0
    scaled = np.clip(np.nan_to_num(values) / max(top, 1e-6), 0, 1) * (len(_VIRIDIS_ANCHORS) - 1)
    lower = np.floor(scaled).astype(np.int64).clip(0, len(_VIRIDIS_ANCHORS) - 2)
    fraction = (scaled - lower)[..., None]
    colours = _VIRIDIS_ANCHORS[lower] * (1 - fraction) + _VIRIDIS_ANCHORS[lower + 1] * fraction
    return colours.round().astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Grid of labelled cells
# ----------------------------------------------------------------------------------------------


def _to_uint8_image(picture: np.ndarray | torch.Tensor) -> np.ndarray:
    """`(H, W, 3)` uint8 / float 0..255, or `(3, H, W)` tensor -> `(H, W, 3)` uint8."""
    if isinstance(picture, torch.Tensor):
        picture = picture.detach().cpu()
        if picture.ndim == 3 and picture.shape[0] == 3 and picture.shape[-1] != 3:
            picture = picture.permute(1, 2, 0)
        picture = picture.float().numpy()
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        picture = np.clip(np.round(picture), 0, 255).astype(np.uint8)
    return picture


def _draw_grid(
    rows: list[tuple[str, list[np.ndarray | None]]],
    column_titles: list[str],
    cell_size: int = 128,
    title: str | None = None,
    captions: list[list[str | None]] | None = None,
) -> Image.Image:
    """Lay out labelled rows of equally sized cells; `None` cells stay blank. Nearest-neighbour upscaling keeps patches.
    `captions` (one list per row, parallel to its cells) writes a line of text under each cell."""
    font = ImageFont.load_default()
    num_columns = max(len(column_titles), max((len(cells) for _, cells in rows), default=0))
    label_width = 8 + max((int(font.getlength(label)) for label, _ in rows), default=0)
    header = 18 + (18 if title else 0)
    margin = 4
    caption_height = 14 if captions else 0
    # Cells keep the aspect ratio of the first picture (square crops are square; "none" may be rectangular).
    first = next((cell for _, cells in rows for cell in cells if cell is not None), None)
    aspect = first.shape[1] / first.shape[0] if first is not None else 1.0
    cell_height, cell_width = cell_size, max(1, int(round(cell_size * aspect)))
    row_height = cell_height + caption_height + margin
    width = label_width + num_columns * (cell_width + margin) + margin
    height = header + len(rows) * row_height + margin
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((margin, 2), title, fill=(0, 0, 0), font=font)
    for column, text in enumerate(column_titles):
        draw.text((label_width + column * (cell_width + margin) + margin, header - 15), text, fill=(0, 0, 0), font=font)
    for row, (label, cells) in enumerate(rows):
        top = header + row * row_height
        draw.text((4, top + cell_height // 2 - 6), label, fill=(0, 0, 0), font=font)
        for column, cell in enumerate(cells):
            left = label_width + column * (cell_width + margin) + margin
            caption = captions[row][column] if captions and column < len(captions[row]) else None
            if caption:
                draw.text((left, top + cell_height + 1), caption, fill=(0, 0, 0), font=font)
            if cell is None:
                continue
            picture = Image.fromarray(_to_uint8_image(cell))
            resample = Image.NEAREST if picture.height < cell_height // 2 else Image.BILINEAR
            picture = picture.resize((cell_width, cell_height), resample)
            canvas.paste(picture, (left, top))
    return canvas


def _task_map_to_rgb(name: str, maps: torch.Tensor, max_depth: float | None) -> np.ndarray:
    if maps.dtype in (torch.int64, torch.int32, torch.uint8):
        return segmentation_to_rgb(maps)
    return depth_to_rgb(maps, max_depth)


def make_forecast_grid(
    context_features: torch.Tensor,
    future_features: torch.Tensor,
    grid_size: tuple[int, int],
    context_timestamps: Sequence[float] | torch.Tensor,
    future_timestamps: Sequence[float] | torch.Tensor,
    context_frames: torch.Tensor | np.ndarray | None = None,
    mean_future_features: torch.Tensor | None = None,
    ground_truth_frames: torch.Tensor | np.ndarray | None = None,
    ground_truth_features: torch.Tensor | None = None,
    task_maps: dict[str, dict[str, torch.Tensor]] | None = None,
    future_frames: torch.Tensor | np.ndarray | None = None,
    mean_future_frames: torch.Tensor | np.ndarray | None = None,
    max_samples_shown: int = 4,
    cell_size: int = 96,
    title: str | None = None,
    mean_label: str | None = None,
) -> Image.Image:
    """
    A labelled picture of one forecast: columns are times (context, then the future), rows are

    `frames` (context frames, then the ground-truth frames when the clip continues) | `context / truth` features |
    `sample k` futures (up to `max_samples_shown`) | `mean` of all samples | then per task head the same rows of maps |
    then, with an RGB decoder's frames, `RGB sample k` and `RGB mean` (the decoder applied to the mean features).

    Args:
        context_features (`torch.Tensor` of shape `(num_context_frames, num_patches, hidden_size)`)
        future_features (`torch.Tensor` of shape `(num_samples, num_future_frames, num_patches, hidden_size)`)
        grid_size (`tuple[int, int]`): patch rows and columns.
        context_frames (`(num_context_frames, height, width, 3)` uint8 or `(num_context_frames, 3, height, width)`)
        mean_future_features (`(num_future_frames, num_patches, hidden_size)`): defaults to the sample mean.
        ground_truth_frames / ground_truth_features: the real future, same layouts as the context ones.
        task_maps: `{head name: {"context": (T, H, W), "samples": (S, F, H, W), "mean": (F, H, W),
            "ground_truth": (F, H, W)}}`; integer maps are drawn as classes, float maps as depth.
        future_frames (`(num_samples, num_future_frames, height, width, 3)` uint8): decoded RGB of every sample.
        mean_future_frames (`(num_future_frames, height, width, 3)` uint8): decoded RGB of the mean features.
        mean_label: the mean row's label (default `"mean of {num_samples}"`).
    """
    if future_features.ndim != 4:
        raise ValueError(
            "future_features must have shape (num_samples, num_future_frames, num_patches, hidden_size), "
            f"got {tuple(future_features.shape)}."
        )
    if context_features.ndim != 3:
        raise ValueError(
            f"context_features must have shape (num_context_frames, num_patches, hidden_size), got {tuple(context_features.shape)}."
        )
    num_samples, num_future = future_features.shape[:2]
    num_context = context_features.shape[0]
    if mean_future_features is None:
        mean_future_features = future_features.float().mean(0)
    shown = future_features[:max_samples_shown]

    # One basis for everything in the picture.
    pieces = [context_features, future_features, mean_future_features]
    if ground_truth_features is not None:
        pieces.append(ground_truth_features)
    basis = fit_pca_basis(pieces)
    context_pca = basis.project(context_features, grid_size)
    samples_pca = basis.project(shown, grid_size)
    mean_pca = basis.project(mean_future_features, grid_size)

    context_times = [float(t) for t in torch.as_tensor(context_timestamps).flatten()]
    future_times = [float(t) for t in torch.as_tensor(future_timestamps).flatten()]
    column_titles = [f"t={t:.2f}s" for t in context_times] + [f"t={t:.2f}s (future)" for t in future_times]
    blank_context: list[np.ndarray | None] = [None] * num_context

    rows: list[tuple[str, list[np.ndarray | None]]] = []
    if context_frames is not None:
        truth_frames = list(ground_truth_frames) if ground_truth_frames is not None else [None] * num_future
        rows.append(("frames", list(context_frames) + truth_frames))
    truth_pca = (
        list(basis.project(ground_truth_features, grid_size)) if ground_truth_features is not None else [None] * num_future
    )
    rows.append(("context | truth" if ground_truth_features is not None else "context", list(context_pca) + truth_pca))
    for sample in range(samples_pca.shape[0]):
        rows.append((f"sample {sample + 1}", blank_context + list(samples_pca[sample])))
    rows.append((mean_label or f"mean of {num_samples}", blank_context + list(mean_pca)))

    for name, maps in (task_maps or {}).items():
        float_maps = [m for m in maps.values() if m is not None and m.is_floating_point()]
        max_depth = max((float(m.max()) for m in float_maps), default=None)
        context_maps = maps.get("context")
        truth_maps = maps.get("ground_truth")
        first_cells = list(_task_map_to_rgb(name, context_maps, max_depth)) if context_maps is not None else blank_context
        truth_cells = list(_task_map_to_rgb(name, truth_maps, max_depth)) if truth_maps is not None else [None] * num_future
        rows.append((f"{name}: context", first_cells + truth_cells))
        if maps.get("samples") is not None:
            for sample, sample_maps in enumerate(maps["samples"][:max_samples_shown]):
                rows.append((f"{name}: sample {sample + 1}", blank_context + list(_task_map_to_rgb(name, sample_maps, max_depth))))
        if maps.get("mean") is not None:
            rows.append((f"{name}: mean", blank_context + list(_task_map_to_rgb(name, maps["mean"], max_depth))))
    if future_frames is not None:
        for sample, frames in enumerate(list(future_frames)[:max_samples_shown]):
            rows.append((f"RGB sample {sample + 1}", blank_context + list(frames)))
    if mean_future_frames is not None:
        rows.append(("RGB of mean", blank_context + list(mean_future_frames)))
    return _draw_grid(rows, column_titles, cell_size=cell_size, title=title)


def _grid_from_output(output, title: str | None = None, **kwargs) -> Image.Image:
    task_maps = {}
    for name in (output.task_maps or {}):
        task_maps[name] = {
            "context": (output.context_task_maps or {}).get(name),
            "samples": output.task_maps[name],
            "mean": (output.mean_task_maps or {}).get(name),
            "ground_truth": (output.ground_truth_task_maps or {}).get(name),
        }
    return make_forecast_grid(
        context_features=torch.as_tensor(output.context_features),
        future_features=torch.as_tensor(output.future_features),
        grid_size=tuple(output.grid_size),
        context_timestamps=output.context_timestamps,
        future_timestamps=output.future_timestamps,
        context_frames=output.context_frames,
        mean_future_features=torch.as_tensor(output.mean_future_features),
        ground_truth_frames=output.ground_truth_frames,
        ground_truth_features=None if output.ground_truth_features is None else torch.as_tensor(output.ground_truth_features),
        task_maps=task_maps,
        future_frames=_frames_array(output.future_frames),
        mean_future_frames=_frames_array(output.mean_future_frames),
        title=title,
        # Select-then-decode's mean counts each kept future for its share of the candidates.
        mean_label=None if output.candidate_weights is None else f"weighted mean of {len(output.candidate_weights)} kept",
        **kwargs,
    )


def _frames_array(frames) -> np.ndarray | None:
    """RGB frames of an output (a tensor, an array, or nested lists of PIL images for `output_type="pil"`) as a uint8
    array `(..., height, width, 3)`, or `None`."""
    if frames is None:
        return None
    if isinstance(frames, torch.Tensor):
        return frames.detach().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        return np.stack([_frames_array(item) if isinstance(item, (list, tuple)) else np.asarray(item) for item in frames])
    return np.asarray(frames)


def save_forecast_png(outputs, path: str | Path, title: str | None = None, **kwargs) -> Path:
    """
    Write the grid of one [`DeltaWorldPipelineOutput`] (or a list of them, e.g. the square crops of one clip, stacked
    top to bottom) to a PNG file; returns the path.
    """
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    if not outputs:
        raise ValueError("save_forecast_png needs at least one output.")
    pictures = []
    for index, output in enumerate(outputs):
        label = title
        if output.crop_box is not None and len(outputs) > 1:
            box = ", ".join(str(int(v)) for v in output.crop_box)
            label = f"{title + ' - ' if title else ''}crop {index + 1} of {len(outputs)} (top, left, height, width = {box})"
        pictures.append(_grid_from_output(output, title=label, **kwargs))
    width = max(p.width for p in pictures)
    canvas = Image.new("RGB", (width, sum(p.height for p in pictures)), (255, 255, 255))
    top = 0
    for picture in pictures:
        canvas.paste(picture, (0, top))
        top += picture.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _write_gif(pictures: list[Image.Image], path: str | Path, fps: int) -> Path:
    """An animation through diffusers' GIF writer (`diffusers.utils.export_to_gif`, PIL underneath)."""
    from diffusers.utils import export_to_gif  # noqa: PLC0415 (diffusers is heavy to import; only GIFs need it)

    if not isinstance(fps, int) or isinstance(fps, bool) or fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_to_gif(pictures, str(path), fps=fps)
    return path


def save_forecast_gif(output, path: str | Path, max_samples_shown: int = 4, cell_size: int = 128, fps: int = 2) -> Path:
    """
    Animate one [`DeltaWorldPipelineOutput`] over time: each GIF frame shows, side by side, the RGB frame (context,
    or ground truth when known), the features (context or truth) and the sampled futures, all on one PCA basis; with
    an RGB decoder's frames, a second row shows every sample's decoded RGB.
    """
    context = torch.as_tensor(output.context_features)
    future = torch.as_tensor(output.future_features)
    grid_size = tuple(output.grid_size)
    shown = future[:max_samples_shown]
    mean = torch.as_tensor(output.mean_future_features)
    truth = None if output.ground_truth_features is None else torch.as_tensor(output.ground_truth_features)
    rgb = _frames_array(output.future_frames)  # (S, F, H, W, 3) or None
    rgb_mean = _frames_array(output.mean_future_frames)  # (F, H, W, 3) or None
    basis = fit_pca_basis([context, future, mean] + ([truth] if truth is not None else []))
    num_context, num_future = context.shape[0], future.shape[1]
    labels = ["frame", "features"] + [f"sample {k + 1}" for k in range(shown.shape[0])] + ["mean"]
    times = list(torch.as_tensor(output.context_timestamps).flatten().tolist()) + list(
        torch.as_tensor(output.future_timestamps).flatten().tolist()
    )
    animation = []
    for step in range(num_context + num_future):
        rgb_cells = None
        if step < num_context:
            frame = output.context_frames[step] if output.context_frames is not None else None
            cells = [frame, basis.project(context[step], grid_size)] + [None] * (shown.shape[0] + 1)
        else:
            future_step = step - num_context
            frame = output.ground_truth_frames[future_step] if output.ground_truth_frames is not None else None
            truth_cell = basis.project(truth[future_step], grid_size) if truth is not None else None
            cells = [frame, truth_cell] + list(basis.project(shown[:, future_step], grid_size)) + [
                basis.project(mean[future_step], grid_size)
            ]
            if rgb is not None:
                rgb_cells = [None, None] + list(rgb[: shown.shape[0], future_step])
                rgb_cells.append(rgb_mean[future_step] if rgb_mean is not None else None)
        kind = "context" if step < num_context else "future"
        rows = [(kind, cells)] + ([("RGB", rgb_cells or [None] * len(cells))] if rgb is not None else [])
        animation.append(_draw_grid(rows, labels, cell_size=cell_size, title=f"t = {times[step]:.2f} s ({kind})"))
    return _write_gif(animation, path, fps)


# ----------------------------------------------------------------------------------------------
# The fork: one clip, several futures that go different ways
# ----------------------------------------------------------------------------------------------


def _fork_columns(clip, mode_names: Sequence[str], max_samples_shown: int) -> tuple[list[str], list, list[str | None]]:
    """Column titles, cells and captions of one fork clip's row (see [`make_fork_grid`])."""
    num_samples = len(clip.sample_frames)
    shown = min(max_samples_shown, num_samples)
    times = [float(t) for t in torch.as_tensor(clip.context_timestamps).flatten()]
    titles = [f"t={t:.2f}s" for t in times] + [f"branch {name}" for name in mode_names]
    weights = getattr(clip, "candidate_weights", None)
    if weights is not None:  # select-then-decode: the kept futures, each with the share of the drawn ones it stands for
        titles += [f"kept {k + 1}: {float(weights[k]):.0%}" for k in range(shown)] + ["weighted mean"]
    else:
        titles += [f"sample {k + 1}" for k in range(shown)] + [f"mean of {num_samples}"]
    cells = list(clip.context_frames) + list(clip.branch_frames) + list(clip.sample_frames[:shown]) + [clip.mean_frame]
    name_of = lambda mode: mode_names[mode] if mode >= 0 else "none"  # noqa: E731
    captions = [None] * len(clip.context_frames)
    captions += ["TRUE future" if mode == clip.true_mode else "possible" for mode in range(len(mode_names))]
    captions += [f"reads: {name_of(int(mode))}" for mode in clip.sample_modes[:shown]] + ["ghost of all"]
    return titles, cells, captions


def make_fork_grid(
    clips: Sequence, mode_names: Sequence[str], max_samples_shown: int = 8, cell_size: int = 80, title: str | None = None
) -> Image.Image:
    """
    One row per fork-world clip: its context frames, the first future frame of every branch (the clip's true one
    marked), the first `max_samples_shown` sampled futures as decoded RGB frames with the branch read from their
    pixels under each, and the pixel mean of all samples (a ghost of every branch they took). The row label says how
    many branches the samples covered.

    Args:
        clips: objects with `context_frames` `(T, H, W, 3)` uint8, `branch_frames` `(num_modes, H, W, 3)`,
            `true_mode` (int), `sample_frames` `(num_samples, H, W, 3)`, `sample_modes` `(num_samples,)` (-1: none),
            `mean_frame` `(H, W, 3)`, `context_timestamps` `(T,)` (e.g. [`deltatok_hf.demo.ForkDemoClip`]); with
            `candidate_weights` (select-then-decode), each sample column is titled with its weight.
        mode_names: a name per branch, e.g. `("left", "straight", "right")`.
    """
    if not clips:
        raise ValueError("make_fork_grid needs at least one clip.")
    if max_samples_shown < 1:
        raise ValueError(f"max_samples_shown must be >= 1, got {max_samples_shown}.")
    rows, captions, titles = [], [], None
    for index, clip in enumerate(clips):
        clip_titles, cells, clip_captions = _fork_columns(clip, mode_names, max_samples_shown)
        titles = titles if titles is not None and len(titles) >= len(clip_titles) else clip_titles
        covered = len({int(mode) for mode in clip.sample_modes if int(mode) >= 0})
        rows.append((f"clip {index + 1}: {covered}/{len(mode_names)} branches", cells))
        captions.append(clip_captions)
    return _draw_grid(rows, titles, cell_size=cell_size, title=title, captions=captions)


def save_fork_png(clips: Sequence, path: str | Path, mode_names: Sequence[str], **kwargs) -> Path:
    """Write [`make_fork_grid`] to a PNG file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_fork_grid(clips, mode_names, **kwargs).save(path)
    return path


def save_fork_gif(
    clips: Sequence, path: str | Path, max_samples_shown: int = 8, cell_size: int = 80, fps: int = 2, title: str | None = None
) -> Path:
    """
    Animate fork clips over time, one row per clip: during the context every column shows the context frame; on the
    future frame the columns show the true future, each sampled future (decoded RGB) and the pixel mean of all
    samples, so the discs visibly leave the junction in different directions.
    """
    if not clips:
        raise ValueError("save_fork_gif needs at least one clip.")
    shown = min(max_samples_shown, min(len(clip.sample_frames) for clip in clips))
    labels = ["true"] + [f"sample {k + 1}" for k in range(shown)] + ["mean"]
    num_context = len(clips[0].context_frames)
    animation = []
    for step in range(num_context + 1):
        rows = []
        for index, clip in enumerate(clips):
            if step < num_context:
                cells = [clip.context_frames[step]] * (shown + 2)
            else:
                cells = [clip.branch_frames[clip.true_mode], *clip.sample_frames[:shown], clip.mean_frame]
            rows.append((f"clip {index + 1}", cells))
        kind = "context" if step < num_context else "future: the samples fork"
        heading = f"{title + ' - ' if title else ''}frame {step + 1} ({kind})"
        animation.append(_draw_grid(rows, labels, cell_size=cell_size, title=heading))
    return _write_gif(animation, path, fps)
