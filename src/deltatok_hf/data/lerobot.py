"""Training clips from LeRobot v3 datasets (a local folder or a Hub dataset id), without lerobot.

The LeRobot v3 layout (LeRobot's `datasets/utils.py`, `dataset_metadata.py`, `dataset_writer.py`):

```
meta/info.json                                   codebase_version "v3.x", fps, features, path templates
meta/episodes/chunk-000/file-000.parquet         one row per episode
data/chunk-000/file-000.parquet                  one row per frame (state, action, timestamp, ...)
videos/<camera key>/chunk-000/file-000.mp4       several episodes, one after another
```

A feature whose `dtype` is `"video"` is a camera; its key (e.g. `observation.images.front`) names
the folder under `videos/`. Each episode row says, per camera, which file holds it
(`videos/<key>/chunk_index`, `videos/<key>/file_index`, filled into `info.json`'s `video_path`
template) and where in that file it lies: `videos/<key>/from_timestamp` to
`videos/<key>/to_timestamp` seconds, the next episode of the file starting at the latter.

`LeRobotClipDataset` samples DeltaWorld training clips (`ClipSampler`) inside one episode's time
span, so a clip never crosses an episode boundary. Only `meta/` and the camera's videos are read;
the per-frame `data/` tables (actions, states) are not needed for video world modelling.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

from .datasets import VideoClipDataset, _import_datasets


INFO_PATH = Path("meta") / "info.json"
EPISODES_DIR = Path("meta") / "episodes"
SUPPORTED_CODEBASE_MAJOR = "v3"


class LeRobotLayoutError(ValueError):
    """A folder or Hub dataset is not a readable LeRobot v3 dataset (missing or inconsistent metadata)."""


@dataclass
class LeRobotMetadata:
    """
    What `meta/` says about a LeRobot v3 dataset.

    Args:
        root (`Path`): the dataset folder (a Hub snapshot for Hub ids).
        codebase_version (`str`): e.g. `"v3.0"`.
        fps (`float`): the nominal frame rate of every camera.
        camera_keys (`list[str]`): features stored as videos, in `info.json` order.
        video_path (`str`): the template of video file paths, relative to `root`.
        splits (`dict[str, str]`): split name -> episode range `"start:stop"`.
        info (`dict`): the whole `info.json`.
        repo_id (`str`, *optional*), revision (`str`, *optional*): the Hub dataset it came from
            (its camera videos are fetched when a camera is chosen).
    """

    root: Path
    codebase_version: str
    fps: float
    camera_keys: list[str]
    video_path: str
    splits: dict[str, str]
    info: dict
    repo_id: str | None = None
    revision: str | None = None


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


def resolve_lerobot_root(
    spec: Union[str, os.PathLike], revision: str | None = None, allow_patterns: Sequence[str] = ("meta/**",)
) -> Path:
    """
    The local folder of a LeRobot dataset: `spec` itself when it is a folder, else the snapshot of
    the Hub dataset `spec` from `huggingface_hub.snapshot_download` (which reads the local cache
    when `HF_HUB_OFFLINE=1`), holding the files matching `allow_patterns` (by default `meta/`
    only: the videos of the chosen camera follow in `load_lerobot_episodes`).

    Raises:
        `LeRobotLayoutError`: `spec` is neither a folder nor a reachable Hub dataset.
    """
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and not _looks_like_hub_id(spec)):
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise LeRobotLayoutError(f"LeRobot dataset folder not found: {str(spec)!r}.")
        return root
    if not isinstance(spec, str):
        raise TypeError(f"A LeRobot dataset is a folder path or a Hub dataset id, got {type(spec).__name__}.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, repo_type="dataset", revision=revision, allow_patterns=list(allow_patterns)))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise LeRobotLayoutError(f"Could not get the Hub dataset {spec!r} ({type(error).__name__}: {error}).") from error


def is_lerobot_dataset(spec: Any) -> bool:
    """
    Whether `spec` names a LeRobot dataset: a folder with `meta/info.json` (any codebase version;
    `load_lerobot_metadata` then says whether it can be read), or a Hub dataset id whose snapshot
    has one (looked up in the local cache when offline). Never raises.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return False
    if isinstance(spec, str) and _looks_like_hub_id(spec):
        try:
            from huggingface_hub import hf_hub_download

            hf_hub_download(spec, str(INFO_PATH.as_posix()), repo_type="dataset")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not a (reachable) LeRobot dataset"
            return False
    return (Path(spec).expanduser() / INFO_PATH).is_file()


