"""Video datasets on top of Hugging Face `datasets`: loading video tables and sampling clips.

`load_video_dataset` turns a folder of videos, a list of paths, a dataset saved with
`save_to_disk`, an existing `datasets.Dataset` / `IterableDataset`, or a Hub dataset id into a
`datasets` object whose video column holds paths or encoded bytes. Decoding `Video` columns
(which give a torchcodec decoder per row, scanning the whole file when a row is read) are cast to
`Video(decode=False)`, and only the frames a clip needs are decoded by `deltatok_hf.data.video`;
rows that already hold such decoders (e.g. a mapped stream without features) are read from the
file they remember.

`VideoClipDataset` then samples training clips from every video the way DeltaTok/DeltaWorld were
trained (see `sampling.py`), decoding only the frames it needs.
"""

from __future__ import annotations

import inspect
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Union

import torch

from .sampling import ClipSampler, VideoTooShortError
from .video import VideoDecodeError, read_frames_at, read_timestamps


logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".gif")

# Column names tried, in order, when `video_column` is not given and no column has a `Video` feature.
VIDEO_COLUMN_CANDIDATES = ("video", "video_path", "path", "file", "file_name", "filename", "mp4", "bytes")


def _import_datasets():
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - datasets is a test/train dependency
        raise ImportError("Video datasets need the `datasets` library: `pip install datasets`.") from error
    return datasets


