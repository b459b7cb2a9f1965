"""Readers for the forecasting benchmarks of the DeltaTok paper (VSPW, Cityscapes, KITTI), following the official
evaluation protocol, plus unlabelled windows (a folder of videos, synthetic clips) and synthetic labelled frames.

Every reader yields *windows*: `num_frames` frames (7 = 4 context + 3 future by default) spaced `time_stride_seconds`
apart and ending on a labelled frame. The official readers are `datasets/vspw.py`, `datasets/cityscapes.py`,
`datasets/kitti.py` and `datasets/base.py` of github.com/amazon-far/deltatok. Only local roots are read: nothing is
downloaded.

Item of every dataset (a dict):
    frames (`torch.uint8` `(num_frames, 3, height, width)`): resized so the short side is `frame_size` (the long side
        capped at `max_aspect_ratio * frame_size`, which squeezes wider frames, as the official code does).
    timestamps (`torch.float32` `(num_frames,)`): seconds from the first frame of the window (`index / fps`).
    labels (`(num_frames, label_height, label_width)`): at the *original* resolution (after the KITTI KB crop); `int64`
        class ids with `IGNORE_INDEX` (255) = ignore for segmentation, `float32` metres with 0 = invalid for depth.
        Frames without a label are all-255 / all-0.
    frame_indices (`torch.int64` `(num_frames,)`): index of each frame in its sequence (for checks and logs).
    index (`int`): position of the window in the dataset.

`VideoFolderWindows` and `SyntheticWindows` have no labels (`labels` is absent): they are scored in feature space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..metrics.functional import IGNORE_INDEX, MAX_DEPTH, MIN_DEPTH, depth_valid_mask
from .datasets import list_video_files
from .sampling import resize_short_side
from .video_processor import MAX_ASPECT_RATIO, check_positive_integer, check_positive_number


# The official evaluation protocol: 4 context frames, 3 future frames, frames 512 pixels on the short side.
BENCHMARK_NUM_CONTEXT_FRAMES = 4
BENCHMARK_NUM_FUTURE_FRAMES = 3
BENCHMARK_FRAME_SIZE = 512

# VSPW (datasets/vspw.py): 15 fps, every 20th frame evaluated (indices 19, 39, ...), 124 classes stored as 1..124.
VSPW_FPS = 15.0
VSPW_LABEL_INTERVAL = 20
VSPW_NUM_CLASSES = 124
VSPW_TIME_STRIDE_SECONDS = 0.2

# Cityscapes (datasets/cityscapes.py): the sequences are treated as 16 fps (stride int(0.1875 * 16) = 3 frames); the
# labelled frame is the 20th of each 30-frame snippet and the only one with a label.
CITYSCAPES_FPS = 16.0
CITYSCAPES_NUM_CLASSES = 19
CITYSCAPES_TIME_STRIDE_SECONDS = 0.1875
CITYSCAPES_LABEL_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip

# KITTI (datasets/kitti.py): 10 fps, KB crop 352 x 1216 (bottom-centre), depth PNGs in 1/256 m, Garg crop and the
# (MIN_DEPTH, MAX_DEPTH) range of `deltatok_hf.metrics.functional`, frames before index 19 of a drive skipped.
KITTI_FPS = 10.0
KITTI_TIME_STRIDE_SECONDS = 0.2
KITTI_KB_CROP_HEIGHT = 352
KITTI_KB_CROP_WIDTH = 1216
KITTI_MIN_LABEL_FRAME_INDEX = 19

# Unlabelled video folders: the spacing of the official validation videos (`compute_middle_frame_indices`).
VIDEO_FOLDER_TIME_STRIDE_SECONDS = 0.2

# `None` for synthetic clips: they carry their own timestamps.
DEFAULT_TIME_STRIDE_SECONDS = {
    "vspw": VSPW_TIME_STRIDE_SECONDS,
    "cityscapes": CITYSCAPES_TIME_STRIDE_SECONDS,
    "kitti": KITTI_TIME_STRIDE_SECONDS,
    "videos": VIDEO_FOLDER_TIME_STRIDE_SECONDS,
    "synthetic": None,
}
LABELLED_DATASETS = ("vspw", "cityscapes", "kitti")

_DEFAULT_NUM_FRAMES = BENCHMARK_NUM_CONTEXT_FRAMES + BENCHMARK_NUM_FUTURE_FRAMES


# ---------------------------------------------------------------------------------------------------------------------
# Labelled windows
# ---------------------------------------------------------------------------------------------------------------------


def resize_benchmark_frames(
    frames: torch.Tensor, frame_size: int, max_aspect_ratio: float = MAX_ASPECT_RATIO
) -> torch.Tensor:
    """Short side -> `frame_size`, long side capped at `max_aspect_ratio * frame_size` (official `compute_resize_sizes`;
    KITTI's 352 x 1216 becomes 256 x 512 at 256), bilinear without antialiasing like the official
    `cv2.resize(INTER_LINEAR)` (rounding may differ by one). The square crops are cut later, by
    `deltatok_hf.data.video_processor.split_into_square_crops`, so that the labels can be split alongside."""
    return resize_short_side(frames, frame_size, antialias=False, max_aspect_ratio=max_aspect_ratio)


def _read_rgb(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1)  # (3, height, width)


@dataclass
class BenchmarkWindow:
    """One evaluation window: frame files, their sequence indices and the label file of each frame (or None)."""

    frame_paths: list[Path]
    frame_indices: list[int]
    label_paths: list[Path | None] = field(default_factory=list)


class LabelledWindows(torch.utils.data.Dataset):
    """Base class: windows of image files with per-frame labels; subclasses fill `self.windows` and `_load_label`.

    Options of every reader (keyword arguments of each subclass):
        num_frames (`int`, defaults to 7): frames per window (4 context + 3 future in the official protocol).
        frame_size (`int`, defaults to 512): short side of the resized frames.
        time_stride_seconds (`float`, *optional*): spacing of the window's frames; the dataset's official one if unset.
        fps (`float`, *optional*): frame rate of the sequences; the dataset's official one if unset.
        max_aspect_ratio (`float`, defaults to 2): cap of the long side, in multiples of the short side.
    """

    task = "segmentation"  # or "depth"
    num_labels: int | None = None
    default_fps: float
    default_time_stride_seconds: float

    def __init__(
        self,
        num_frames: int = _DEFAULT_NUM_FRAMES,
        frame_size: int = BENCHMARK_FRAME_SIZE,
        time_stride_seconds: float | None = None,
        fps: float | None = None,
        max_aspect_ratio: float = MAX_ASPECT_RATIO,
    ):
        time_stride_seconds = self.default_time_stride_seconds if time_stride_seconds is None else time_stride_seconds
        fps = self.default_fps if fps is None else fps
        check_positive_integer("num_frames", num_frames)
        check_positive_integer("frame_size", frame_size)
        check_positive_number("time_stride_seconds", time_stride_seconds)
        check_positive_number("fps", fps)
        check_positive_number("max_aspect_ratio", max_aspect_ratio)
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.fps = fps
        self.max_aspect_ratio = max_aspect_ratio
        # int(), not round(): the official readers truncate (0.1875 s * 16 fps = 3 frames).
        self.stride_frames = int(time_stride_seconds * fps)
        if self.stride_frames < 1:
            raise ValueError(
                f"`time_stride_seconds={time_stride_seconds}` at {fps} fps is less than one frame; use a larger stride."
            )
        self.windows: list[BenchmarkWindow] = []

    def window_indices(self, label_index: int) -> list[int] | None:
        """Frame indices of the window ending on `label_index`, or None when it would start before frame 0."""
        start = label_index - (self.num_frames - 1) * self.stride_frames
        if start < 0:
            return None
        return list(range(start, label_index + 1, self.stride_frames))

    def __len__(self) -> int:
        return len(self.windows)

    def _empty_label(self, height: int, width: int) -> torch.Tensor:
        if self.task == "segmentation":
            return torch.full((height, width), IGNORE_INDEX, dtype=torch.int64)
        return torch.zeros((height, width), dtype=torch.float32)

    def _load_label(self, path: Path) -> torch.Tensor:
        # Abstract hook: each benchmark reader (VSPW, Cityscapes, KITTI) decodes its own label files.
        raise NotImplementedError(f"{type(self).__name__} must define _load_label().")

    def _crop(self, image: torch.Tensor) -> torch.Tensor:
        """Dataset-specific crop applied to frames and labels alike (KITTI's KB crop); identity by default."""
        return image

    def __getitem__(self, index: int) -> dict:
        window = self.windows[index]
        frames = torch.stack([self._crop(_read_rgb(path)) for path in window.frame_paths])
        label_height, label_width = frames.shape[-2:]
        labels = torch.stack(
            [
                self._load_label(path) if path is not None else self._empty_label(label_height, label_width)
                for path in window.label_paths
            ]
        )  # (num_frames, label_height, label_width)
        frames = resize_benchmark_frames(frames, self.frame_size, self.max_aspect_ratio)  # (num_frames, 3, h, w)
        timestamps = torch.tensor([frame_index / self.fps for frame_index in window.frame_indices], dtype=torch.float32)
        return {
            "frames": frames,
            "timestamps": timestamps - timestamps[0],
            "labels": labels,
            "frame_indices": torch.tensor(window.frame_indices, dtype=torch.int64),
            "index": index,
        }


class VSPWWindows(LabelledWindows):
    """VSPW video scene parsing: `<root>/<split>.txt` names videos in `<root>/data/<video>/origin/*.jpg` (frames) and
    `<root>/data/<video>/mask/*.png` (labels, 0 = unlabelled, 1..124 = classes, 255 = ignore -> ids 0..123 and 255).

    Windows end on every `label_interval`-th frame (indices 19, 39, ...). Every frame of the window carries its label.
    """

    task = "segmentation"
    num_labels = VSPW_NUM_CLASSES
    default_fps = VSPW_FPS
    default_time_stride_seconds = VSPW_TIME_STRIDE_SECONDS

    def __init__(self, root: str | Path, split: str = "val", label_interval: int = VSPW_LABEL_INTERVAL, **options):
        super().__init__(**options)
        check_positive_integer("label_interval", label_interval)
        root = Path(root)
        split_file = root / f"{split}.txt"
        if not split_file.is_file():
            raise ValueError(f"VSPW split list {split_file} not found; `root` must hold `{split}.txt` and `data/`.")
        video_names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        for video_name in video_names:
            video_dir = root / "data" / video_name
            frame_paths = sorted(
                path for path in (video_dir / "origin").glob("*.jpg") if not path.name.startswith("._")
            )
            for label_index in range(label_interval - 1, len(frame_paths), label_interval):
                indices = self.window_indices(label_index)
                if indices is None:
                    continue
                self.windows.append(
                    BenchmarkWindow(
                        frame_paths=[frame_paths[i] for i in indices],
                        frame_indices=indices,
                        label_paths=[video_dir / "mask" / f"{frame_paths[i].stem}.png" for i in indices],
                    )
                )
        # Note: the official reader shuffles the windows with a fixed seed (to vary its plots); the order does not
        # change any metric, so we keep the sorted order.

    def _load_label(self, path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            label = torch.from_numpy(np.array(image, dtype=np.int64)) - 1
        label[(label < 0) | (label >= VSPW_NUM_CLASSES)] = IGNORE_INDEX
        return label


class CityscapesWindows(LabelledWindows):
    """Cityscapes: `<root>/gtFine/<split>/<city>/*_gtFine_labelIds.png` (label ids -> the 19 train ids, others 255)
    and the frames `<root>/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame:06d>_leftImg8bit.png`.

    One window per labelled frame, ending on it; only that last frame has a label.
    """

    task = "segmentation"
    num_labels = CITYSCAPES_NUM_CLASSES
    default_fps = CITYSCAPES_FPS
    default_time_stride_seconds = CITYSCAPES_TIME_STRIDE_SECONDS

    def __init__(self, root: str | Path, split: str = "val", **options):
        super().__init__(**options)
        root = Path(root)
        label_dir = root / "gtFine" / split
        frames_dir = root / "leftImg8bit_sequence" / split
        if not label_dir.is_dir() or not frames_dir.is_dir():
            raise ValueError(f"Cityscapes root {root} must hold gtFine/{split}/ and leftImg8bit_sequence/{split}/.")
        self.label_to_train_id = np.full(256, IGNORE_INDEX, dtype=np.int64)
        for label_id, train_id in CITYSCAPES_LABEL_TO_TRAIN_ID.items():
            self.label_to_train_id[label_id] = train_id
        for label_path in sorted(label_dir.rglob("*_gtFine_labelIds.png")):
            city, sequence, frame = label_path.name.removesuffix("_gtFine_labelIds.png").split("_")
            indices = self.window_indices(int(frame))
            if indices is None:
                continue
            self.windows.append(
                BenchmarkWindow(
                    frame_paths=[
                        frames_dir / label_path.parent.name / f"{city}_{sequence}_{i:06d}_leftImg8bit.png"
                        for i in indices
                    ],
                    frame_indices=indices,
                    label_paths=[None] * (len(indices) - 1) + [label_path],
                )
            )

    def _load_label(self, path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            label_ids = np.array(image, dtype=np.int64)
        return torch.from_numpy(self.label_to_train_id[label_ids])


def kitti_kb_crop(image: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """KB crop: the bottom 352 rows and the centred 1216 columns of a KITTI image `(..., height, width)`."""
    height, width = image.shape[-2:]
    top, left = height - KITTI_KB_CROP_HEIGHT, (width - KITTI_KB_CROP_WIDTH) // 2
    if top < 0 or left < 0:
        raise ValueError(
            f"KITTI image of size {height}x{width} is smaller than the KB crop "
            f"{KITTI_KB_CROP_HEIGHT}x{KITTI_KB_CROP_WIDTH}."
        )
    return image[..., top : top + KITTI_KB_CROP_HEIGHT, left : left + KITTI_KB_CROP_WIDTH]


class KITTIWindows(LabelledWindows):
    """KITTI Eigen-split depth: a split file with lines `<date>/<drive>/image_02/data/<frame>.png <depth path> <focal>`
    (the `kitti_eigen_test.txt` of the official code; lines whose depth is `None` are skipped), raw frames in
    `<root>/<date>/<drive>/image_02/data/` and projected ground truth in
    `<root>/{val,train}/<drive>/proj_depth/groundtruth/image_02/`.

    Frames and depth get the KB crop; depth (PNG / 256 m) is zeroed outside the Garg crop and the (1e-3, 80) m range
    here, on the whole cropped map, because the crop's fractions are relative to it (the evaluation later splits the
    map into square-crop halves).
    """

    task = "depth"
    default_fps = KITTI_FPS
    default_time_stride_seconds = KITTI_TIME_STRIDE_SECONDS

    def __init__(
        self,
        root: str | Path,
        split_file: str | Path,
        min_label_frame_index: int = KITTI_MIN_LABEL_FRAME_INDEX,
        **options,
    ):
        super().__init__(**options)
        root, split_file = Path(root), Path(split_file)
        if not split_file.is_file():
            raise ValueError(f"KITTI split file {split_file} not found (pass e.g. the Eigen test list).")
        for line in split_file.read_text().splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[1] == "None":
                continue
            tokens = parts[0].split("/")
            date, drive, frame = tokens[0], tokens[1], int(Path(tokens[-1]).stem)
            if frame < min_label_frame_index:
                continue
            indices = self.window_indices(frame)
            depth_dir = self._find_depth_dir(root, drive)
            if indices is None or depth_dir is None:
                continue
            image_dir = root / date / drive / "image_02" / "data"
            self.windows.append(
                BenchmarkWindow(
                    frame_paths=[image_dir / f"{i:010d}.png" for i in indices],
                    frame_indices=indices,
                    label_paths=[depth_dir / f"{i:010d}.png" for i in indices],
                )
            )

    @staticmethod
    def _find_depth_dir(root: Path, drive: str) -> Path | None:
        for split in ("val", "train"):
            directory = root / split / drive / "proj_depth" / "groundtruth" / "image_02"
            if directory.is_dir():
                return directory
        return None

    def _crop(self, image: torch.Tensor) -> torch.Tensor:
        return kitti_kb_crop(image)

    def _load_label(self, path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            depth = kitti_kb_crop(np.array(image, dtype=np.float32) / 256.0)  # (352, 1216) metres
        valid = depth_valid_mask(depth, MIN_DEPTH, MAX_DEPTH, garg_crop=True)
        return torch.from_numpy(np.where(valid, depth, np.float32(0.0)))


# ---------------------------------------------------------------------------------------------------------------------
# Unlabelled windows: a folder of videos, and the synthetic multimodal motion set
# ---------------------------------------------------------------------------------------------------------------------


class VideoFolderWindows(torch.utils.data.Dataset):
    """One window per video of a folder (searched recursively): `num_frames` frames `time_stride_seconds` apart around
    the middle of the video (the official default for unlabelled validation videos, `compute_middle_frame_indices`;
    0.2 s when unset).
    """

    def __init__(
        self,
        root: str | Path,
        num_frames: int = _DEFAULT_NUM_FRAMES,
        frame_size: int = BENCHMARK_FRAME_SIZE,
        time_stride_seconds: float | None = None,
        max_aspect_ratio: float = MAX_ASPECT_RATIO,
    ):
        if time_stride_seconds is None:
            time_stride_seconds = VIDEO_FOLDER_TIME_STRIDE_SECONDS
        check_positive_integer("num_frames", num_frames)
        check_positive_integer("frame_size", frame_size)
        check_positive_number("time_stride_seconds", time_stride_seconds)
        check_positive_number("max_aspect_ratio", max_aspect_ratio)
        self.root = Path(root)
        self.paths = list_video_files(self.root)
        if not self.paths:
            raise ValueError(f"No video files found under {root}.")
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.time_stride_seconds = time_stride_seconds
        self.max_aspect_ratio = max_aspect_ratio

    def __len__(self) -> int:
        return len(self.paths)

    def middle_frame_indices(self, timestamps: torch.Tensor) -> list[int]:
        """Indices of `num_frames` frames `time_stride_seconds` apart (at the video's mean rate), centred in it."""
        num_video_frames = len(timestamps)
        fps = (num_video_frames - 1) / max(float(timestamps[-1] - timestamps[0]), 1e-6)
        stride = max(1, round(self.time_stride_seconds * fps))
        span = (self.num_frames - 1) * stride
        if span >= num_video_frames:
            raise ValueError(
                f"Video has {num_video_frames} frames, too few for {self.num_frames} frames {stride} apart."
            )
        start = max(0, num_video_frames // 2 - span // 2)
        start = min(start, num_video_frames - 1 - span)
        return [start + i * stride for i in range(self.num_frames)]

    def __getitem__(self, index: int) -> dict:
        from .video import read_frames_at, read_timestamps  # noqa: PLC0415 (PyAV only when videos are read)

        path = self.paths[index]
        all_timestamps = read_timestamps(str(path))
        indices = self.middle_frame_indices(all_timestamps)
        decoded = read_frames_at(str(path), all_timestamps[indices])
        frames = decoded.frames.permute(0, 3, 1, 2)  # (num_frames, 3, height, width)
        timestamps = all_timestamps[indices].to(torch.float32)
        return {
            "frames": resize_benchmark_frames(frames, self.frame_size, self.max_aspect_ratio),
            "timestamps": timestamps - timestamps[0],
            "frame_indices": torch.tensor(indices, dtype=torch.int64),
            "index": index,
        }


class SyntheticWindows(torch.utils.data.Dataset):
    """`deltatok_hf.data.SyntheticMultimodalMotion` clips as evaluation windows, with every possible future.

    `all_futures` `(num_modes, num_future_frames, 3, size, size)` holds the future of each motion mode, so mode
    coverage can be measured. Synthetic data: scores on it prove mechanics and learning, not benchmark quality.
    """

    def __init__(self, num_videos: int, num_frames: int, num_context_frames: int, size: int, seed: int = 0):
        from .synthetic import SyntheticMultimodalMotion  # noqa: PLC0415

        self.clips = SyntheticMultimodalMotion(
            num_videos=num_videos,
            num_frames=num_frames,
            num_context_frames=num_context_frames,
            size=size,
            seed=seed,
        )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        clip = self.clips[index]
        timestamps = torch.as_tensor(clip["timestamps"], dtype=torch.float32)
        return {
            "frames": torch.as_tensor(clip["frames"]),
            "timestamps": timestamps - timestamps[0],
            "all_futures": torch.as_tensor(clip["all_futures"]),
            "frame_indices": torch.arange(len(timestamps)),
            "index": index,
        }


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic labelled frames (for linear-probe tests and smoke runs)
# ---------------------------------------------------------------------------------------------------------------------

SYNTHETIC_PALETTE = torch.tensor(
    [[20, 20, 20], [220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 210, 40], [200, 60, 220]], dtype=torch.uint8
)


class SyntheticLabelledFrames(torch.utils.data.Dataset):
    """Single frames of coloured rectangles on a dark background, with a label per pixel (synthetic data).

    Segmentation: the class is the colour index (0 = background). Depth: each colour sits at its own depth
    (`1 + 4 * class` metres), the background has no valid depth (0). Items look like a 1-frame window.
    """

    def __init__(
        self, num_images: int, size: int = 64, task: str = "segmentation", seed: int = 0, height: int | None = None
    ):
        if task not in ("segmentation", "depth"):
            raise ValueError(f"`task` must be 'segmentation' or 'depth', got {task!r}.")
        check_positive_integer("num_images", num_images)
        check_positive_integer("size", size)
        self.task = task
        self.num_labels = len(SYNTHETIC_PALETTE)
        self.num_images, self.size, self.height, self.seed = num_images, size, height or size, seed

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + index)
        height, width = self.height, self.size
        classes = torch.zeros((height, width), dtype=torch.int64)
        for _ in range(3):
            color = int(torch.randint(1, len(SYNTHETIC_PALETTE), (1,), generator=generator))
            box_height = int(torch.randint(height // 4, height // 2 + 1, (1,), generator=generator))
            box_width = int(torch.randint(width // 4, width // 2 + 1, (1,), generator=generator))
            top = int(torch.randint(0, height - box_height + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - box_width + 1, (1,), generator=generator))
            classes[top : top + box_height, left : left + box_width] = color
        frame = SYNTHETIC_PALETTE[classes].permute(2, 0, 1)  # (3, height, width)
        if self.task == "segmentation":
            labels = classes.clone()
            labels[:2] = IGNORE_INDEX  # a strip of ignored pixels, as real label maps have
        else:
            labels = torch.where(classes > 0, 1.0 + 4.0 * classes.float(), torch.zeros(()))
        return {
            "frames": frame[None],
            "timestamps": torch.zeros(1),
            "labels": labels[None],
            "frame_indices": torch.zeros(1, dtype=torch.int64),
            "index": index,
        }


def collate_windows(items: list[dict]) -> dict:
    """Stack a batch of windows; all frames (and labels) of a batch must share one size.

    Datasets with frames of several sizes (VSPW) need a batch size of 1 or same-size batches.
    """
    shapes = {tuple(item["frames"].shape) for item in items}
    if len(shapes) > 1:
        raise ValueError(
            f"Windows of one batch have different frame shapes {sorted(shapes)}; use a batch size of 1 for datasets "
            "whose videos differ in size (VSPW)."
        )
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        batch[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else torch.tensor(values)
    return batch


def build_labelled_dataset(
    name: str,
    root: str | Path | None,
    num_frames: int,
    frame_size: int,
    split: str = "val",
    split_file: str | Path | None = None,
    time_stride_seconds: float | None = None,
    **kwargs,
) -> LabelledWindows:
    """The reader for `name` in `vspw`, `cityscapes`, `kitti`, with the official stride unless one is given."""
    if name not in LABELLED_DATASETS:
        raise ValueError(f"`dataset` must be one of {', '.join(map(repr, LABELLED_DATASETS))}, got {name!r}.")
    if root is None:
        raise ValueError(f"A data root is required for dataset {name!r}.")
    common = dict(num_frames=num_frames, frame_size=frame_size, time_stride_seconds=time_stride_seconds)
    if name == "vspw":
        return VSPWWindows(root, split=split, **common, **kwargs)
    if name == "cityscapes":
        return CityscapesWindows(root, split=split, **common, **kwargs)
    if split_file is None:
        raise ValueError("KITTI needs a split file (lines `<date>/<drive>/image_02/data/<frame>.png <depth> <focal>`).")
    return KITTIWindows(root, split_file=split_file, **common, **kwargs)
