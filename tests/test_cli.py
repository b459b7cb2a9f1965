"""The `deltatok-hf` command, run in-process: forecast, demo and the convert slot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.cli import build_parser, main
from conftest import write_test_video


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("model")
    DeltaWorldForForecasting(DeltaWorldConfig.tiny()).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 2 s, 10 fps, 64x48 clip of a moving bright square."""
    pytest.importorskip("av")
    frames = []
    for index in range(20):
        frame = np.zeros((48, 64, 3), dtype=np.uint8)
        frame[10:26, 2 * index : 2 * index + 16] = 255
        frames.append(frame)
    path = write_test_video(tmp_path_factory.mktemp("video") / "moving.mp4", frames, fps=10, codec="libx264")
    return path


def _check_png(path):
    picture = Image.open(path)
    assert picture.mode == "RGB" and picture.width > 300 and picture.height > 300
    assert np.asarray(picture).std() > 10


def test_forecast_writes_picture_and_report_with_ground_truth_errors(saved_model, video, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([
        "forecast", str(video), "--model", str(saved_model), "--num-samples", "3", "--future", "2",
        "--out", str(out), "--size", "32", "--seed", "1", "--interval", "0.2", "--start", "0", "--gif", "--quiet",
    ])  # fmt: skip
    assert code == 0
    _check_png(out / "forecast.png")
    assert (out / "forecast_crop1.gif").is_file() and (out / "forecast_crop2.gif").is_file()
    report = json.loads((out / "forecast.json").read_text())
    np.testing.assert_allclose(report["context_timestamps"], [0.0, 0.2, 0.4, 0.6], atol=1e-4)
    np.testing.assert_allclose(report["future_timestamps"], [0.8, 1.0], atol=1e-4)
    assert report["ground_truth_available"] and len(report["views"]) == 2  # 64x48 -> two square crops
    view = report["views"][0]
    assert view["shapes"]["future_features"] == [3, 2, 4, 64]
    assert len(view["sample_spread_per_step"]) == 2
    errors = view["errors_vs_ground_truth"]
    assert len(errors["best_of_n_mse_per_step"]) == 2
    assert all(b <= m + 1e-9 for b, m in zip(errors["best_of_n_mse_per_step"], errors["average_sample_mse_per_step"]))
    assert "wrote" in capsys.readouterr().out


def test_forecast_without_continuation_has_no_errors(saved_model, video, tmp_path):
    out = tmp_path / "out"
    # Context 1.0..1.6 s, future 1.8..2.2 s: the 2 s clip ends before the last future time.
    code = main([
        "forecast", str(video), "--model", str(saved_model), "--num-samples", "2", "--future", "3",
        "--start", "1.0", "--out", str(out), "--size", "32", "--resize-mode", "resize_square", "--quiet",
    ])  # fmt: skip
    assert code == 0
    report = json.loads((out / "forecast.json").read_text())
    assert not report["ground_truth_available"] and len(report["views"]) == 1
    assert "errors_vs_ground_truth" not in report["views"][0]


def test_forecast_bad_inputs_exit_with_code_2(saved_model, video, tmp_path, capsys):
    missing = main(["forecast", str(tmp_path / "nope.mp4"), "--model", str(saved_model), "--out", str(tmp_path), "--quiet"])
    assert missing == 2 and "not found" in capsys.readouterr().err
    too_short = main([
        "forecast", str(video), "--model", str(saved_model), "--start", "5", "--out", str(tmp_path), "--quiet",
    ])  # fmt: skip
    assert too_short == 2 and "too short" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["forecast", str(video), "--model", str(saved_model), "--num-samples", "0"])


def test_demo_runs_on_the_bundled_clip(tmp_path, capsys):
    pytest.importorskip("av")
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--num-samples", "4", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    _check_png(out / "forecast.png")
    report = json.loads((out / "forecast.json").read_text())
    from deltatok_hf.demo import DEMO_MODEL_DIR

    if not (DEMO_MODEL_DIR / "config.json").is_file():
        assert report["random_weights"] and "RANDOM-WEIGHT" in printed and "warning" in report
    assert str((out / "forecast.png").resolve()) in printed


def test_load_demo_pipeline_uses_a_bundled_directory(tmp_path, saved_model):
    from deltatok_hf.demo import load_demo_pipeline

    fallback = load_demo_pipeline(tmp_path / "absent")
    assert fallback.random_weights and isinstance(fallback.pipeline.world_model, DeltaWorldForForecasting)
    again = load_demo_pipeline(tmp_path / "absent")
    torch.testing.assert_close(
        next(fallback.pipeline.world_model.predictor.parameters()), next(again.pipeline.world_model.predictor.parameters())
    )  # fixed seed
    bundled = load_demo_pipeline(saved_model)
    assert not bundled.random_weights and bundled.source == str(saved_model)


