"""The `deltatok-hf` command, run in-process: forecast, demo and the convert slot."""

from __future__ import annotations

import json
from pathlib import Path

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


@pytest.mark.parametrize("selection", ["k_medoids", "farthest_point"])
def test_forecast_with_candidates_reports_the_kept_ones_and_their_weights(saved_model, video, tmp_path, selection):
    from deltatok_hf.cli import SELECTION_CHOICES
    from deltatok_hf.pipelines import SELECTION_METHODS

    assert SELECTION_CHOICES == SELECTION_METHODS  # the CLI's spelled-out choices are the pipeline's methods
    out = tmp_path / "out"
    code = main([
        "forecast", str(video), "--model", str(saved_model), "--num-samples", "2", "--candidates", "8", "--selection",
        selection, "--out", str(out), "--size", "32", "--resize-mode", "resize_square", "--quiet",
    ])  # fmt: skip
    assert code == 0
    report = json.loads((out / "forecast.json").read_text())
    assert report["num_candidates"] == 8 and report["candidate_selection"] == selection
    view = report["views"][0]
    assert len(set(view["candidate_indices"])) == 2 and max(view["candidate_indices"]) < 8
    assert sum(view["candidate_weights"]) == pytest.approx(1.0, abs=1e-3)


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
    code = main(["demo", "--out", str(out), "--num-samples", "6", "--gif", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    _check_png(out / "forecast.png")
    report = json.loads((out / "forecast.json").read_text())
    from deltatok_hf.demo import DEMO_MODEL_DIR

    if not (DEMO_MODEL_DIR / "config.json").is_file() and not (DEMO_MODEL_DIR / "model_index.json").is_file():
        assert report["random_weights"] and "RANDOM-WEIGHT" in printed and "warning" in report
    assert str((out / "forecast.png").resolve()) in printed
    assert report["gifs"] and all(Path(gif).is_file() for gif in report["gifs"])
    if (DEMO_MODEL_DIR / "model_index.json").is_file():  # the bundled pipeline has an RGB decoder: the fork comes first
        _check_png(out / "fork.png")
        fork = json.loads((out / "fork.json").read_text())
        assert fork["num_samples"] == 6 and len(fork["clips"]) == 3
        assert all(len(clip["sample_modes"]) == 6 for clip in fork["clips"])
        assert Image.open(out / "fork.gif").n_frames == 5  # 4 context frames + the future
        assert str((out / "fork.png").resolve()) in printed and "branches covered" in printed


@pytest.fixture(scope="module")
def fork_pipeline():
    """A 64 px pipeline with a tiny random world model and RGB decoder (mechanics only: random weights)."""
    from deltatok_hf import DeltaWorldPipeline
    from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig

    torch.manual_seed(0)
    world = DeltaWorldForForecasting(DeltaWorldConfig.tiny())
    decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(feature_size=64, image_size=64))
    decoder.copy_feature_norm_from(world)
    pipe = DeltaWorldPipeline(world_model=world, rgb_decoder=decoder, size=64, context_interval=0.1)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_fork_demo_reads_every_sample_and_its_report_agrees_with_itself(fork_pipeline, tmp_path):
    from deltatok_hf.demo import fork_world_for, forecast_fork_clip, run_fork_demo

    report = run_fork_demo(fork_pipeline, tmp_path, num_clips=2, num_samples=5, seed=3, max_samples_shown=4, gif=True)
    assert Image.open(report["picture"]).size[0] > 4 * 80 and Image.open(report["gif"]).n_frames == 5
    assert json.loads((tmp_path / "fork.json").read_text()) == report
    for clip in report["clips"]:
        assert len(clip["sample_modes"]) == 5 and sum(clip["samples_per_mode"].values()) == 5
        covered = {mode for mode in clip["sample_modes"] if mode != "none"}
        assert clip["coverage"] == pytest.approx(len(covered) / 3)
    # Select-then-decode on the same clips: one kept future per branch, weights that share out all 256 drawn.
    selection = report["select_then_decode"]
    assert selection["num_candidates"] == 256 and selection["num_kept"] == 3 and len(selection["clips"]) == 2
    assert Image.open(selection["picture"]).size[0] > 4 * 80
    for clip in selection["clips"]:
        assert len(clip["kept"]) == 3 and sum(future["weight"] for future in clip["kept"]) == pytest.approx(1.0, abs=1e-3)
        weights = [future["weight"] for future in clip["kept"]]
        assert weights == sorted(weights, reverse=True)  # the largest group first
        covered = {future["mode"] for future in clip["kept"] if future["mode"] != "none"}
        assert clip["coverage"] == pytest.approx(len(covered) / 3)
    # The clips are the held-out fork world in the pipeline's geometry; the true future is the clip's branch.
    world = fork_world_for(fork_pipeline, 2)
    clip = forecast_fork_clip(fork_pipeline, world, 1, num_samples=5, generator=torch.Generator().manual_seed(3))
    assert clip.sample_frames.shape == (5, 64, 64, 3) and clip.sample_frames.dtype == torch.uint8
    assert torch.equal(clip.branch_frames[clip.true_mode], world[1]["frames"][-1].permute(1, 2, 0))
    # A rendered branch reads as itself: the reader the report relies on.
    assert int(world.read_mode(world[1]["frames"][-1:], world[1])[0]) == clip.true_mode


def test_fork_demo_with_candidates_decodes_the_chosen_ones(fork_pipeline):
    from deltatok_hf.demo import fork_world_for, forecast_fork_clip, weighted_mean_frame

    world = fork_world_for(fork_pipeline, 1)
    clip = forecast_fork_clip(fork_pipeline, world, 0, num_samples=3, num_candidates=16, generator=torch.Generator().manual_seed(0))
    assert clip.sample_frames.shape[0] == 3 and clip.candidate_indices.shape == (3,)
    assert len(set(clip.candidate_indices.tolist())) == 3 and int(clip.candidate_indices.max()) < 16
    assert clip.candidate_weights.shape == (3,) and float(clip.candidate_weights.sum()) == pytest.approx(1.0)
    # The mean picture weighs each kept future by its share of the candidates.
    assert torch.equal(clip.mean_frame, weighted_mean_frame(clip.sample_frames, clip.candidate_weights))


def test_the_mean_picture_weighs_the_kept_futures():
    from deltatok_hf.demo import weighted_mean_frame

    frames = torch.stack([torch.full((2, 2, 3), value, dtype=torch.uint8) for value in (0, 100, 200)])
    assert torch.equal(weighted_mean_frame(frames), torch.full((2, 2, 3), 100, dtype=torch.uint8))
    weighted = weighted_mean_frame(frames, torch.tensor([0.5, 0.25, 0.25]))
    assert torch.equal(weighted, torch.full((2, 2, 3), 75, dtype=torch.uint8))
    # Weights of a subset are shares of all the candidates: normalised over the frames given.
    assert torch.equal(weighted_mean_frame(frames[1:], torch.tensor([0.1, 0.3])), torch.full((2, 2, 3), 175, dtype=torch.uint8))


def test_fork_clip_forecast_is_one_pipeline_call_then_reading_the_pixels(fork_pipeline):
    # What the select-then-decode benchmark times (the call) and what it reads afterwards give the demo's clip.
    from deltatok_hf.demo import fork_pipeline_inputs, fork_world_for, forecast_fork_clip, read_fork_forecast

    world = fork_world_for(fork_pipeline, 2)
    options = dict(num_samples=3, num_candidates=16)
    clip = forecast_fork_clip(fork_pipeline, world, 1, generator=torch.Generator().manual_seed(5), **options)
    inputs = fork_pipeline_inputs(world, world[1])
    assert inputs["video"].shape[0] == world.num_context_frames and inputs["future_timestamps"].shape == (1,)
    output = fork_pipeline(**inputs, generator=torch.Generator().manual_seed(5), **options)
    again = read_fork_forecast(world, world[1], output)
    assert torch.equal(again.sample_frames, clip.sample_frames) and torch.equal(again.sample_modes, clip.sample_modes)
    assert torch.equal(again.candidate_indices, clip.candidate_indices) and again.coverage == clip.coverage


def test_fork_demo_selects_with_the_method_asked_for(fork_pipeline, tmp_path, monkeypatch):
    # The select-then-decode part follows candidate_selection (the demo's --selection) and reports it.
    from deltatok_hf.demo import SELECTION_NAMES, run_fork_demo
    from deltatok_hf.pipelines import SELECTION_METHODS, pipeline_deltaworld

    assert set(SELECTION_NAMES) == set(SELECTION_METHODS)
    used = []
    select = pipeline_deltaworld.select_candidates
    monkeypatch.setattr(
        pipeline_deltaworld, "select_candidates", lambda tokens, k, method: used.append(method) or select(tokens, k, method)
    )
    for method in SELECTION_METHODS:
        used.clear()
        report = run_fork_demo(
            fork_pipeline, tmp_path / method, num_clips=1, num_samples=2, selection_candidates=32,
            candidate_selection=method,
        )["select_then_decode"]  # fmt: skip
        assert report["method"] == method and used == [method]


def test_fork_demo_needs_an_rgb_decoder(saved_model, tmp_path):
    from deltatok_hf.demo import load_demo_pipeline, run_fork_demo

    bare = load_demo_pipeline(saved_model).pipeline
    with pytest.raises(ValueError, match="rgb_decoder"):
        run_fork_demo(bare, tmp_path)


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


def test_fork_world_pixel_targets_weight_the_disc_and_follow_the_feature_order():
    """What the demo model's RGB decoder trains on: clip frames item by item, then every branch; disc pixels weigh more."""
    from deltatok_hf.data import ForkWorld
    from deltatok_hf.training.demo import fork_world_pixel_targets

    world = ForkWorld(2, seed=0)
    items = [world[0], world[1]]
    pixels, weights = fork_world_pixel_targets(items, object_weight=20.0)
    num_clip_frames = 2 * world.num_frames
    assert pixels.shape == (num_clip_frames + 2 * world.num_modes, 3, 64, 64) and weights.shape[1] == 1
    assert torch.equal(pixels[world.num_frames], items[1]["frames"][0])  # second item's first frame
    assert torch.equal(pixels[num_clip_frames + world.num_modes + 2], items[1]["all_futures"][2, 0])
    assert set(weights.unique().tolist()) == {1.0, 20.0}
    # The weighted pixels are the disc's: about its area in every frame (anti-aliased edge included).
    disc_area = torch.pi * world.radius**2
    weighted = (weights == 20).flatten(1).sum(1).float()
    assert (weighted > 0.8 * disc_area).all() and (weighted < 1.6 * disc_area).all()
    with pytest.raises(ValueError, match="object_weight"):
        fork_world_pixel_targets(items, object_weight=0.5)