def load_lerobot_metadata(spec: Union[str, os.PathLike], revision: str | None = None) -> LeRobotMetadata:
    """
    Read and check `meta/info.json` of a LeRobot v3 dataset (folder or Hub id).

    Raises:
        `LeRobotLayoutError`: no `info.json`, a codebase version other than v3.x (v2.x keeps one
        file per episode and `meta/episodes.jsonl`; convert it with LeRobot's
        `convert_dataset_v21_to_v30` script), or no video feature.
    """
    root = resolve_lerobot_root(spec, revision=revision)
    repo_id = spec if isinstance(spec, str) and _looks_like_hub_id(spec) else None
    info_file = root / INFO_PATH
    if not info_file.is_file():
        raise LeRobotLayoutError(f"{str(root)!r} is not a LeRobot dataset: {INFO_PATH.as_posix()} is missing.")
    try:
        info = json.loads(info_file.read_text())
    except json.JSONDecodeError as error:
        raise LeRobotLayoutError(f"{info_file} is not valid JSON ({error}).") from error
    version = str(info.get("codebase_version", ""))
    if not version.startswith(SUPPORTED_CODEBASE_MAJOR):
        raise LeRobotLayoutError(
            f"LeRobot dataset {str(root)!r} has codebase_version {version!r}; only {SUPPORTED_CODEBASE_MAJOR}.x "
            "(several episodes per video file, meta/episodes/*.parquet) is supported. Convert older datasets with "
            "LeRobot's `convert_dataset_v21_to_v30`."
        )
    features = info.get("features") or {}
    camera_keys = [key for key, feature in features.items() if isinstance(feature, dict) and feature.get("dtype") == "video"]
    if not camera_keys:
        raise LeRobotLayoutError(f"LeRobot dataset {str(root)!r} has no video feature (features: {sorted(features)}).")
    video_path = info.get("video_path")
    if not video_path:
        raise LeRobotLayoutError(f"{info_file} has no `video_path` template.")
    fps = info.get("fps")
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise LeRobotLayoutError(f"{info_file} has fps {fps!r}; expected a positive number.")
    return LeRobotMetadata(
        root=root,
        codebase_version=version,
        fps=float(fps),
        camera_keys=camera_keys,
        video_path=str(video_path),
        splits=dict(info.get("splits") or {}),
        info=info,
        repo_id=repo_id,
        revision=revision,
    )


def _split_episodes(metadata: LeRobotMetadata, split: str) -> range:
    if split not in metadata.splits:
        raise ValueError(f"Split {split!r} not in the LeRobot dataset's splits {sorted(metadata.splits)}.")
    bounds = str(metadata.splits[split]).split(":")
    try:
        start, stop = int(bounds[0]), int(bounds[1])
    except (IndexError, ValueError) as error:
        raise LeRobotLayoutError(f"Split {split!r} is {metadata.splits[split]!r}; expected 'start:stop'.") from error
    return range(start, stop)


