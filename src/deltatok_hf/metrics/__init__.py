"""`evaluate` metrics for feature forecasting, usable offline.

```python
import evaluate
from deltatok_hf.metrics import metric_path

miou = evaluate.load(metric_path("forecast_miou"))
```

The maths lives in [`deltatok_hf.metrics.functional`]; each metric folder holds an `evaluate` module and its card.
"""

from pathlib import Path


METRICS_DIR = Path(__file__).resolve().parent


def list_metrics() -> list[str]:
    """Names of the metrics shipped with the package (folders holding `<name>/<name>.py`)."""
    return sorted(
        path.name for path in METRICS_DIR.iterdir() if path.is_dir() and (path / f"{path.name}.py").is_file()
    )


def metric_path(name: str) -> str:
    """Local path of the metric folder `name`, to pass to `evaluate.load` (no Hub access needed).

    Raises:
        ValueError: if `name` is not one of [`list_metrics`].
    """
    available = list_metrics()
    if name not in available:
        raise ValueError(f"Unknown metric {name!r}; available metrics: {available}.")
    return str(METRICS_DIR / name)


__all__ = ["list_metrics", "metric_path"]
