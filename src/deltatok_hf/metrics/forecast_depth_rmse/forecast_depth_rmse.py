"""Depth RMSE of forecast depth maps (DeltaTok / DeltaWorld evaluation protocol, KITTI)."""

import datasets
import evaluate

from deltatok_hf.metrics.functional import as_map_list, check_depth_map_pair, forecast_depth_rmse


_DESCRIPTION = """
Root-mean-square error of metric depth maps over the valid pixels of a dataset. A pixel is valid when
`min_depth < label < max_depth` (strict bounds, 1e-3 and 80 m by default, as in the official KITTI masking; this
drops `label == 0`, "no measurement") and, with `garg_crop=True`, inside the Garg crop (rows 0.40810811-0.99189189
and columns 0.03594771-0.96405229 of the label). Two numbers are reported: `pooled_rmse`, the RMSE over all valid
pixels of the dataset (the official number: torchmetrics `MeanSquaredError(squared=False)` updated batch by batch
with the valid pixels), and `per_image_mean_rmse`, the mean of the per-image RMSEs.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `(height, width)` or `(1, height, width)` float arrays, or a `(batch, [1,] height, width)`
        float array/tensor): predicted depth, e.g. `DeltaTokDepthHead(...).predicted_depth` at the label size.
    references (`list` of `(height, width)` float arrays, or a `(batch, height, width)` array/tensor): label depth;
        pixels outside `(min_depth, max_depth)` are ignored.
    min_depth (`float`, *optional*, defaults to 1e-3): lower validity bound (exclusive).
    max_depth (`float`, *optional*, defaults to 80.0): upper validity bound (exclusive).
    garg_crop (`bool`, *optional*, defaults to `False`): also restrict to the Garg crop (KITTI Eigen split). Apply it
        to full-frame labels (the official code applies it after the KB crop, before splitting into square crops).

Returns:
    pooled_rmse (`float`): RMSE over all valid pixels of the dataset.
    per_image_mean_rmse (`float`): mean over images of each image's RMSE (images without valid pixels skipped).
    num_valid_pixels (`int`), num_images (`int`, images with at least one valid pixel).

Examples:
    >>> import evaluate
    >>> from deltatok_hf.metrics import metric_path
    >>> metric = evaluate.load(metric_path("forecast_depth_rmse"))
    >>> metric.compute(predictions=[[[1.0, 2.0]]], references=[[[2.0, 0.0]]])["pooled_rmse"]
    1.0
"""

_CITATION = """
@inproceedings{kerssies2026deltatok,
  title={A Frame is Worth One Token: Efficient Generative World Modeling with Delta Tokens},
  author={Kerssies, Tommie and others},
  booktitle={CVPR},
  year={2026}
}
@inproceedings{garg2016unsupervised,
  title={Unsupervised CNN for Single View Depth Estimation: Geometry to the Rescue},
  author={Garg, Ravi and Kumar, Vijay B.G. and Carneiro, Gustavo and Reid, Ian},
  booktitle={ECCV},
  year={2016}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ForecastDepthRmse(evaluate.Metric):
    """Pooled and per-image depth RMSE over valid pixels; see the module card (README.md)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
                    "references": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
                }
            ),
            reference_urls=["https://github.com/amazon-far/deltatok", "https://arxiv.org/abs/1603.04992"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Check a batch of float depth maps, then store it (see `evaluate.Metric.add_batch`)."""
        predictions = as_map_list(predictions, "predictions", (3, 4))
        references = as_map_list(references, "references", (3, 4))
        if predictions is not None and references is not None:
            if len(predictions) != len(references):
                raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
            pairs = [check_depth_map_pair(p, r, i) for i, (p, r) in enumerate(zip(predictions, references))]
            predictions = [prediction for prediction, _ in pairs]
            references = [reference for _, reference in pairs]
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Check one float depth map pair, then store it (see `evaluate.Metric.add`)."""
        if prediction is not None and reference is not None:
            prediction, reference = check_depth_map_pair(prediction, reference)
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, min_depth=1e-3, max_depth=80.0, garg_crop=False):
        return forecast_depth_rmse(
            predictions, references, min_depth=min_depth, max_depth=max_depth, garg_crop=garg_crop
        )