def test_a_deterministic_model_forecasts_without_num_samples(video, tmp_path):
    torch.manual_seed(0)
    directory = tmp_path / "deterministic"
    DeltaWorldForForecasting(DeltaWorldConfig.tiny(use_best_of_many=False)).save_pretrained(directory)
    out = tmp_path / "out"
    code = main(["forecast", str(video), "--model", str(directory), "--out", str(out), "--size", "32", "--quiet"])
    assert code == 0
    report = json.loads((out / "forecast.json").read_text())
    assert report["num_samples"] == 1 and report["views"][0]["shapes"]["future_features"][0] == 1
    # Unset options are the pipeline's defaults: 4 context frames 0.2 s apart ending on the last frame, 3 futures.
    np.testing.assert_allclose(np.diff(report["context_timestamps"]), 0.2, atol=1e-4)
    assert len(report["context_timestamps"]) == 4 and len(report["future_timestamps"]) == 3


def test_convert_slot_parses_its_arguments():
    args = build_parser().parse_args([
        "convert", "--deltatok", "a.pt", "--deltaworld", "b.pt", "--weights", "c.pth", "--output", "out", "--preset", "tiny",
    ])  # fmt: skip
    assert (args.deltatok, args.deltaworld, args.weights, args.output, args.preset) == ("a.pt", "b.pt", "c.pth", "out", "tiny")


def test_convert_calls_cli_convert(monkeypatch, tmp_path):
    import deltatok_hf.convert as convert

    seen = {}
    monkeypatch.setattr(convert, "cli_convert", lambda args: seen.setdefault("output", args.output) and 0, raising=False)
    assert main(["convert", "--output", str(tmp_path)]) == 0
    assert seen["output"] == str(tmp_path)


def test_convert_writes_a_loadable_model_from_official_weights(reference_dir, tmp_path, capsys):
    weights = reference_dir / "reference_tiny_weights.safetensors"
    assert main(["convert", "--weights", str(weights), "--preset", "tiny", "--output", str(tmp_path / "out")]) == 0
    assert "unmatched 0" in capsys.readouterr().out
    model = DeltaWorldForForecasting.from_pretrained(tmp_path / "out")
    assert model.predictor.head.weight.shape == (64, 64)
    assert (tmp_path / "out" / "README.md").is_file()
    # The converter's directory loads as a pipeline, and a saved pipeline of it gives identical futures.
    from deltatok_hf import DeltaWorldPipeline

    clip = torch.randint(0, 256, (3, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    pipe = DeltaWorldPipeline.from_pretrained(tmp_path / "out", size=64)
    first = pipe(clip, fps=5, num_samples=3, seed=4)
    pipe.save_pretrained(tmp_path / "pipeline")
    again = DeltaWorldPipeline.from_pretrained(tmp_path / "pipeline")(clip, fps=5, num_samples=3, seed=4)
    torch.testing.assert_close(again.future_features, first.future_features, rtol=0, atol=0)


def test_convert_without_sources_fails_with_a_message(tmp_path, capsys):
    assert main(["convert", "--output", str(tmp_path / "out")]) == 2
    assert "weights=" in capsys.readouterr().err


def test_convert_a_task_head(tmp_path):
    from deltatok_hf.models.heads import DeltaTokDepthHead

    state = {
        "bn.weight": torch.rand(64), "bn.bias": torch.randn(64), "bn.running_mean": torch.randn(64),
        "bn.running_var": torch.rand(64) + 0.5, "bn.num_batches_tracked": torch.tensor(7),
        "head.weight": torch.randn(256, 64, 1, 1), "head.bias": torch.randn(256),
    }  # fmt: skip
    torch.save(state, tmp_path / "pytorch_model.bin")
    out = tmp_path / "head"
    assert main(["convert", "--head", str(tmp_path / "pytorch_model.bin"), "--head-kind", "depth", "--output", str(out)]) == 0
    head = DeltaTokDepthHead.from_pretrained(out)
    assert torch.equal(head.head.weight, state["head.weight"])
    assert main(["convert", "--head", str(tmp_path / "pytorch_model.bin"), "--weights", "x", "--output", str(out)]) == 2
