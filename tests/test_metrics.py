"""Forecast metrics: torchmetrics parity, energy-score maths and propriety, best-of-N, mode coverage, input checks."""

import itertools

import evaluate
import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex
from torchmetrics.regression import MeanSquaredError

from deltatok_hf.metrics import list_metrics, metric_path
from deltatok_hf.metrics.functional import (
    best_of_n_index,
    depth_squared_error,
    energy_score,
    forecast_depth_rmse,
    garg_crop_mask,
    generative_forecast_scores,
    intersection_over_union,
    map_confusion_matrix,
    mean_pairwise_distance,
    mode_coverage,
    pooled_rmse,
    score_forecast_samples,
    smooth_l1_per_step,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_metric_path_lists_and_loads_every_metric_offline():
    assert list_metrics() == ["forecast_depth_rmse", "forecast_miou", "generative_forecast"]
    for name in list_metrics():
        assert evaluate.load(metric_path(name)).name == name
    with pytest.raises(ValueError, match="unknown_metric"):
        metric_path("unknown_metric")


def test_forecast_miou_equals_torchmetrics_over_batches_with_ignored_pixels():
    num_classes = 7
    generator = torch.Generator().manual_seed(0)
    reference_metric = MulticlassJaccardIndex(num_classes, ignore_index=255)
    metric = evaluate.load(metric_path("forecast_miou"))
    for batch_index in range(3):
        # class 6 never appears anywhere -> excluded from the mean; class 5 only in predictions -> IoU 0, counted
        references = torch.randint(0, 5, (2, 9, 13), generator=generator)
        predictions = torch.randint(0, 5, (2, 9, 13), generator=generator)
        predictions[:, 0, :3] = 5
        references[torch.rand(references.shape, generator=generator) < 0.2] = 255
        reference_metric.update(predictions, references)
        metric.add_batch(predictions=predictions, references=references)
    result = metric.compute(num_classes=num_classes)
    expected = reference_metric.compute().item()
    assert result["mean_iou"] == pytest.approx(expected, abs=1e-6)
    assert np.isnan(result["per_class_iou"][6]) and result["per_class_iou"][5] == 0.0
    assert result["num_pixels"] > 0


def test_forecast_miou_per_class_matches_torchmetrics_on_present_classes():
    generator = torch.Generator().manual_seed(1)
    references = torch.randint(0, 4, (3, 8, 8), generator=generator)
    predictions = torch.randint(0, 4, (3, 8, 8), generator=generator)
    references[:, :2] = 255
    expected = MulticlassJaccardIndex(4, ignore_index=255, average="none")(predictions, references)
    result = evaluate.load(metric_path("forecast_miou")).compute(
        predictions=list(predictions.numpy()), references=list(references.numpy()), num_classes=4
    )
    np.testing.assert_allclose(result["per_class_iou"], expected.numpy(), atol=1e-6)


def test_forecast_depth_rmse_equals_torchmetrics_on_valid_pixels_over_batches():
    generator = torch.Generator().manual_seed(0)
    reference_metric = MeanSquaredError(squared=False)
    metric = evaluate.load(metric_path("forecast_depth_rmse"))
    per_image = []
    for batch_index in range(3):
        labels = torch.rand(2, 10, 14, generator=generator) * 100.0  # some > 80 m -> invalid
        labels[torch.rand(labels.shape, generator=generator) < 0.3] = 0.0  # no measurement -> invalid
        predictions = torch.rand(2, 1, 10, 14, generator=generator) * 80.0  # head layout (batch, 1, H, W)
        valid = (labels > 1e-3) & (labels < 80.0)
        reference_metric.update(predictions[:, 0][valid], labels[valid])
        for image in range(2):
            error = predictions[image, 0][valid[image]] - labels[image][valid[image]]
            per_image.append(error.double().square().mean().sqrt().item())
        metric.add_batch(predictions=predictions, references=labels)
    result = metric.compute()
    assert result["pooled_rmse"] == pytest.approx(reference_metric.compute().item(), rel=1e-5)
    assert result["per_image_mean_rmse"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert result["num_images"] == 6


def test_forecast_depth_rmse_garg_crop_restricts_to_the_crop():
    labels = np.full((1, 100, 200), 10.0, dtype=np.float32)
    predictions = np.full((1, 100, 200), 10.0, dtype=np.float32)
    predictions[0, :40] = 20.0  # rows above the Garg crop (top = int(0.408 * 100) = 40)
    metric = evaluate.load(metric_path("forecast_depth_rmse"))
    assert metric.compute(predictions=predictions, references=labels, garg_crop=True)["pooled_rmse"] == 0.0
    assert metric.compute(predictions=predictions, references=labels)["pooled_rmse"] > 0.0
    mask = garg_crop_mask(100, 200)
    assert mask.sum() == (99 - 40) * (192 - 7)


def brute_force_energy_score(samples: np.ndarray, target: np.ndarray, fair: bool = False) -> float:
    num_samples = len(samples)
    accuracy = sum(np.linalg.norm(sample - target) for sample in samples) / num_samples
    spread = sum(np.linalg.norm(first - second) for first, second in itertools.product(samples, samples))
    return accuracy - spread / (2 * num_samples * ((num_samples - 1) if fair else num_samples))


def test_energy_score_equals_direct_loop():
    rng = np.random.default_rng(0)
    for num_samples in (1, 2, 5):
        samples, target = rng.standard_normal((num_samples, 12)), rng.standard_normal(12)
        assert energy_score(torch.from_numpy(samples), torch.from_numpy(target)) == pytest.approx(
            brute_force_energy_score(samples, target), abs=1e-10
        )
        if num_samples > 1:
            assert energy_score(torch.from_numpy(samples), torch.from_numpy(target), fair=True) == pytest.approx(
                brute_force_energy_score(samples, target, fair=True), abs=1e-10
            )
    # the metric flattens (num_steps, num_patches, hidden) per sample
    samples, target = rng.standard_normal((4, 2, 3, 5)), rng.standard_normal((2, 3, 5))
    scores = score_forecast_samples(samples, target)
    flat = samples.reshape(4, -1)
    assert scores["energy_score"] == pytest.approx(brute_force_energy_score(flat, target.reshape(-1)), abs=1e-10)
    assert scores["energy_score_fair_per_step"][1] == pytest.approx(
        brute_force_energy_score(samples[:, 1].reshape(4, -1), target[1].reshape(-1), fair=True), abs=1e-10
    )
    distances = [np.linalg.norm(a - b) for a, b in itertools.permutations(flat, 2)]
    assert scores["diversity"] == pytest.approx(np.mean(distances), abs=1e-10)


def test_expected_energy_score_is_lowest_for_the_true_distribution():
    # outcomes y ~ N(0, I); forecasts of 8 samples from the true, a shifted, a too narrow and a too wide Gaussian
    generator = torch.Generator().manual_seed(0)
    dimension, num_samples, num_draws = 4, 8, 400
    forecasts = {"true": (0.0, 1.0), "shifted": (0.7, 1.0), "too_narrow": (0.0, 0.5), "too_wide": (0.0, 1.8)}
    totals = {name: {False: 0.0, True: 0.0} for name in forecasts}
    for _ in range(num_draws):
        outcome = torch.randn(dimension, generator=generator, dtype=torch.float64)
        noise = torch.randn(num_samples, dimension, generator=generator, dtype=torch.float64)
        for name, (shift, scale) in forecasts.items():
            for fair in (False, True):
                totals[name][fair] += energy_score(shift + scale * noise, outcome, fair=fair) / num_draws
    for fair in (False, True):
        assert min(totals, key=lambda name: totals[name][fair]) == "true"


def test_best_of_n_picks_the_sample_closest_at_the_last_step_and_scores_its_trajectory():
    target = np.zeros((3, 2, 4), dtype=np.float32)
    samples = np.zeros((3, 3, 2, 4), dtype=np.float32)
    samples[0] = 5.0  # far everywhere
    samples[1, :2] = 0.0  # perfect early, off at the last step
    samples[1, 2] = 1.0
    samples[2, :2] = 2.0  # off early, best at the last step
    samples[2, 2] = 0.05
    metric = evaluate.load(metric_path("generative_forecast"))
    result = metric.compute(samples=[samples], target=[target])
    assert result["best_of_n_index"] == [2]
    beta = 0.1
    expected_last = 0.5 * 0.05**2 / beta
    np.testing.assert_allclose(result["best_of_n_loss_per_step"], [2.0 - beta / 2, 2.0 - beta / 2, expected_last], rtol=1e-5)
    mean_first_step = (5.0 + 0.0 + 2.0) / 3
    assert result["mean_of_n_loss_per_step"][0] == pytest.approx(mean_first_step - beta / 2, rel=1e-5)
    assert result["best_of_n_loss"] == pytest.approx(np.mean(result["best_of_n_loss_per_step"]))


def test_mode_coverage_on_constructed_cases():
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    samples = torch.tensor([[0.5, 0.0], [9.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    result = mode_coverage(samples, modes)
    assert result["coverage"] == pytest.approx(2 / 3)
    assert result["nearest_mode_index"] == [0, 1, 0]
    np.testing.assert_allclose(result["nearest_mode_distance"], [0.5, 1.0, 1.0])
    assert mode_coverage(modes + 0.1, modes)["coverage"] == 1.0
    # through the evaluate module, with (num_modes, num_steps, num_patches, hidden) modes
    metric = evaluate.load(metric_path("generative_forecast"), "with_modes")
    mode_trajectories = np.stack([np.full((2, 1, 3), value, dtype=np.float32) for value in (0.0, 4.0)])
    samples = np.stack([np.full((2, 1, 3), value, dtype=np.float32) for value in (0.1, 0.2, 0.3)])
    result = metric.compute(samples=[samples, mode_trajectories], target=[mode_trajectories[0]] * 2,
                            modes=[mode_trajectories] * 2)
    assert result["mode_coverage"] == pytest.approx((0.5 + 1.0) / 2)
    np.testing.assert_allclose(result["nearest_mode_distance"][0], [0.1 * np.sqrt(6), 0.2 * np.sqrt(6), 0.3 * np.sqrt(6)], rtol=1e-5)


def test_diversity_and_fair_score_are_nan_for_a_single_sample():
    assert np.isnan(mean_pairwise_distance(torch.zeros(1, 3)))
    result = generative_forecast_scores([np.zeros((1, 1, 1, 2))], [np.ones((1, 1, 2))])
    assert np.isnan(result["energy_score_fair"]) and result["energy_score"] == pytest.approx(np.sqrt(2))


def test_bad_shapes_and_dtypes_raise_value_errors():
    miou = evaluate.load(metric_path("forecast_miou"))
    with pytest.raises(ValueError, match="integer class ids"):
        miou.add_batch(predictions=[np.zeros((2, 2), dtype=np.int64)], references=[np.zeros((2, 2), dtype=np.float32)])
    with pytest.raises(ValueError, match="shape"):
        miou.add_batch(predictions=[np.zeros((2, 3), dtype=np.int64)], references=[np.zeros((2, 2), dtype=np.int64)])
    with pytest.raises(ValueError, match="outside"):
        evaluate.load(metric_path("forecast_miou")).compute(
            predictions=[np.full((2, 2), 3)], references=[np.zeros((2, 2), dtype=np.int64)], num_classes=3
        )
    depth = evaluate.load(metric_path("forecast_depth_rmse"))
    with pytest.raises(ValueError, match="floating-point"):
        depth.add_batch(predictions=[np.zeros((2, 2), dtype=np.int64)], references=[np.ones((2, 2), dtype=np.float32)])
    with pytest.raises(ValueError, match="shape"):
        depth.add_batch(predictions=[np.zeros((3, 2), dtype=np.float32)], references=[np.ones((2, 2), dtype=np.float32)])
    generative = evaluate.load(metric_path("generative_forecast"))
    with pytest.raises(ValueError, match="does not match"):
        generative.add_batch(samples=[np.zeros((2, 1, 3, 4), dtype=np.float32)], target=[np.zeros((1, 3, 5), dtype=np.float32)])
    with pytest.raises(ValueError, match="num_samples"):
        generative.add_batch(samples=[np.zeros((1, 3, 4), dtype=np.float32)], target=[np.zeros((1, 3, 4), dtype=np.float32)])
    with pytest.raises(ValueError, match="floating-point"):
        generative.add_batch(samples=[np.zeros((2, 1, 3, 4), dtype=np.int64)], target=[np.zeros((1, 3, 4), dtype=np.float32)])
    with pytest.raises(ValueError, match="modes"):
        score_forecast_samples(np.zeros((2, 1, 3, 4)), np.zeros((1, 3, 4)), modes=np.zeros((2, 2, 3, 4)))
    with pytest.raises(ValueError, match="config_name"):
        evaluate.load(metric_path("generative_forecast"), "bogus")


# ---------------------------------------------------------------------------------------------------------------------
# Per-map statistics: what an accelerate loop gathers per example and pools (deltatok_hf.evaluation uses these)
# ---------------------------------------------------------------------------------------------------------------------


def test_per_map_confusion_matrices_pool_to_the_torchmetrics_miou():
    generator = torch.Generator().manual_seed(2)
    references = torch.randint(0, 5, (4, 7, 9), generator=generator)
    predictions = torch.randint(0, 5, (4, 7, 9), generator=generator)
    references[:, :2] = 255
    per_map = [map_confusion_matrix(p, r, num_classes=6) for p, r in zip(predictions, references)]
    assert all(confusion.shape == (6, 6) for confusion in per_map)
    assert per_map[0].sum() == (references[0] != 255).sum()
    pooled = intersection_over_union(np.sum(per_map, axis=0), ignore_index=None)
    expected = MulticlassJaccardIndex(6, ignore_index=255)(predictions, references).item()
    assert pooled["mean_iou"] == pytest.approx(expected, abs=1e-6)
    # A map with every pixel ignored contributes nothing.
    assert map_confusion_matrix(predictions[0], torch.full((7, 9), 255), num_classes=6).sum() == 0


def test_per_map_squared_errors_pool_to_the_dataset_rmse():
    generator = torch.Generator().manual_seed(3)
    labels = torch.rand(3, 12, 20, generator=generator) * 100.0  # some beyond 80 m
    predictions = torch.rand(3, 12, 20, generator=generator) * 80.0
    sums = [depth_squared_error(p, r, garg_crop=True) for p, r in zip(predictions, labels)]
    total, count = sum(s for s, _ in sums), sum(c for _, c in sums)
    expected = forecast_depth_rmse(list(predictions), list(labels), garg_crop=True)
    assert count == expected["num_valid_pixels"] > 0
    assert pooled_rmse(total, count) == pytest.approx(expected["pooled_rmse"], rel=1e-12)
    assert np.isnan(pooled_rmse(0.0, 0))


def test_best_of_n_index_picks_on_the_last_step_for_every_batch_element():
    target = torch.zeros(2, 3, 1, 4)  # (batch, steps, patches, hidden)
    samples = torch.zeros(2, 3, 3, 1, 4)  # (batch, samples, steps, patches, hidden)
    samples[:, 0, :2] = 0.0  # best early ...
    samples[:, 0, 2] = 3.0  # ... worst at the last step
    samples[:, 1] = 1.0
    samples[0, 2], samples[1, 2] = 2.0, 0.5
    losses = smooth_l1_per_step(samples, target[:, None])  # (batch, samples, steps)
    assert best_of_n_index(losses).tolist() == [1, 2]
