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


def write_test_video(path, frames, fps: int = 25, codec: str = "mpeg4", gop_size: int | None = None):
    """
    Encode `frames` (an iterable of `(height, width, 3)` uint8 RGB arrays) with PyAV, frame `i` at `i / fps` seconds.
    The container header is written even when there are no frames. Returns `path`.
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
        container.start_encoding()
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def grey_frames(num_frames: int, height: int, width: int, first: int, step: int):
    """Uniform frames whose grey level is `first + step * index` (mod 256)."""
    import numpy as np

    return [np.full((height, width, 3), (first + step * index) % 256, dtype=np.uint8) for index in range(num_frames)]
