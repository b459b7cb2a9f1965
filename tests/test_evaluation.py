"""The forecasting benchmark (`deltatok_hf.evaluation`), its readers (`deltatok_hf.data.benchmarks`), the linear
probe, the `deltatok-hf evaluate` command and the example scripts, on tiny fakes.

Fake datasets are laid out like the real ones (VSPW, Cityscapes, KITTI) with a few PIL-written frames and labels that
hold ignored (255) and invalid-depth (0) pixels; models are tiny and random, so no number here is a quality result.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_test_video

from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.cli import build_parser
from deltatok_hf.cli import main as cli_main
from deltatok_hf.data import CityscapesWindows, KITTIWindows, VSPWWindows
from deltatok_hf.data.video_processor import align_to_labels, split_into_square_crops
from deltatok_hf.evaluation import (
    ROWS,
    ForecastEvaluationConfig,
    LinearProbeConfig,
    evaluate_forecasting,
    load_task_head,
    train_linear_probe,
)
from deltatok_hf.metrics.functional import garg_crop_mask
from deltatok_hf.models.heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
)


REPO_ROOT = Path(__file__).resolve().parents[1]


def _save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _frame(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------------------
# Fake dataset layouts
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vspw_root(tmp_path_factory) -> Path:
    """Two videos of 45 frames (60 x 101, odd width: the label halves need padding); labels 0..124 and 255."""
    root = tmp_path_factory.mktemp("vspw")
    (root / "val.txt").write_text("video_a\nvideo_b\n")
    for video_index, name in enumerate(("video_a", "video_b")):
        for frame in range(45):
            frame_path = root / "data" / name / "origin" / f"{frame:08d}.jpg"
            _save_image(frame_path, _frame(60, 101, frame + 100 * video_index))
            mask = np.full((60, 101), frame % 124 + 1, dtype=np.uint8)
            mask[:, :10] = 0  # unlabelled -> 255
            mask[:5] = 255  # ignore -> 255
            _save_image(root / "data" / name / "mask" / f"{frame:08d}.png", mask)
    return root


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory) -> Path:
    """One snippet of 30 frames (64 x 128) whose 20th frame (index 19) is labelled."""
    root = tmp_path_factory.mktemp("cityscapes")
    for frame in range(30):
        path = root / "leftImg8bit_sequence" / "val" / "aachen" / f"aachen_000000_{frame:06d}_leftImg8bit.png"
        _save_image(path, _frame(64, 128, frame))
    label_ids = np.full((64, 128), 7, dtype=np.uint8)  # road -> train id 0
    label_ids[:, 64:] = 26  # car -> 13
    label_ids[:8] = 0  # unlabeled -> 255
    _save_image(root / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png", label_ids)
    return root


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory) -> tuple[Path, Path]:
    """One drive of 24 frames (376 x 1242), depth for every frame, a split file with skipped and kept lines."""
    root = tmp_path_factory.mktemp("kitti")
    drive = "2011_09_26_drive_0002_sync"
    for frame in range(24):
        _save_image(root / "2011_09_26" / drive / "image_02" / "data" / f"{frame:010d}.png", _frame(376, 1242, frame))
        depth = np.full((376, 1242), 10 * 256, dtype=np.uint16)
        depth[:, :300] = 0  # no lidar return: invalid
        depth[-20:] = 90 * 256  # beyond max depth: invalid
        _save_image(root / "val" / drive / "proj_depth" / "groundtruth" / "image_02" / f"{frame:010d}.png", depth)
    image_line = "2011_09_26/{drive}/image_02/data/{frame:010d}.png"
    depth_line = "{drive}/proj_depth/groundtruth/image_02/{frame:010d}.png"
    lines = [
        f"{image_line.format(drive=drive, frame=frame)} {depth_line.format(drive=drive, frame=frame)} 721.5377"
        for frame in (21, 19, 12)
    ]
    lines.append(f"2011_09_26/{drive}/image_02/data/0000000020.png None 721.5377")
    split_file = root / "eigen_test.txt"
    split_file.write_text("\n".join(lines) + "\n")
    return root, split_file


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_deltaworld")
    DeltaWorldForForecasting(DeltaWorldConfig.tiny()).save_pretrained(path)
    return path


def _hidden_size(model_dir: Path) -> int:
    return DeltaWorldForForecasting.from_pretrained(model_dir).config.tokenizer_config.backbone_config.hidden_size


def _save_head(head, path: Path) -> Path:
    # Non-trivial BatchNorm statistics, so the head's output depends on its input.
    head.bn.running_var.fill_(0.5)
    head.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def heads(tiny_model_dir, tmp_path_factory) -> dict:
    torch.manual_seed(0)
    hidden_size = _hidden_size(tiny_model_dir)
    root = tmp_path_factory.mktemp("heads")
    return {
        "vspw": _save_head(
            DeltaTokSegmentationHead(DeltaTokSegmentationHeadConfig(hidden_size=hidden_size, num_labels=124)),
            root / "vspw",
        ),
        "cityscapes": _save_head(
            DeltaTokSegmentationHead(DeltaTokSegmentationHeadConfig(hidden_size=hidden_size, num_labels=19)),
            root / "cityscapes",
        ),
        "kitti": _save_head(
            DeltaTokDepthHead(DeltaTokDepthHeadConfig(hidden_size=hidden_size, num_bins=16)), root / "kitti"
        ),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Readers: windows, strides, labels
# ---------------------------------------------------------------------------------------------------------------------


def test_vspw_windows_end_on_every_20th_frame_with_stride_3(vspw_root):
    dataset = VSPWWindows(vspw_root, frame_size=64)
    # 45 frames: labelled indices 19 and 39; 0.2 s at 15 fps = 3 frames; the window of 19 starts at 1.
    assert [window.frame_indices for window in dataset.windows] == [list(range(1, 20, 3)), list(range(21, 40, 3))] * 2
    item = dataset[0]
    assert item["frames"].shape == (7, 3, 64, 108) and item["frames"].dtype == torch.uint8
    assert torch.allclose(item["timestamps"], torch.arange(7) * 0.2)
    labels = item["labels"]
    assert labels.shape == (7, 60, 101)
    assert (labels[:, :, :10] == 255).all() and (labels[:, :5] == 255).all()  # 0 and 255 -> ignore
    assert labels[-1, 30, 50] == 19 % 124  # stored 20 -> class 19
    assert labels[0, 30, 50] == 1 % 124  # every frame has its label


def test_cityscapes_window_ends_on_the_labelled_20th_frame(cityscapes_root):
    dataset = CityscapesWindows(cityscapes_root, frame_size=64)
    assert len(dataset) == 1
    # 0.1875 s at 16 fps = 3 frames: 1, 4, ..., 19.
    assert dataset.windows[0].frame_indices == [1, 4, 7, 10, 13, 16, 19]
    assert dataset.windows[0].frame_paths[-1].name == "aachen_000000_000019_leftImg8bit.png"
    item = dataset[0]
    assert torch.allclose(item["timestamps"], torch.arange(7) * 0.1875)
    labels = item["labels"]
    assert (labels[:-1] == 255).all()  # only the last frame is labelled
    assert labels[-1, 20, 10] == 0 and labels[-1, 20, 100] == 13 and (labels[-1, :8] == 255).all()


def test_kitti_windows_follow_the_split_file_with_kb_crop_and_garg_mask(kitti_root):
    root, split_file = kitti_root
    dataset = KITTIWindows(root, split_file, frame_size=64)
    # Frame 12 is skipped (< 19), the `None` line too; 0.2 s at 10 fps = 2 frames.
    assert [window.frame_indices for window in dataset.windows] == [list(range(9, 22, 2)), list(range(7, 20, 2))]
    item = dataset[0]
    # KB crop 352 x 1216 -> short side 64, long side capped at 2 x 64 (the official aspect squeeze).
    assert item["frames"].shape == (7, 3, 64, 128)
    depth = item["labels"]
    assert depth.shape == (7, 352, 1216) and depth.dtype == torch.float32
    assert set(depth.unique().tolist()) == {0.0, 10.0}
    assert (depth[:, : int(0.40810811 * 352)] == 0).all()  # outside the Garg crop
    assert (depth[:, -20:] == 0).all()  # beyond 80 m
    # The Garg crop is the metrics' one: inside it every pixel with a lidar return in range is kept.
    # KB crop offsets: 376 - 352 = 24 rows, (1242 - 1216) // 2 = 13 columns.
    measured = np.zeros((352, 1216), dtype=bool)
    measured[: 352 - 20, 300 - 13 :] = True
    np.testing.assert_array_equal((depth[0] > 0).numpy(), garg_crop_mask(352, 1216) & measured)


def test_square_crops_and_label_halves_match_the_official_layout():
    frames = torch.arange(2 * 1 * 3 * 4 * 6).view(2, 1, 3, 4, 6)
    labels = torch.arange(2 * 1 * 5 * 7).view(2, 1, 5, 7)
    crops, halves, layout = split_into_square_crops(frames, labels)
    assert crops.shape == (4, 1, 3, 4, 4) and layout.is_wide and layout.overlap
    assert torch.equal(crops[2], frames[0, ..., 2:])  # first all left crops, then all right crops
    assert halves.shape == (4, 1, 5, 4)
    assert (halves[0, 0, :, 3] == 255).all()  # odd width: the left half is padded with ignore
    assert torch.equal(halves[2], labels[0, ..., 3:])
    # Overlapping crops: each is resized to a square of the half's long side, then cut to the half.
    maps = torch.rand(4, 2, 4, 4)
    aligned = align_to_labels(maps, (5, 4), layout)
    assert aligned.shape == (4, 2, 5, 4)


# ---------------------------------------------------------------------------------------------------------------------
# The benchmark end to end
# ---------------------------------------------------------------------------------------------------------------------


def _benchmark_config(tmp_path, model_dir, **options) -> ForecastEvaluationConfig:
    options = {"num_samples": 4, "size": 64, **options}
    return ForecastEvaluationConfig(model=str(model_dir), output_dir=str(tmp_path / "eval"), **options)


def _run_benchmark(tmp_path, model_dir, **options) -> tuple[dict, str]:
    config = _benchmark_config(tmp_path, model_dir, **options)
    report = evaluate_forecasting(config)
    output_dir = Path(config.output_dir)
    written = json.loads((output_dir / "results.json").read_text())
    assert written["results"].keys() == report["results"].keys()
    return written, (output_dir / "results.md").read_text()


def _check_rows(report: dict, metric: str, labelled_steps: dict) -> None:
    for horizon, steps in labelled_steps.items():
        result = report["results"][f"context_4_horizon_{horizon}"]
        for step in range(1, horizon + 1):
            rows = result["steps"][str(step)]
            assert set(ROWS) <= rows.keys()
            for name in ROWS:
                assert np.isfinite(rows[name]["smooth_l1"])
                assert (metric in rows[name]) == (step in steps), (horizon, step, name)
            assert rows["present"]["smooth_l1"] == 0.0
            assert rows["copy_last"]["smooth_l1"] > 0.0
            assert np.isfinite(rows["energy_score"]) and rows["diversity"] >= 0


def test_benchmark_on_fake_cityscapes_scores_only_the_labelled_last_step(
    tmp_path, tiny_model_dir, heads, cityscapes_root
):
    report, markdown = _run_benchmark(
        tmp_path, tiny_model_dir, dataset="cityscapes", data_root=str(cityscapes_root), head=str(heads["cityscapes"])
    )
    assert report["num_windows"] == 1 and report["task"] == "segmentation"
    _check_rows(report, "mean_iou", {1: {1}, 3: {3}})
    for name in ROWS:
        assert 0.0 <= report["results"]["context_4_horizon_3"]["steps"]["3"][name]["mean_iou"] <= 1.0
    for title in ("best-of-N", "mean-of-N", "copy-last", "present (oracle)", "mIoU", "horizon 3"):
        assert title in markdown


def test_benchmark_on_fake_vspw_scores_every_future_step(tmp_path, tiny_model_dir, heads, vspw_root):
    report, markdown = _run_benchmark(
        tmp_path, tiny_model_dir, dataset="vspw", data_root=str(vspw_root), head=str(heads["vspw"]), batch_size=2,
        max_windows=2,
    )  # fmt: skip
    assert report["num_windows"] == 2
    _check_rows(report, "mean_iou", {1: {1}, 3: {1, 2, 3}})
    assert "| present (oracle) |" in markdown


def test_benchmark_on_fake_kitti_reports_depth_rmse(tmp_path, tiny_model_dir, heads, kitti_root):
    root, split_file = kitti_root
    report, markdown = _run_benchmark(
        tmp_path, tiny_model_dir, dataset="kitti", data_root=str(root), split_file=str(split_file),
        head=str(heads["kitti"]), horizons=[3], batch_size=2,
    )  # fmt: skip
    assert report["task"] == "depth" and report["num_windows"] == 2
    _check_rows(report, "rmse", {3: {1, 2, 3}})
    assert report["results"]["context_4_horizon_3"]["steps"]["3"]["present"]["rmse"] > 0
    assert "RMSE" in markdown


def test_benchmark_rejects_a_head_of_the_wrong_task(tmp_path, tiny_model_dir, heads, kitti_root):
    root, split_file = kitti_root
    with pytest.raises(ValueError, match="segmentation head"):
        _run_benchmark(
            tmp_path, tiny_model_dir, dataset="kitti", data_root=str(root), split_file=str(split_file),
            head=str(heads["cityscapes"]),
        )


def test_benchmark_on_synthetic_reports_feature_scores_and_mode_coverage(tmp_path, tiny_model_dir):
    report, markdown = _run_benchmark(
        tmp_path, tiny_model_dir, dataset="synthetic", num_synthetic_videos=3, batch_size=2
    )
    assert report["task"] is None
    result = report["results"]["context_4_horizon_3"]
    assert 0.0 < result["mode_coverage"] <= 1.0
    assert "mode_coverage" not in report["results"]["context_4_horizon_1"]
    assert "mIoU" not in markdown and "Mode coverage" in markdown and "present" not in markdown.split("## ")[1]


def test_benchmark_on_a_video_folder_scores_feature_space_with_two_square_crops(tmp_path, tiny_model_dir):
    # 25 frames at 10 fps, 48 x 64: 7 frames 0.2 s (2 frames) apart around the middle; two overlapping crops at 32.
    frames = [_frame(48, 64, seed) for seed in range(25)]
    (tmp_path / "videos").mkdir()
    write_test_video(tmp_path / "videos" / "clip.mp4", frames, fps=10)
    report, markdown = _run_benchmark(
        tmp_path, tiny_model_dir, dataset="videos", data_root=str(tmp_path / "videos"), size=32, horizons=[2]
    )
    assert report["num_windows"] == 1 and report["task"] is None and report["time_stride_seconds"] == 0.2
    steps = report["results"]["context_4_horizon_2"]["steps"]
    assert steps["2"]["copy_last"]["smooth_l1"] > 0.0 and "mean_iou" not in steps["2"]["best_of_n"]
    assert "present" not in markdown.split("## ")[1]


# ---------------------------------------------------------------------------------------------------------------------
# Linear probe
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["segmentation", "depth"])
def test_linear_probe_loss_decreases_and_the_head_loads(tmp_path, tiny_model_dir, task):
    output_dir = tmp_path / "probe"
    summary = train_linear_probe(
        LinearProbeConfig(
            model=str(tiny_model_dir), dataset="synthetic", task=task, size=64, num_synthetic_images=16,
            train_batch_size=8, max_train_steps=30, learning_rate=1e-2, output_dir=str(output_dir),
        )
    )  # fmt: skip
    losses = summary["losses"]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    head = load_task_head(str(output_dir))
    assert isinstance(head, DeltaTokSegmentationHead if task == "segmentation" else DeltaTokDepthHead)


def test_linear_probe_on_fake_cityscapes_uses_the_labelled_frames(tmp_path, tiny_model_dir, cityscapes_root):
    summary = train_linear_probe(
        LinearProbeConfig(
            model=str(tiny_model_dir), dataset="cityscapes", data_root=str(cityscapes_root), split="val", size=64,
            max_train_steps=3, output_dir=str(tmp_path / "probe"),
        )
    )
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    assert DeltaTokSegmentationHead.from_pretrained(tmp_path / "probe").config.num_labels == 19


# ---------------------------------------------------------------------------------------------------------------------
# Slow: a briefly trained model beats copy-last on best-of-20
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_trained_tiny_model_beats_copy_last_on_best_of_20(tmp_path):
    """A random tokenizer decodes every token to (almost) the last frame, so the tokenizer is trained first, then the
    predictor on its cached delta tokens (Best-of-Many); ~5 min on 2 cores."""
    from deltatok_hf.data import SyntheticMultimodalMotion

    torch.manual_seed(0)
    model = DeltaWorldForForecasting(DeltaWorldConfig.tiny())
    clips = SyntheticMultimodalMotion(num_videos=128, num_frames=7, num_context_frames=4, size=64, seed=0)
    frames = torch.stack([torch.as_tensor(clips[i]["frames"]) for i in range(len(clips))])
    timestamps = torch.stack([torch.as_tensor(clips[i]["timestamps"], dtype=torch.float32) for i in range(len(clips))])
    generator = torch.Generator().manual_seed(0)

    # 1. DeltaTok: reconstruct frame t + 1 from frame t (the backbone stays frozen).
    tokenizer = model.tokenizer
    tokenizer_parameters = [p for n, p in tokenizer.named_parameters() if not n.startswith("backbone.")]
    for parameter in tokenizer_parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(tokenizer_parameters, lr=1e-3, weight_decay=0.0)
    tokenizer.train()
    for _ in range(250):
        index = torch.randint(0, len(frames), (16,), generator=generator)
        start = int(torch.randint(0, frames.shape[1] - 1, (1,), generator=generator))
        loss = tokenizer(frames=frames[index, start : start + 2].float()).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tokenizer.requires_grad_(False).eval()

    # 2. DeltaWorld predictor on the cached delta tokens.
    with torch.no_grad():
        delta_tokens = torch.cat([model.encode_context(frames[i : i + 32])[0] for i in range(0, len(frames), 32)])
    optimizer = torch.optim.AdamW(model.predictor.parameters(), lr=1e-3, weight_decay=0.0)
    model.predictor.train()
    for _ in range(400):
        index = torch.randint(0, len(frames), (32,), generator=generator)
        loss = model(delta_tokens=delta_tokens[index], timestamps=timestamps[index], num_samples_train=16).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model_dir = tmp_path / "trained"
    model.save_pretrained(model_dir)

    # 3. The benchmark on held-out synthetic clips (another seed).
    report = evaluate_forecasting(
        ForecastEvaluationConfig(
            model=str(model_dir), dataset="synthetic", num_synthetic_videos=16, size=64, num_samples=20,
            horizons=[1, 3], batch_size=8, seed=1, output_dir=str(tmp_path / "eval"),
        )
    )
    for key in ("context_4_horizon_1", "context_4_horizon_3"):
        result = report["results"][key]
        for step, rows in result["steps"].items():
            assert rows["best_of_n"]["smooth_l1"] < rows["copy_last"]["smooth_l1"], (key, step, rows)


# ---------------------------------------------------------------------------------------------------------------------
# One code path: `deltatok-hf evaluate`, the example scripts, the config's checks and defaults
# ---------------------------------------------------------------------------------------------------------------------


def test_cli_evaluate_runs_the_same_code_as_the_package_on_fake_cityscapes(
    tmp_path, tiny_model_dir, heads, cityscapes_root, capsys
):
    expected, _ = _run_benchmark(
        tmp_path / "package", tiny_model_dir, dataset="cityscapes", data_root=str(cityscapes_root),
        head=str(heads["cityscapes"]), horizons=[2],
    )  # fmt: skip
    output_dir = tmp_path / "cli"
    exit_code = cli_main(
        [
            "evaluate", "--model", str(tiny_model_dir), "--dataset", "cityscapes", "--data-root", str(cityscapes_root),
            "--head", str(heads["cityscapes"]), "--num-samples", "4", "--size", "64", "--horizons", "2",
            "--output-dir", str(output_dir),
        ]
    )  # fmt: skip
    assert exit_code == 0
    assert "results.json" in capsys.readouterr().out
    written = json.loads((output_dir / "results.json").read_text())
    # Same seed, same code: the same numbers (only the output folder differs).
    assert written["results"] == expected["results"]
    assert written["results"]["context_4_horizon_2"]["steps"]["2"]["present"]["mean_iou"] >= 0.0


def test_cli_evaluate_passes_nothing_the_user_did_not_set():
    args = build_parser().parse_args(
        ["evaluate", "--model", "model_dir", "--dataset", "synthetic", "--output_dir", "out"]
    )
    assert ForecastEvaluationConfig.from_namespace(args) == ForecastEvaluationConfig(
        model="model_dir", dataset="synthetic", output_dir="out"
    )
    defaults = ForecastEvaluationConfig(model="m", dataset="synthetic", output_dir="o")
    # The benchmark protocol's defaults; the number of samples is left to the model config (num_samples_eval).
    assert (defaults.context, defaults.horizons, defaults.size, defaults.num_samples) == (4, [1, 3], 512, None)


def test_cli_evaluate_reports_bad_options_with_exit_code_2(tmp_path, tiny_model_dir, capsys):
    exit_code = cli_main(
        ["evaluate", "--model", str(tiny_model_dir), "--dataset", "synthetic", "--num-samples", "0",
         "--output-dir", str(tmp_path)]
    )  # fmt: skip
    assert exit_code == 2
    assert "num_samples" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset": "nuscenes"}, "dataset"),
        ({"dataset": "vspw"}, "data_root"),
        ({"dataset": "kitti", "data_root": "root"}, "split_file"),
        ({"dataset": "synthetic", "head": "head_dir"}, "labelled dataset"),
        ({"dataset": "synthetic", "horizons": [1, 0]}, "horizons"),
        ({"dataset": "synthetic", "context": 0}, "context"),
        ({"dataset": "synthetic", "size": -64}, "size"),
        ({"dataset": "synthetic", "time_stride_seconds": 0.0}, "time_stride_seconds"),
        ({"dataset": "synthetic", "batch_size": True}, "batch_size"),
    ],
)
def test_evaluation_config_rejects_bad_values_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        ForecastEvaluationConfig(model="m", output_dir="o", **options)


def test_probe_config_rejects_bad_values_naming_them():
    with pytest.raises(ValueError, match="depth_loss"):
        LinearProbeConfig(model="m", output_dir="o", dataset="synthetic", depth_loss="l2")
    with pytest.raises(ValueError, match="learning_rate"):
        LinearProbeConfig(model="m", output_dir="o", dataset="synthetic", learning_rate=0.0)
    with pytest.raises(ValueError, match="'videos'"):
        LinearProbeConfig(model="m", output_dir="o", dataset="videos", data_root="root")


def test_evaluation_rejects_a_size_that_is_not_a_multiple_of_the_patch_size(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match="patch size"):
        evaluate_forecasting(dataclasses.replace(_benchmark_config(tmp_path, tiny_model_dir, dataset="synthetic"), size=40))


def _run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / name), *arguments],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TQDM_DISABLE": "1"},
    )  # fmt: skip


def test_evaluate_script_runs_as_a_script(tmp_path, tiny_model_dir):
    completed = _run_script(
        "evaluate_forecasting.py", "--model", str(tiny_model_dir), "--dataset", "synthetic", "--size", "32",
        "--num_synthetic_videos", "1", "--num_samples", "2", "--horizons", "1", "--output_dir", str(tmp_path),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["num_samples"] == 2 and list(report["results"]) == ["context_4_horizon_1"]


def test_probe_script_runs_as_a_script(tmp_path, tiny_model_dir):
    completed = _run_script(
        "train_linear_probe.py", "--model", str(tiny_model_dir), "--dataset", "synthetic", "--size", "32",
        "--num_synthetic_images", "2", "--train_batch_size", "2", "--max_train_steps", "2", "--output_dir",
        str(tmp_path),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "training_summary.json").read_text())["steps"] == 2
    assert isinstance(load_task_head(str(tmp_path)), DeltaTokSegmentationHead)


@pytest.mark.parametrize("best_of_many", [False, True], ids=["dinoworld", "dinoworld_bom"])
def test_benchmark_evaluates_a_dino_world_rung_by_its_model_type(tmp_path, best_of_many):
    from deltatok_hf.models.dinoworld import DinoWorldConfig, DinoWorldForForecasting

    torch.manual_seed(0)
    model_dir = tmp_path / "dinoworld"
    DinoWorldForForecasting(DinoWorldConfig.tiny(use_best_of_many=best_of_many)).save_pretrained(model_dir)
    report, _ = _run_benchmark(tmp_path, model_dir, dataset="synthetic", num_synthetic_videos=2, batch_size=2, num_samples=None)
    # The deterministic rung forecasts one future; the Best-of-Many rung its config's num_samples_eval.
    assert report["num_samples"] == (DinoWorldConfig.tiny().num_samples_eval if best_of_many else 1)
    assert report["results"]["context_4_horizon_3"]["steps"]["3"]["best_of_n"]["smooth_l1"] > 0.0
