"""Dataset-level mean IoU of forecast semantic segmentation (DeltaTok / DeltaWorld evaluation protocol)."""

import datasets
import evaluate

from deltatok_hf.metrics.functional import as_map_list, check_label_map_pair, forecast_mean_iou


_DESCRIPTION = """
Mean intersection-over-union of semantic segmentation maps, accumulated over the whole dataset in one confusion
matrix. Pixels labelled `ignore_index` (255) are dropped; classes that appear neither in the predictions nor in the
labels of the whole dataset are left out of the mean. This is the number torchmetrics'
`MulticlassJaccardIndex(num_classes, ignore_index=255, average="macro")` reports when updated batch by batch, which
the official DeltaTok evaluation uses for forecast segmentation (Cityscapes, VSPW).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `(height, width)` integer arrays, or a `(batch, height, width)` integer array/tensor):
        Predicted class ids, e.g. `logits.argmax(1)` of `DeltaTokSegmentationHead` upsampled to the label size.
    references (same layout as `predictions`):
        Label class ids; `ignore_index` marks unlabelled pixels.
    num_classes (`int`):
        Number of classes; every prediction and every non-ignored label must lie in `[0, num_classes)`.
    ignore_index (`int`, *optional*, defaults to 255):
        Label value to ignore.

Returns:
    mean_iou (`float`): macro mean of the per-class IoU over the classes present in predictions or labels.
    per_class_iou (`list[float]`): IoU of every class, `nan` for classes absent from predictions and labels.
    pixel_accuracy (`float`): fraction of labelled pixels predicted correctly.
    num_pixels (`int`): number of labelled (non-ignored) pixels.

Examples:
    >>> import evaluate
    >>> from deltatok_hf.metrics import metric_path
    >>> metric = evaluate.load(metric_path("forecast_miou"))
    >>> metric.add_batch(predictions=[[[0, 1], [1, 1]]], references=[[[0, 1], [255, 0]]])
    >>> round(metric.compute(num_classes=2)["mean_iou"], 4)
    0.5
"""

_CITATION = """
@inproceedings{kerssies2026deltatok,
  title={A Frame is Worth One Token: Efficient Generative World Modeling with Delta Tokens},
  author={Kerssies, Tommie and others},
  booktitle={CVPR},
  year={2026}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ForecastMiou(evaluate.Metric):
    """Dataset-level mean IoU with `ignore_index`; see the module card (README.md)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Sequence(datasets.Value("int32"))),
                    "references": datasets.Sequence(datasets.Sequence(datasets.Value("int32"))),
                }
            ),
            reference_urls=["https://github.com/amazon-far/deltatok"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Check a batch of `(height, width)` integer maps, then store it (see `evaluate.Metric.add_batch`)."""
        predictions = as_map_list(predictions, "predictions", (3,))
        references = as_map_list(references, "references", (3,))
        if predictions is not None and references is not None:
            if len(predictions) != len(references):
                raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
            pairs = [check_label_map_pair(p, r, i) for i, (p, r) in enumerate(zip(predictions, references))]
            predictions = [prediction for prediction, _ in pairs]
            references = [reference for _, reference in pairs]
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Check one `(height, width)` integer map pair, then store it (see `evaluate.Metric.add`)."""
        if prediction is not None and reference is not None:
            prediction, reference = check_label_map_pair(prediction, reference)
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, num_classes, ignore_index=255):
        return forecast_mean_iou(predictions, references, num_classes=num_classes, ignore_index=ignore_index)
