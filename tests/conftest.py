"""Shared test fixtures. Everything runs offline on CPU with tiny random-weight models."""

from __future__ import annotations

import os
from pathlib import Path

# No network in tests: Hub and datasets lookups must resolve from local files or caches.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("DELTATOK_SHARED_DIR", REPO_ROOT.parent / "shared"))
REFERENCE_DIR = SHARED_DIR / "reference"


def open_layer_scales(model: torch.nn.Module, low: float = 0.2, high: float = 1.0) -> torch.nn.Module:
    """Draw every LayerScale from U(low, high) (in place; returns the model): at the official 1e-5 init the residual
    branches are near zero, so candidates, samples and code paths would hardly differ."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("lambda1"):
                parameter.uniform_(low, high)
    return model


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The official golden tensors (read-only, beside the checkout); tests that need them skip without them."""
    if not (REFERENCE_DIR / "reference_tiny.safetensors").is_file():
        pytest.skip(f"official reference tensors not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture
def tiny_world():
    """A tiny random-weight DeltaWorld in eval mode (mechanics only, not quality)."""
    from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting

    torch.manual_seed(0)
    return DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()


@pytest.fixture
def tiny_tokenizer():
    from deltatok_hf import DeltaTokConfig, DeltaTokModel

    torch.manual_seed(0)
    return DeltaTokModel(DeltaTokConfig.tiny()).eval()


def write_test_video(path, frames, fps: int = 25, codec: str = "mpeg4", gop_size: int | None = None, times=None):
    """
    Encode `frames` (an iterable of `(height, width, 3)` uint8 RGB arrays) with PyAV, frame `i` at `i / fps` seconds,
    or at `times[i]` seconds (millisecond time base) when `times` is given: a variable frame rate, or the gaps a
    frame-dropping container leaves. The container header is written even when there are no frames. Returns `path`.
    """
    from fractions import Fraction

    import av
    import numpy as np

    frames = [np.ascontiguousarray(frame, dtype=np.uint8) for frame in frames]
    height, width = frames[0].shape[:2] if frames else (32, 48)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        time_base = Fraction(1, fps) if times is None else Fraction(1, 1000)
        if times is not None:
            stream.time_base = stream.codec_context.time_base = time_base
        container.start_encoding()
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = (index if times is None else round(times[index] * 1000)), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def grey_frames(num_frames: int, height: int, width: int, first: int, step: int):
    """Uniform frames whose grey level is `first + step * index` (mod 256)."""
    import numpy as np

    return [np.full((height, width, 3), (first + step * index) % 256, dtype=np.uint8) for index in range(num_frames)]


def episode_level(episode_index: int) -> int:
    """Grey level of the frames of LeRobot test episode `episode_index` (40 apart: recognisable after lossy coding)."""
    return 20 + 40 * episode_index


def write_lerobot_dataset(
    root,
    episode_lengths=(12, 9, 15, 7, 11),
    fps: int = 10,
    camera_keys=("observation.images.front",),
    episodes_per_file: int = 3,
    height: int = 32,
    width: int = 48,
):
    """
    Write a small LeRobot v3 dataset with PyAV and `datasets` (the layout of LeRobot's `dataset_writer.py`):
    `meta/info.json`, `meta/tasks.parquet`, `meta/episodes/chunk-000/file-000.parquet`, `data/chunk-000/file-000.parquet`
    and, per camera, `videos/<key>/chunk-000/file-00N.mp4` holding `episodes_per_file` episodes one after another.
    Every frame of episode `e` is grey at about `episode_level(e)` (plus `frame % 4`), so a frame tells its episode.
    Returns `root`.
    """
    import json
    from pathlib import Path

    import datasets
    import numpy as np

    root = Path(root)
    episode_lengths = list(episode_lengths)
    video_path = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    data_path = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    episode_rows = {"episode_index": [], "tasks": [], "length": [], "data/chunk_index": [], "data/file_index": [],
                    "dataset_from_index": [], "dataset_to_index": [], "meta/episodes/chunk_index": [],
                    "meta/episodes/file_index": []}
    for key in camera_keys:
        for name in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
            episode_rows[f"videos/{key}/{name}"] = []
    frame_rows = {"index": [], "episode_index": [], "frame_index": [], "timestamp": [], "task_index": [], "observation.state": []}
    file_frames: dict[int, list] = {}
    first_frame = 0
    for episode_index, length in enumerate(episode_lengths):
        file_index = episode_index // episodes_per_file
        frames_in_file = file_frames.setdefault(file_index, [])
        start_time = len(frames_in_file) / fps
        level = episode_level(episode_index)
        frames_in_file.extend(np.full((height, width, 3), level + index % 4, dtype=np.uint8) for index in range(length))
        for name, value in (("episode_index", episode_index), ("tasks", ["move"]), ("length", length),
                            ("data/chunk_index", 0), ("data/file_index", 0), ("dataset_from_index", first_frame),
                            ("dataset_to_index", first_frame + length), ("meta/episodes/chunk_index", 0),
                            ("meta/episodes/file_index", 0)):
            episode_rows[name].append(value)
        for key in camera_keys:
            episode_rows[f"videos/{key}/chunk_index"].append(0)
            episode_rows[f"videos/{key}/file_index"].append(file_index)
            episode_rows[f"videos/{key}/from_timestamp"].append(start_time)
            episode_rows[f"videos/{key}/to_timestamp"].append(start_time + length / fps)
        for index in range(length):
            for name, value in (("index", first_frame + index), ("episode_index", episode_index), ("frame_index", index),
                                ("timestamp", index / fps), ("task_index", 0), ("observation.state", [0.0, 1.0])):
                frame_rows[name].append(value)
        first_frame += length
    for key in camera_keys:
        for file_index, frames in file_frames.items():
            path = root / video_path.format(video_key=key, chunk_index=0, file_index=file_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_test_video(path, frames, fps=fps, gop_size=4)
    for relative, rows in (("meta/episodes/chunk-000/file-000.parquet", episode_rows),
                           (data_path.format(chunk_index=0, file_index=0), frame_rows),
                           ("meta/tasks.parquet", {"task": ["move"], "task_index": [0]})):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows).to_parquet(str(root / relative))
    features = {key: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                      "info": {"video.fps": fps, "video.codec": "mpeg4", "video.pix_fmt": "yuv420p"}}
                for key in camera_keys}
    features.update({"observation.state": {"dtype": "float32", "shape": [2], "names": None},
                     "timestamp": {"dtype": "float32", "shape": [1], "names": None},
                     "frame_index": {"dtype": "int64", "shape": [1], "names": None},
                     "episode_index": {"dtype": "int64", "shape": [1], "names": None},
                     "index": {"dtype": "int64", "shape": [1], "names": None},
                     "task_index": {"dtype": "int64", "shape": [1], "names": None}})
    info = {"codebase_version": "v3.0", "robot_type": "test", "total_episodes": len(episode_lengths),
            "total_frames": sum(episode_lengths), "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{len(episode_lengths)}"},
            "data_path": data_path, "video_path": video_path, "features": features}
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return root


def offline_hub_cache(source_dir, tmp_path, monkeypatch, repo_id: str, repo_type: str = "model") -> str:
    """Serve `source_dir` as the `main` snapshot of Hub repo `repo_id` from a hand-made cache, offline. Returns `repo_id`."""
    import hashlib
    import shutil

    import huggingface_hub.constants

    cache = tmp_path / "hub"
    revision = hashlib.sha1(repo_id.encode()).hexdigest()
    repo = cache / (f"{repo_type}s--" + repo_id.replace("/", "--"))
    shutil.copytree(source_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return repo_id


def write_audio_only(path, codec: str = "aac", sample_rate: int = 16000):
    """A file holding one silent audio stream and no video stream (`aac`: float samples; `pcm_s16le`: int16). Returns `path`."""
    import av
    import numpy as np

    floating = codec == "aac"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=sample_rate)
        samples = np.zeros((1, 1024), dtype=np.float32 if floating else np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp" if floating else "s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
