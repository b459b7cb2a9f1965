"""Evaluation of DeltaWorld forecasts: the forecasting benchmark of the paper and the linear probes it reads with.

`examples/evaluate_forecasting.py`, `examples/train_linear_probe.py` and `deltatok-hf evaluate` are thin wrappers over
[`evaluate_forecasting`] and [`train_linear_probe`]; the readers live in `deltatok_hf.data.benchmarks` and the maths
in `deltatok_hf.metrics.functional`.
"""

from .configuration import (
    EVALUATION_DATASETS,
    PROBE_DATASETS,
    BenchmarkDataConfig,
    ForecastEvaluationConfig,
    LinearProbeConfig,
    config_argument_parser,
)
from .forecasting import ROWS, build_evaluation_dataset, evaluate_forecasting, load_task_head, render_markdown
from .probe import build_probe_dataset, load_backbone_model, train_linear_probe


__all__ = [
    "EVALUATION_DATASETS",
    "PROBE_DATASETS",
    "ROWS",
    "BenchmarkDataConfig",
    "ForecastEvaluationConfig",
    "LinearProbeConfig",
    "build_evaluation_dataset",
    "config_argument_parser",
    "build_probe_dataset",
    "evaluate_forecasting",
    "load_backbone_model",
    "load_task_head",
    "render_markdown",
    "train_linear_probe",
]
