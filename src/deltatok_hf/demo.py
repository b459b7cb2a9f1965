"""The model behind `deltatok-hf demo`: the bundled trained demo model when present, else a tiny random one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .models.deltaworld import DeltaWorldConfig, DeltaWorldForForecasting

DEMO_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "demo_model"
# Seed of the random-weight fallback, so every run of the demo shows the same (meaningless) forecast.
RANDOM_DEMO_SEED = 0


@dataclass
class DemoModel:
    """
    Args:
        model ([`DeltaWorldForForecasting`]): the model, in eval mode.
        source (`str`): the directory it was loaded from, or a description of the random fallback.
        random_weights (`bool`): `True` for the random-weight fallback; its forecasts say nothing about quality.
    """

    model: DeltaWorldForForecasting
    source: str
    random_weights: bool


def load_demo_model(model_dir: str | Path | None = None) -> DemoModel:
    """
    Load `assets/demo_model/` (written by the demo training script) when it holds a saved model; otherwise build
    `DeltaWorldConfig.tiny()` with random weights under `torch.manual_seed(RANDOM_DEMO_SEED)` (the global RNG state is
    restored afterwards).
    """
    model_dir = Path(model_dir) if model_dir is not None else DEMO_MODEL_DIR
    if (model_dir / "config.json").is_file():
        model = DeltaWorldForForecasting.from_pretrained(model_dir).eval()
        return DemoModel(model=model, source=str(model_dir), random_weights=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_DEMO_SEED)
        model = DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()
    return DemoModel(
        model=model,
        source=f"DeltaWorldConfig.tiny() with random weights (seed {RANDOM_DEMO_SEED}); no trained model at {model_dir}",
        random_weights=True,
    )


__all__ = ["DEMO_MODEL_DIR", "DemoModel", "load_demo_model"]