def list_video_files(folder: Union[str, os.PathLike], extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """All files under `folder` (recursively) whose suffix is in `extensions`, sorted by path."""
    extensions = tuple(extension.lower() for extension in extensions)
    return sorted(path for path in Path(folder).rglob("*") if path.is_file() and path.suffix.lower() in extensions)


def _table_of_paths(paths: Sequence[Union[str, os.PathLike]], root: Path | None = None):
    datasets = _import_datasets()
    video_ids = []
    for path in paths:
        path = Path(path)
        relative = path.relative_to(root) if root is not None else Path(path.name)
        video_ids.append(str(relative.with_suffix("")))
    return datasets.Dataset.from_dict(
        {"video": [str(path) for path in paths], "video_id": video_ids},
        features=datasets.Features({"video": datasets.Value("string"), "video_id": datasets.Value("string")}),
    )


def _undecoded_video_columns(dataset):
    """Cast every `Video` column that would decode to `Video(decode=False)`."""
    datasets = _import_datasets()
    features = getattr(dataset, "features", None)
    if not features:
        return dataset
    for name, feature in features.items():
        if isinstance(feature, datasets.Video) and feature.decode:
            dataset = dataset.cast_column(name, datasets.Video(decode=False))
    return dataset


# Data files that `datasets` reads with a packaged builder, by suffix: WebDataset tars (one
# sample per key; `.mp4` members become a `Video` column) and parquet tables.
PACKAGED_SUFFIXES = {".tar": "webdataset", ".parquet": "parquet"}


def _packaged_files(paths: Sequence[Path]) -> tuple[str, list[str]] | None:
    """`(builder, files)` when `paths` are all data files of one packaged builder, else `None`."""
    builders = {PACKAGED_SUFFIXES.get(path.suffix.lower()) for path in paths}
    if len(builders) != 1 or None in builders:
        return None
    return builders.pop(), [str(path) for path in sorted(paths)]


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def load_video_dataset(
    source: Any,
    split: str = "train",
    streaming: bool = False,
    video_column: str | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    num_shards: int | None = None,
    **load_kwargs,
):
    """
    Load a table of videos as a `datasets.Dataset` (or `IterableDataset` when `streaming`).

    Args:
        source:
            - a folder of video files (searched recursively; when it has a `split` subfolder,
              only that one). Columns: `video` (path) and `video_id` (path relative to the
              folder, without suffix);
            - a folder (or one file) of WebDataset `.tar` shards or `.parquet` tables holding
              videos, read by `datasets`' `webdataset` / `parquet` builders (one shard per file,
              so a streamed copy splits by file across nodes and DataLoader workers);
            - a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`;
            - a list of video paths (same columns as a folder);
            - a `datasets.Dataset`, `IterableDataset` or `DatasetDict` whose video column holds
              paths, bytes, or `{"path", "bytes"}` dicts (what `Video(decode=False)` gives);
            - otherwise a Hub dataset id, loaded with `datasets.load_dataset(source, split=split,
              streaming=streaming, **load_kwargs)`.
        split (`str`, *optional*, defaults to `"train"`): split of a `DatasetDict`, saved
            dataset dict, Hub dataset or folder with split subfolders.
        streaming (`bool`, *optional*, defaults to `False`): return an `IterableDataset`, ready
            for `datasets.distributed.split_dataset_by_node` and DataLoader workers.
        video_column (`str`, *optional*): the column holding the videos; checked when given.
        extensions (sequence of `str`): file suffixes counted as videos in folders.
        num_shards (`int`, *optional*): shards of the `IterableDataset` made from an in-memory
            table when `streaming` (defaults to `min(num_rows, 64)`). Use a multiple of
            `world_size × num_workers` so every node and worker gets whole shards.

    Returns:
        `datasets.Dataset` or `datasets.IterableDataset`; `Video` columns are cast to
        `Video(decode=False)`.
    """
    datasets = _import_datasets()
    if isinstance(source, datasets.DatasetDict) or isinstance(source, datasets.IterableDatasetDict):
        if split not in source:
            raise ValueError(f"Split {split!r} not found; available splits: {sorted(source.keys())}.")
        source = source[split]

    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        dataset = source
    elif isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("`source` is an empty list of videos.")
        for entry in source:
            if not isinstance(entry, (str, os.PathLike)):
                raise TypeError(f"A list `source` must hold video paths, got an entry of type {type(entry).__name__}.")
        dataset = _table_of_paths(source)
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        folder = Path(source)
        if _is_saved_dataset(folder):
            return load_video_dataset(
                datasets.load_from_disk(str(folder)),
                split=split,
                streaming=streaming,
                video_column=video_column,
                num_shards=num_shards,
            )
        if (folder / split).is_dir():
            folder = folder / split
        paths = list_video_files(folder, extensions)
        packaged = None if paths else _packaged_files(list_video_files(folder, tuple(PACKAGED_SUFFIXES)))
        if packaged is not None:
            builder, files = packaged
            dataset = datasets.load_dataset(builder, data_files={split: files}, split=split, streaming=streaming, **load_kwargs)
        elif not paths:
            raise ValueError(
                f"No video files with suffixes {tuple(extensions)}, WebDataset tars or parquet files "
                f"found under {str(folder)!r}."
            )
        else:
            dataset = _table_of_paths(paths, root=folder)
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        packaged = _packaged_files([Path(source)])
        if packaged is not None:
            builder, files = packaged
            dataset = datasets.load_dataset(builder, data_files={split: files}, split=split, streaming=streaming, **load_kwargs)
        else:
            dataset = _table_of_paths([source])
    elif isinstance(source, str):
        if os.sep in source and not Path(source).exists() and source.startswith((".", "/", "~")):
            raise ValueError(f"Video folder or file not found: {source!r}.")
        dataset = datasets.load_dataset(source, split=split, streaming=streaming, **load_kwargs)
    else:
        raise TypeError(
            "`source` must be a folder, a list of paths, a datasets.Dataset/IterableDataset/DatasetDict "
            f"or a Hub dataset id, got {type(source).__name__}."
        )

    dataset = _undecoded_video_columns(dataset)
    if streaming and isinstance(dataset, datasets.Dataset):
        if num_shards is None:
            num_shards = max(1, min(len(dataset), 64))
        dataset = dataset.to_iterable_dataset(num_shards=num_shards)
    infer_video_column(dataset, video_column)
    return dataset


def infer_video_column(dataset, video_column: str | None = None) -> str:
    """
    The name of the column holding videos: `video_column` when given (checked), else the first
    column with a `Video` feature, else the first of `VIDEO_COLUMN_CANDIDATES` present.
    """
    datasets = _import_datasets()
    column_names = list(getattr(dataset, "column_names", None) or [])
    features = getattr(dataset, "features", None) or {}
    if video_column is not None:
        if column_names and video_column not in column_names:
            raise ValueError(f"`video_column` {video_column!r} is not a column of the dataset; columns: {column_names}.")
        return video_column
    for name, feature in features.items():
        if isinstance(feature, datasets.Video):
            return name
    for name in VIDEO_COLUMN_CANDIDATES:
        if name in column_names:
            return name
    raise ValueError(
        f"Could not find the video column among {column_names}; pass `video_column=` "
        f"(tried a `Video` feature and the names {VIDEO_COLUMN_CANDIDATES})."
    )


def video_source_from_entry(entry: Any) -> tuple[Union[str, bytes], str | None]:
    """
    Turn a video column entry into `(source, name)`: `source` is a path or bytes for
    `read_frames_at`; `name` is a file name when one is known (for ids and messages).

    Entries may be paths, bytes, `{"path", "bytes"}` dicts (`Video(decode=False)`), or the
    torchcodec decoders of a decoding `datasets.Video` column (their file is read again).
    """
    if isinstance(entry, (str, os.PathLike)):
        return os.fspath(entry), Path(entry).stem
    if isinstance(entry, (bytes, bytearray, memoryview)):
        return bytes(entry), None
    encoded = getattr(entry, "_hf_encoded", None)
    if isinstance(encoded, dict):
        # A decoding `datasets.Video` column gives torchcodec decoders that remember their file.
        entry = encoded
    if isinstance(entry, dict):
        data, path = entry.get("bytes"), entry.get("path")
        name = Path(path).stem if path else None
        if data:
            return bytes(data), name
        if path:
            return os.fspath(path), name
        raise ValueError(f"A video entry dict has neither 'bytes' nor 'path': keys {sorted(entry.keys())}.")
    raise TypeError(
        f"A video entry must be a path, bytes or a {{'path', 'bytes'}} dict, got {type(entry).__name__}."
    )


STAT_NAMES = ("videos", "clips", "skipped_unreadable", "skipped_too_short")
MAX_COUNTED_WORKERS = 64


class NoUsableVideosError(ValueError):
    """A whole pass over a video dataset gave no clip: every video was unreadable or too short."""


def window_frame_times(frame_times: torch.Tensor, start: float | None, end: float | None) -> torch.Tensor:
    """
    The frames of `frame_times` inside the window `[start, end)` seconds (either bound optional).

    Used for videos that hold several episodes one after another (LeRobot v3): an episode spans
    `[from_timestamp, to_timestamp)` of its file and the next one starts at `to_timestamp`. The
    bounds are compared with half a frame interval of slack (the median gap), so float rounding
    of the stored bounds can neither drop an episode's first frame nor add the next one's.

    Args:
        frame_times (`torch.Tensor` of shape `(num_frames,)`): sorted frame times of the video.

    Returns:
        `torch.Tensor` of shape `(num_window_frames,)`.
    """
    if start is None and end is None:
        return frame_times
    slack = 0.5 * float(torch.diff(frame_times).median()) if frame_times.numel() > 1 else 0.0
    keep = torch.ones_like(frame_times, dtype=torch.bool)
    if start is not None:
        keep &= frame_times >= float(start) - slack
    if end is not None:
        keep &= frame_times < float(end) - slack
    return frame_times[keep]


def _stable_seed(*parts: Any) -> int:
    """A 63-bit seed from strings/ints, stable across processes (unlike `hash`)."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return (zlib.crc32(text) << 31 | zlib.crc32(text[::-1])) & (2**63 - 1)


def _accepts_generator(transform: Callable) -> bool:
    try:
        return "generator" in inspect.signature(transform).parameters
    except (TypeError, ValueError):
        return False


class VideoClipDataset(torch.utils.data.IterableDataset):
    """
    Training clips sampled from a table of videos.

    For every video, `num_clips_per_video` clips are drawn with `sampler` (a `ClipSampler`), the
    needed frames are decoded with `read_frames_at` (one pass over the video for all its clips),
    `transform` is applied (e.g. `RandomResizedCropVideo`, called with the clip's generator when
    it takes one), and a dict is yielded:

    - `"frames"`: `uint8` `(num_frames, 3, height, width)`
    - `"timestamps"`: `float32` `(num_frames,)`, seconds from the clip's first frame
    - `"video_id"`: `str`

    Unreadable videos (missing, corrupt, truncated, empty, without a video stream) and videos too
    short for a clip (`VideoTooShortError` from the sampler: fewer frames, or less time, than a
    clip needs) are skipped with a `logging` warning and counted in `stats` / `num_skipped`; they
    never stop the run. Variable-frame-rate videos are used as they are: clips are drawn on their
    real frame times. When a whole pass yields no clip at all, `NoUsableVideosError` is raised
    (naming the counts and the first problems) instead of an endless empty epoch; inside one of
    several DataLoader workers a worker cannot know whether the others found clips, so there the
    pass just ends (the training loop raises when an epoch gives no batch). The counts in `stats`
    include those of DataLoader workers (kept in shared memory).

    Time windows: with `start_column` / `end_column`, each row's clips use only the frames in
    `[start, end)` seconds of its video (see `window_frame_times`); this is how the episodes of a
    LeRobot v3 file, which holds several, are kept apart (`LeRobotClipDataset`).

    Sharding: with a map-style `datasets.Dataset` (or a folder / list of paths), DataLoader
    workers take every `num_workers`-th video. With a streaming `IterableDataset`, `datasets`
    gives each worker whole shards, and `datasets.distributed.split_dataset_by_node` (applied
    before wrapping) splits it across nodes. For a map-style dataset on several nodes, apply
    `split_dataset_by_node` to it as well.

    Randomness: each video's clips come from a generator seeded by `(seed, epoch, video_id)`,
    so they do not depend on the number of workers or nodes. With `seed=None` a fresh base seed
    is drawn from torch's default RNG each time iteration starts.

    Args:
        videos: anything `load_video_dataset` accepts (a `datasets` object is used as is).
        num_frames (`int`, *optional*, defaults to 8): frames per clip (ignored when `sampler` is given).
        num_clips_per_video (`int`, *optional*, defaults to 1).
        sampler (`ClipSampler`, *optional*): defaults to `ClipSampler(num_frames, min_gap, max_gap)`.
        min_gap (`float`), max_gap (`float`): gap range in seconds for the default sampler.
        transform (callable, *optional*): `(frames uint8 (T, 3, H, W)[, generator]) -> tensor`.
        video_column (`str`, *optional*): inferred when not given (see `infer_video_column`).
        id_column (`str`, *optional*, defaults to `"video_id"`): column used for `video_id` when
            present; otherwise a WebDataset `__key__`, the file name, or the row number for bytes
            without a name.
        shuffle (`bool`, *optional*, defaults to `False`): shuffle the video order of a
            map-style dataset each epoch (streaming datasets: use `dataset.shuffle(...)`).
        seed (`int`, *optional*): base seed (see above).
        backend (`str`, *optional*, defaults to `"auto"`): decoding backend.
        start_column (`str`, *optional*), end_column (`str`, *optional*): columns holding each
            row's time window in seconds (a missing or `None` value leaves that side open).
    """

    def __init__(
        self,
        videos: Any,
        num_frames: int = 8,
        num_clips_per_video: int = 1,
        sampler: ClipSampler | None = None,
        min_gap: float = 1 / 25,
        max_gap: float = 1 / 3,
        transform: Callable | None = None,
        video_column: str | None = None,
        id_column: str = "video_id",
        shuffle: bool = False,
        seed: int | None = None,
        backend: str = "auto",
        start_column: str | None = None,
        end_column: str | None = None,
    ):
        super().__init__()
        datasets = _import_datasets()
        if not isinstance(num_clips_per_video, int) or num_clips_per_video < 1:
            raise ValueError(f"`num_clips_per_video` must be a positive integer, got {num_clips_per_video!r}.")
        if sampler is not None and not isinstance(sampler, ClipSampler):
            raise TypeError(f"`sampler` must be a ClipSampler, got {type(sampler).__name__}.")
        if transform is not None and not callable(transform):
            raise TypeError(f"`transform` must be callable, got {type(transform).__name__}.")
        if not isinstance(videos, (datasets.Dataset, datasets.IterableDataset)):
            videos = load_video_dataset(videos, video_column=video_column)
        self.dataset = _undecoded_video_columns(videos)
        self.is_streaming = isinstance(self.dataset, datasets.IterableDataset)
        self.video_column = infer_video_column(self.dataset, video_column)
        self.id_column = id_column
        self.sampler = sampler if sampler is not None else ClipSampler(num_frames, min_gap=min_gap, max_gap=max_gap)
        self.num_clips_per_video = num_clips_per_video
        self.transform = transform
        self._transform_takes_generator = transform is not None and _accepts_generator(transform)
        self.shuffle = shuffle
        self.seed = seed
        self.backend = backend
        column_names = list(getattr(self.dataset, "column_names", None) or [])
        for column in (start_column, end_column):
            if column is not None and column_names and column not in column_names:
                raise ValueError(f"Window column {column!r} is not a column of the dataset; columns: {column_names}.")
        self.start_column = start_column
        self.end_column = end_column
        # Frame times of the last video file read: consecutive rows often share a file (LeRobot).
        self._timestamps_of: tuple[str, torch.Tensor] | None = None
        self.epoch = 0
        # One row of counts per process (row 0: the process that made the dataset; row 1 + i: DataLoader worker i),
        # in shared memory so that the workers' skips reach `stats` in the main process (for the run summary).
        self._counts = torch.zeros(1 + MAX_COUNTED_WORKERS, len(STAT_NAMES), dtype=torch.int64).share_memory_()

    def __repr__(self) -> str:
        return (
            f"VideoClipDataset(num_videos={'streaming' if self.is_streaming else len(self.dataset)}, "
            f"sampler={self.sampler}, num_clips_per_video={self.num_clips_per_video}, transform={self.transform})"
        )

    @property
    def stats(self) -> dict[str, int]:
        """Counts over every pass so far, DataLoader workers included: `videos` used, `clips` yielded,
        `skipped_unreadable`, `skipped_too_short`."""
        return dict(zip(STAT_NAMES, self._counts.sum(dim=0).tolist()))

    def _count(self, name: str, amount: int = 1) -> None:
        worker = torch.utils.data.get_worker_info()
        # Each process writes only its own row, so no two processes race on one counter (beyond
        # MAX_COUNTED_WORKERS workers, rows are shared and a count may rarely be lost).
        row = 0 if worker is None else 1 + worker.id % MAX_COUNTED_WORKERS
        self._counts[row, STAT_NAMES.index(name)] += amount

    @property
    def num_skipped(self) -> int:
        """Videos skipped so far (unreadable or too short), DataLoader workers included."""
        return self.stats["skipped_unreadable"] + self.stats["skipped_too_short"]

    def set_epoch(self, epoch: int) -> None:
        """Change the clips drawn (and the shuffle order) for a new epoch."""
        self.epoch = int(epoch)
        if self.is_streaming and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def _video_id(self, example: dict, name: str | None, row: int | None) -> str:
        if self.id_column in example and example[self.id_column] is not None:
            return str(example[self.id_column])
        if example.get("__key__") is not None:  # a WebDataset sample's key
            return str(example["__key__"])
        if name:
            return name
        return f"row-{row}" if row is not None else "unknown"

    def clips_from_example(self, example: dict, video_id: str, base_seed: int) -> list[dict]:
        """
        Sample and decode the clips of one table row. Raises `VideoDecodeError` /
        `VideoTooShortError` (both `ValueError`s) for videos that must be skipped.
        """
        source, _ = video_source_from_entry(example[self.video_column])
        generator = torch.Generator().manual_seed(_stable_seed(base_seed, self.epoch, video_id))
        frame_timestamps = self._frame_times(source)  # (num_video_frames,)
        frame_timestamps = window_frame_times(
            frame_timestamps,
            example.get(self.start_column) if self.start_column else None,
            example.get(self.end_column) if self.end_column else None,
        )  # (num_window_frames,)
        clips = [self.sampler(frame_timestamps, generator=generator) for _ in range(self.num_clips_per_video)]
        # One decoding pass for all clips of this video.
        wanted_times = torch.cat([clip.frame_times for clip in clips])  # (num_clips * num_frames,)
        decoded = read_frames_at(source, wanted_times, backend=self.backend)
        all_frames = decoded.frames.permute(0, 3, 1, 2)  # (num_clips * num_frames, 3, height, width)
        outputs = []
        for clip_index, clip in enumerate(clips):
            start = clip_index * self.sampler.num_frames
            frames = all_frames[start : start + self.sampler.num_frames].contiguous()  # (num_frames, 3, H, W)
            if self.transform is not None:
                frames = self.transform(frames, generator=generator) if self._transform_takes_generator else self.transform(frames)
            outputs.append({"frames": frames, "timestamps": clip.timestamps, "video_id": video_id})
        return outputs

    def _frame_times(self, source: Union[str, bytes]) -> torch.Tensor:
        if isinstance(source, str) and self._timestamps_of is not None and self._timestamps_of[0] == source:
            return self._timestamps_of[1]
        frame_times = read_timestamps(source, backend=self.backend)
        if isinstance(source, str):
            self._timestamps_of = (source, frame_times)
        return frame_times

    def _examples(self) -> Iterator[tuple[dict, int | None]]:
        """Rows for this worker: `(example, row_number or None)`."""
        if self.is_streaming:
            # `datasets.IterableDataset` gives each DataLoader worker its own shards.
            for example in self.dataset:
                yield example, None
            return
        num_rows = len(self.dataset)
        if self.shuffle:
            order_generator = torch.Generator().manual_seed(_stable_seed(self.seed or 0, self.epoch, "order"))
            order = torch.randperm(num_rows, generator=order_generator).tolist()
        else:
            order = list(range(num_rows))
        worker = torch.utils.data.get_worker_info()
        if worker is not None:
            order = order[worker.id :: worker.num_workers]
        for row in order:
            yield self.dataset[row], row

    def __iter__(self) -> Iterator[dict]:
        base_seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, (1,)))
        num_seen, num_used, num_too_short, problems = 0, 0, 0, []  # this pass only (`stats` adds up over passes)
        for example, row in self._examples():
            num_seen += 1
            video_id = str(row)
            try:
                _, name = video_source_from_entry(example[self.video_column])
                video_id = self._video_id(example, name, row)
                clips = self.clips_from_example(example, video_id, base_seed)
            except VideoTooShortError as error:
                self._count("skipped_too_short")
                num_too_short += 1
                logger.warning("Skipping video %s: too short (%s)", video_id, error)
                problems = (problems + [f"{video_id}: {error}"])[:3]
                continue
            except (VideoDecodeError, ValueError, TypeError, OSError, RuntimeError, EOFError) as error:
                self._count("skipped_unreadable")
                logger.warning("Skipping video %s: unreadable (%s)", video_id, error)
                problems = (problems + [f"{video_id}: {error}"])[:3]
                continue
            self._count("videos")
            self._count("clips", len(clips))
            num_used += 1
            yield from clips
        worker = torch.utils.data.get_worker_info()
        if num_seen and not num_used and (worker is None or worker.num_workers == 1):
            raise NoUsableVideosError(
                f"None of the {num_seen} videos gave a clip of {self.sampler.num_frames} frames "
                f"({num_seen - num_too_short} unreadable, {num_too_short} too short); "
                f"first problems: {'; '.join(problems)}."
            )


def collate_clips(batch: Sequence[dict]) -> dict:
    """
    Stack clips from `VideoClipDataset` (or `SyntheticMultimodalMotion`) into a batch.

    Returns:
        dict with `"frames"` `uint8` `(batch_size, num_frames, 3, height, width)`,
        `"timestamps"` `float32` `(batch_size, num_frames)`, and the list of `"video_id"`s
        (plus `"mode"` / `"all_futures"` stacked when present).
    """
    if len(batch) == 0:
        raise ValueError("Cannot collate an empty batch.")
    shapes = {tuple(item["frames"].shape) for item in batch}
    if len(shapes) > 1:
        raise ValueError(
            f"All clips in a batch must have the same frames shape, got {sorted(shapes)}; "
            "resize them with a transform such as RandomResizedCropVideo."
        )
    collated = {
        "frames": torch.stack([item["frames"] for item in batch]),  # (batch_size, num_frames, 3, H, W)
        "timestamps": torch.stack([torch.as_tensor(item["timestamps"], dtype=torch.float32) for item in batch]),
    }
    if "video_id" in batch[0]:
        collated["video_id"] = [item["video_id"] for item in batch]
    if "mode" in batch[0]:
        collated["mode"] = torch.tensor([item["mode"] for item in batch], dtype=torch.long)  # (batch_size,)
    if "all_futures" in batch[0]:
        collated["all_futures"] = torch.stack([item["all_futures"] for item in batch])
    return collated
