"""Scores for sets of sampled feature forecasts: best-of-N, mean-of-N, energy score, diversity, mode coverage."""

import datasets
import evaluate

from deltatok_hf.metrics.functional import check_forecast_example, generative_forecast_scores


_DESCRIPTION = """
Scores a set of sampled future feature maps per example against the true future, in feature space:

- best-of-N: the sample whose last step has the lowest mean smooth-L1 loss (beta 0.1) to the target is picked
  (the official DeltaWorld selection) and its whole trajectory is scored, per step;
- mean-of-N: the mean of the samples is scored, per step;
- energy score (a proper scoring rule, lower is better): `mean_i ||X_i - y|| - 1/(2 n^2) sum_ij ||X_i - X_j||` over
  flattened features (`energy_score`), and the fair variant with `1/(2 n (n-1))` (`energy_score_fair`);
- diversity: the mean Euclidean distance between distinct samples;
- with the `"with_modes"` configuration and known true futures (`modes`): the fraction of modes that are the
  nearest mode of at least one sample, and each sample's distance to its nearest mode.

Values are averaged over examples; `*_per_step` entries are lists over forecast steps.
"""

_KWARGS_DESCRIPTION = """
Args:
    samples (`list` of `(num_samples, num_steps, num_patches, hidden_size)` float arrays): sampled forecasts.
    target (`list` of `(num_steps, num_patches, hidden_size)` float arrays): true future features.
    modes (`list` of `(num_modes, num_steps, num_patches, hidden_size)` float arrays): known true futures; only in
        the `"with_modes"` configuration (`evaluate.load(path, "with_modes")`).
    beta (`float`, *optional*, defaults to 0.1): smooth-L1 beta of the feature loss.

Inputs are stored as float32.

Returns:
    best_of_n_loss_per_step, best_of_n_loss, mean_of_n_loss_per_step, mean_of_n_loss, energy_score,
    energy_score_fair, energy_score_per_step, energy_score_fair_per_step, diversity, diversity_per_step,
    best_of_n_index (one per example) and, with modes, mode_coverage, mean_nearest_mode_distance and
    nearest_mode_distance (per example, per sample).

Examples:
    >>> import evaluate, numpy as np
    >>> from deltatok_hf.metrics import metric_path
    >>> metric = evaluate.load(metric_path("generative_forecast"))
    >>> samples = np.zeros((2, 1, 1, 1), dtype=np.float32); samples[1] = 1.0
    >>> result = metric.compute(samples=[samples], target=[np.ones((1, 1, 1), dtype=np.float32)])
    >>> result["best_of_n_index"], result["energy_score"]
    ([1], 0.25)
"""

_CITATION = """
@article{gneiting2007strictly,
  title={Strictly Proper Scoring Rules, Prediction, and Estimation},
  author={Gneiting, Tilmann and Raftery, Adrian E.},
  journal={Journal of the American Statistical Association},
  volume={102}, number={477}, pages={359--378}, year={2007}
}
"""

_FLOAT = datasets.Value("float32")
_SAMPLES = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Sequence(_FLOAT))))
_TARGET = datasets.Sequence(datasets.Sequence(datasets.Sequence(_FLOAT)))
CONFIG_NAMES = ("default", "with_modes")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GenerativeForecast(evaluate.Metric):
    """Best-of-N, mean-of-N, energy score, diversity and mode coverage of sampled forecasts (see README.md)."""

    def _info(self):
        if self.config_name not in CONFIG_NAMES:
            raise ValueError(f"`config_name` must be one of {list(CONFIG_NAMES)}, got {self.config_name!r}.")
        features = {"samples": _SAMPLES, "target": _TARGET}
        if self.config_name == "with_modes":
            features["modes"] = _SAMPLES
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(features),
            reference_urls=["https://github.com/amazon-far/deltatok"],
        )

    def _check(self, samples, target, modes) -> None:
        if samples is None or target is None:
            return
        if len(samples) != len(target):
            raise ValueError(f"Got {len(samples)} `samples` entries but {len(target)} `target` entries.")
        if modes is not None and len(modes) != len(target):
            raise ValueError(f"Got {len(modes)} `modes` entries but {len(target)} `target` entries.")
        for index in range(len(samples)):
            check_forecast_example(samples[index], target[index], None if modes is None else modes[index], index)

    def add_batch(self, **inputs):
        """Check a batch of sampled forecasts (`samples`, `target`[, `modes`]), then store it."""
        self._check(inputs.get("samples"), inputs.get("target"), inputs.get("modes"))
        return super().add_batch(**inputs)

    def add(self, **inputs):
        """Check one example (`samples`, `target`[, `modes`]), then store it."""
        if inputs.get("samples") is not None and inputs.get("target") is not None:
            check_forecast_example(inputs["samples"], inputs["target"], inputs.get("modes"))
        return super().add(**inputs)

    def _compute(self, samples, target, modes=None, beta=0.1):
        return generative_forecast_scores(samples, target, modes=modes, beta=beta)
