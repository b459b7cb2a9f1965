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
