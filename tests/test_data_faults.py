"""Data faults: corrupt, truncated, empty, audio-only and variable-frame-rate files among good videos."""

import logging
import numpy as np
import pytest
import torch

from deltatok_hf.data import (
    ClipSampler,
    NoUsableVideosError,
    VideoClipDataset,
    VideoTooShortError,
    read_timestamps,
)
from deltatok_hf.data.video import torchcodec_problem
from conftest import grey_frames, write_audio_only, write_test_video


av = pytest.importorskip("av")
pytest.importorskip("datasets")

GOOD = ("good_0", "good_1", "good_2")
BAD = ("corrupt", "truncated", "empty", "audio_only")
# Frames kept by a container that dropped some: nominal 25 fps, 10 frames over 1.6 s.
SPARSE_TIMES = (0.0, 0.04, 0.2, 0.36, 0.4, 0.8, 0.84, 1.2, 1.44, 1.6)

BACKENDS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.skipif(
    torchcodec_problem() is not None, reason=f"torchcodec cannot decode here: {torchcodec_problem()}"))]


@pytest.fixture(scope="module")
def faulty_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faulty")
    for index, name in enumerate(GOOD):
        write_test_video(folder / f"{name}.mp4", grey_frames(20, 32, 48, 50 * index, 5), gop_size=5)
    write_test_video(folder / "sparse.mp4", grey_frames(len(SPARSE_TIMES), 32, 48, 10, 20), times=SPARSE_TIMES)
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    whole = (folder / "good_0.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # the index (moov) at the end is lost
    (folder / "empty.mp4").write_bytes(b"")
    write_audio_only(folder / "audio_only.mp4")
    return folder


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_files_are_skipped_with_counted_warnings_and_good_ones_all_used(faulty_folder, backend, caplog):
    clip_dataset = VideoClipDataset(faulty_folder, num_frames=4, num_clips_per_video=2, seed=0, backend=backend)
    with caplog.at_level(logging.WARNING, logger="deltatok_hf.data.datasets"):
        clips = list(clip_dataset)
    assert sorted({clip["video_id"] for clip in clips}) == sorted(GOOD + ("sparse",))
    assert len(clips) == 2 * (len(GOOD) + 1)
    assert clip_dataset.stats == {"videos": 4, "clips": 8, "skipped_unreadable": len(BAD), "skipped_too_short": 0}
    assert clip_dataset.num_skipped == len(BAD)
    for name in BAD:
        assert f"Skipping video {name}: unreadable" in caplog.text


def test_sparse_video_clips_use_its_real_frame_times(faulty_folder):
    assert read_timestamps(faulty_folder / "sparse.mp4").tolist() == pytest.approx(SPARSE_TIMES)
    clips = list(VideoClipDataset([faulty_folder / "sparse.mp4"], num_frames=4, num_clips_per_video=10, seed=0))
    real = torch.tensor(SPARSE_TIMES, dtype=torch.float64)
    for clip in clips:
        # Some start frame of the video plus the clip's timestamps lands on real frames only.
        offsets = clip["timestamps"].double()
        assert any(
            torch.all((real[None, :] - (start + offsets)[:, None]).abs().min(dim=1).values < 1e-4) for start in real
        ), clip["timestamps"]


def test_a_dataset_of_only_bad_files_fails_with_one_clear_error(faulty_folder):
    bad_paths = [faulty_folder / f"{name}.mp4" for name in BAD]
    with pytest.raises(NoUsableVideosError, match=r"None of the 4 videos .*\(4 unreadable, 0 too short\)"):
        list(VideoClipDataset(bad_paths, num_frames=4, seed=0))
    # Through a DataLoader in the main process, the same error stops the epoch instead of an empty loop.
    loader = torch.utils.data.DataLoader(VideoClipDataset(bad_paths, num_frames=4, seed=0), batch_size=2)
    with pytest.raises(NoUsableVideosError, match="corrupt"):
        list(loader)


def test_a_clip_longer_than_the_video_raises_a_named_error_or_skips_it(faulty_folder):
    timestamps = read_timestamps(faulty_folder / "good_1.mp4")  # 20 frames, 0.76 s
    with pytest.raises(VideoTooShortError, match="needs 1.400 s"):
        ClipSampler(num_frames=8, min_gap=0.2, max_gap=0.3)(timestamps)
    with pytest.raises(VideoTooShortError, match="num_frames=30"):
        ClipSampler(num_frames=30)(timestamps)
    # The dataset skips such videos and counts them; with none left it says so.
    clip_dataset = VideoClipDataset([faulty_folder / "good_1.mp4", faulty_folder / "sparse.mp4"], sampler=ClipSampler(6, min_gap=0.2, max_gap=0.3), seed=0)
    clips = list(clip_dataset)
    assert [clip["video_id"] for clip in clips] == ["sparse"]  # 1.6 s holds 6 frames 0.2 s apart; 0.76 s does not
    assert clip_dataset.stats["skipped_too_short"] == 1
    with pytest.raises(NoUsableVideosError, match="1 too short"):
        list(VideoClipDataset([faulty_folder / "good_1.mp4"], sampler=ClipSampler(8, min_gap=0.2, max_gap=0.3), seed=0))


def test_the_training_run_summary_reports_the_skipped_videos(faulty_folder, tmp_path):
    import json

    from deltatok_hf.cli import main

    output_dir = tmp_path / "trained"
    code = main([
        "train-deltatok", "--train_data", str(faulty_folder), "--model_config", "tiny", "--frame_size", "32",
        "--train_batch_size", "2", "--max_train_steps", "2", "--output_dir", str(output_dir),
    ])  # fmt: skip
    assert code == 0
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["skipped_videos"]["skipped_unreadable"] == len(BAD)
    assert summary["skipped_videos"]["videos"] >= len(GOOD)
