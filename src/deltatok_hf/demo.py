"""The pipeline behind `deltatok-hf demo`: the bundled trained demo model when present, else a tiny random one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .models.deltaworld import DeltaWorldConfig, DeltaWorldForForecasting
from .pipelines import DeltaWorldPipeline

DEMO_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "demo_model"
# Seed of the random-weight fallback, so every run of the demo shows the same (meaningless) forecast.
RANDOM_DEMO_SEED = 0


@dataclass
class DemoPipeline:
    """
    Args:
        pipeline ([`DeltaWorldPipeline`]): the demo pipeline, in eval mode.
        source (`str`): the directory it was loaded from, or a description of the random fallback.
        random_weights (`bool`): `True` for the random-weight fallback; its forecasts say nothing about quality.
    """

    pipeline: DeltaWorldPipeline
    source: str
    random_weights: bool


def load_demo_pipeline(model_dir: str | Path | None = None, dtype: torch.dtype | None = None) -> DemoPipeline:
    """
    Load `assets/demo_model/` (a saved pipeline with `model_index.json`, or a bare world model, as the demo-model
    training script writes them); without one, build `DeltaWorldConfig.tiny()` with random weights under
    `torch.manual_seed(RANDOM_DEMO_SEED)` (the global RNG state is restored afterwards).
    """
    model_dir = Path(model_dir) if model_dir is not None else DEMO_MODEL_DIR
    if (model_dir / "model_index.json").is_file() or (model_dir / "config.json").is_file():
        pipe = DeltaWorldPipeline.from_pretrained(model_dir, dtype=dtype)
        return DemoPipeline(pipeline=pipe, source=str(model_dir), random_weights=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_DEMO_SEED)
        model = DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()
    pipe = DeltaWorldPipeline(world_model=model)
    return DemoPipeline(
        pipeline=pipe.to(dtype=dtype) if dtype is not None else pipe,
        source=f"DeltaWorldConfig.tiny() with random weights (seed {RANDOM_DEMO_SEED}); no trained model at {model_dir}",
        random_weights=True,
    )


__all__ = ["DEMO_MODEL_DIR", "DemoPipeline", "load_demo_pipeline"]