def load_lerobot_episodes(
    spec: Union[str, os.PathLike, LeRobotMetadata],
    camera_key: str | None = None,
    episodes: Sequence[int] | None = None,
    split: str | None = None,
    revision: str | None = None,
):
    """
    The episodes of one camera as a `datasets.Dataset`, one row per episode, ready for
    `VideoClipDataset(..., start_column="start_time", end_column="end_time")`.

    Args:
        spec: a LeRobot v3 folder, a Hub dataset id, or its `LeRobotMetadata`.
        camera_key (`str`, *optional*): the camera (a `"video"` feature); required when the
            dataset has more than one.
        episodes (sequence of `int`, *optional*): keep only these episode indices.
        split (`str`, *optional*): keep the episodes of this split of `info.json` (e.g. `"train"`).

    Returns:
        `datasets.Dataset` with columns `video` (file path), `video_id` (`"episode_000012"`),
        `episode_index`, `start_time` and `end_time` (seconds within the file; the episode is
        `[start_time, end_time)`).
    """
    import pyarrow.parquet as parquet

    datasets = _import_datasets()
    metadata = spec if isinstance(spec, LeRobotMetadata) else load_lerobot_metadata(spec, revision=revision)
    if camera_key is None:
        if len(metadata.camera_keys) > 1:
            raise ValueError(f"The LeRobot dataset has several cameras; pass `camera_key=` one of {metadata.camera_keys}.")
        camera_key = metadata.camera_keys[0]
    if camera_key not in metadata.camera_keys:
        raise ValueError(f"`camera_key` {camera_key!r} is not a video feature of the dataset; cameras: {metadata.camera_keys}.")

    if metadata.repo_id is not None:  # only this camera's videos (a dataset often has several cameras)
        resolve_lerobot_root(metadata.repo_id, metadata.revision, allow_patterns=[f"videos/{camera_key}/**"])
    files = sorted((metadata.root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
    if not files:
        raise LeRobotLayoutError(f"No episode tables under {metadata.root / EPISODES_DIR} (expected chunk-*/file-*.parquet).")
    prefix = f"videos/{camera_key}/"
    columns = ["episode_index"] + [prefix + name for name in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    rows: dict[str, list] = {column: [] for column in columns}
    for file in files:
        missing = [column for column in columns if column not in parquet.read_schema(file).names]
        if missing:
            raise LeRobotLayoutError(f"Episode table {file} lacks the columns {missing}.")
        table = parquet.read_table(file, columns=columns)  # not the per-episode statistics columns
        for column in columns:
            rows[column].extend(table.column(column).to_pylist())

    wanted = None
    if episodes is not None:
        wanted = {int(index) for index in episodes}
    if split is not None:
        in_split = set(_split_episodes(metadata, split))
        wanted = in_split if wanted is None else wanted & in_split
    records = sorted(zip(*(rows[column] for column in columns)))
    table = {"video": [], "video_id": [], "episode_index": [], "start_time": [], "end_time": []}
    for episode_index, chunk_index, file_index, start_time, end_time in records:
        if wanted is not None and episode_index not in wanted:
            continue
        relative = metadata.video_path.format(video_key=camera_key, chunk_index=chunk_index, file_index=file_index)
        table["video"].append(str(metadata.root / relative))
        table["video_id"].append(f"episode_{episode_index:06d}")
        table["episode_index"].append(int(episode_index))
        table["start_time"].append(float(start_time))
        table["end_time"].append(float(end_time))
    if not table["video"]:
        raise ValueError(f"No episodes selected (episodes={episodes!r}, split={split!r}) among {len(records)} episodes.")
    if wanted is not None and len(table["video"]) < len(wanted):
        known = {record[0] for record in records}
        raise ValueError(f"Episodes {sorted(wanted - known)} are not in the dataset ({len(records)} episodes).")
    return datasets.Dataset.from_dict(
        table,
        features=datasets.Features(
            {
                "video": datasets.Value("string"),
                "video_id": datasets.Value("string"),
                "episode_index": datasets.Value("int64"),
                "start_time": datasets.Value("float64"),
                "end_time": datasets.Value("float64"),
            }
        ),
    )


class LeRobotClipDataset(VideoClipDataset):
    """
    Training clips from one camera of a LeRobot v3 dataset, never crossing an episode boundary.

    Each episode is a row; its clips are drawn (`ClipSampler`) among the frames of its file that
    lie in `[from_timestamp, to_timestamp)`, so every frame of a clip belongs to that episode.
    Items are the same dicts as `VideoClipDataset`'s: `"frames"` uint8 `(num_frames, 3, height,
    width)`, `"timestamps"` float32 `(num_frames,)` seconds from the clip's first frame, and
    `"video_id"` (`"episode_000012"`). Episodes too short for a clip are skipped and counted
    (`stats["skipped_too_short"]`), as are unreadable files.

    Sharding, seeding and skipping are `VideoClipDataset`'s: DataLoader workers take every
    `num_workers`-th episode; for several processes, pass `load_lerobot_episodes(...)` through
    `datasets.distributed.split_dataset_by_node` and give the result to `VideoClipDataset` with
    `start_column="start_time", end_column="end_time"`.

    Args:
        spec: a LeRobot v3 folder or Hub dataset id.
        camera_key (`str`, *optional*): the camera; required when there are several.
        episodes (sequence of `int`, *optional*), split (`str`, *optional*): which episodes.
        revision (`str`, *optional*): Hub revision.
        **kwargs: `VideoClipDataset` arguments (`num_frames`, `num_clips_per_video`, `sampler`,
            `transform`, `shuffle`, `seed`, `backend`, ...).

    For evaluation, fix the gaps and the seed: `min_gap=max_gap=0.2, seed=0` gives the same
    clips of frames 0.2 s apart (the evaluation context spacing) at every pass.

    Example:

    ```python
    >>> clips = LeRobotClipDataset("lerobot/pusht", camera_key="observation.image", num_frames=8, seed=0)
    >>> next(iter(clips))["frames"].shape  # (8, 3, 96, 96)
    >>> evaluation = LeRobotClipDataset("lerobot/pusht", num_frames=4, min_gap=0.2, max_gap=0.2, seed=0)
    ```
    """

    def __init__(
        self,
        spec: Union[str, os.PathLike],
        camera_key: str | None = None,
        episodes: Sequence[int] | None = None,
        split: str | None = None,
        revision: str | None = None,
        **kwargs,
    ):
        for reserved in ("videos", "video_column", "id_column", "start_column", "end_column"):
            if reserved in kwargs:
                raise TypeError(f"LeRobotClipDataset sets `{reserved}` itself; it cannot be passed.")
        self.metadata = load_lerobot_metadata(spec, revision=revision)
        episode_table = load_lerobot_episodes(self.metadata, camera_key=camera_key, episodes=episodes, split=split)
        self.camera_key = camera_key if camera_key is not None else self.metadata.camera_keys[0]
        super().__init__(
            episode_table,
            video_column="video",
            id_column="video_id",
            start_column="start_time",
            end_column="end_time",
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"LeRobotClipDataset(root={str(self.metadata.root)!r}, camera_key={self.camera_key!r}, "
            f"num_episodes={len(self.dataset)}, sampler={self.sampler})"
        )
