"""LeRobot v3 datasets: metadata, episodes in shared video files, clips that never cross an episode boundary."""

import json

import pytest
import torch

from deltatok_hf.data import (
    LeRobotClipDataset,
    LeRobotLayoutError,
    collate_clips,
    is_lerobot_dataset,
    load_lerobot_episodes,
    load_lerobot_metadata,
    read_frames_at,
    read_timestamps,
    window_frame_times,
)
from conftest import episode_level, offline_hub_cache, write_lerobot_dataset


pytest.importorskip("av")
datasets = pytest.importorskip("datasets")

EPISODE_LENGTHS = (12, 9, 15, 7, 11)  # episodes 0-2 share file-000, 3-4 share file-001
FPS = 10
CAMERAS = ("observation.images.front", "observation.images.wrist")


@pytest.fixture(scope="module")
def lerobot_root(tmp_path_factory):
    return write_lerobot_dataset(tmp_path_factory.mktemp("lerobot"), EPISODE_LENGTHS, fps=FPS, camera_keys=CAMERAS)


def episode_of(frames):
    """The episode each frame `(..., 3, H, W)` shows, from its grey level (see `conftest.episode_level`)."""
    levels = frames.float().mean(dim=(-3, -2, -1))
    return torch.round((levels - episode_level(0)) / (episode_level(1) - episode_level(0))).long()


def test_metadata_lists_the_cameras_and_frame_rate(lerobot_root):
    metadata = load_lerobot_metadata(lerobot_root)
    assert metadata.codebase_version == "v3.0" and metadata.fps == FPS
    assert metadata.camera_keys == list(CAMERAS)
    assert is_lerobot_dataset(lerobot_root) and is_lerobot_dataset(str(lerobot_root))
    assert not is_lerobot_dataset(lerobot_root / "videos") and not is_lerobot_dataset(3)


def test_episode_table_points_into_shared_files(lerobot_root):
    table = load_lerobot_episodes(lerobot_root, camera_key=CAMERAS[1])
    assert table["episode_index"] == list(range(len(EPISODE_LENGTHS)))
    assert table["video_id"][3] == "episode_000003"
    assert table["video"][0] == table["video"][2] != table["video"][3]
    assert table["video"][0].endswith("videos/observation.images.wrist/chunk-000/file-000.mp4")
    assert table["start_time"][1] == pytest.approx(EPISODE_LENGTHS[0] / FPS)
    assert table["end_time"][1] == pytest.approx(sum(EPISODE_LENGTHS[:2]) / FPS)
    assert table["start_time"][3] == 0.0  # first episode of the second file
    assert load_lerobot_episodes(lerobot_root, camera_key=CAMERAS[0], episodes=[4, 1])["episode_index"] == [1, 4]


def test_episode_spans_hold_exactly_that_episodes_frames(lerobot_root):
    table = load_lerobot_episodes(lerobot_root, camera_key=CAMERAS[0])
    for row in table:
        times = torch.arange(EPISODE_LENGTHS[row["episode_index"]], dtype=torch.float64) / FPS + row["start_time"]
        frames = read_frames_at(row["video"], times).frames.permute(0, 3, 1, 2)
        assert torch.all(episode_of(frames) == row["episode_index"])


def test_clips_never_cross_an_episode_boundary(lerobot_root):
    # Wide gaps (up to 0.5 s = 5 frames) make clips span most of an episode: any leak would show.
    clips = LeRobotClipDataset(
        lerobot_root, camera_key=CAMERAS[0], num_frames=6, num_clips_per_video=20, min_gap=0.1, max_gap=0.5, seed=0
    )
    items = list(clips)
    by_episode = {}
    for item in items:
        episode = int(item["video_id"].removeprefix("episode_"))
        assert item["frames"].shape == (6, 3, 32, 48) and item["frames"].dtype == torch.uint8
        assert item["timestamps"].dtype == torch.float32 and item["timestamps"][0] == 0
        assert torch.all(torch.diff(item["timestamps"]) > 0)
        assert item["timestamps"][-1] <= (EPISODE_LENGTHS[episode] - 1) / FPS + 1e-6
        assert torch.all(episode_of(item["frames"]) == episode), item["video_id"]
        by_episode.setdefault(episode, []).append(item)
    assert sorted(by_episode) == list(range(len(EPISODE_LENGTHS)))


def test_an_episodes_window_keeps_all_of_its_frames_and_no_other(lerobot_root):
    table = load_lerobot_episodes(lerobot_root, camera_key=CAMERAS[0])
    frame_times = read_timestamps(table["video"][1])  # file-000: episodes 0, 1, 2
    kept = window_frame_times(frame_times, table["start_time"][1], table["end_time"][1])
    expected = (EPISODE_LENGTHS[0] + torch.arange(EPISODE_LENGTHS[1], dtype=torch.float64)) / FPS
    torch.testing.assert_close(kept, expected)
    # Bounds off by float rounding (either way) change nothing.
    nudged = window_frame_times(frame_times, table["start_time"][1] + 1e-9, table["end_time"][1] - 1e-9)
    assert torch.equal(nudged, kept)
    assert torch.equal(window_frame_times(frame_times, None, None), frame_times)


def test_episodes_too_short_for_a_clip_are_skipped_and_counted(lerobot_root):
    clips = LeRobotClipDataset(lerobot_root, camera_key=CAMERAS[0], num_frames=10, seed=0)
    ids = [item["video_id"] for item in clips]
    # Episodes of 9 and 7 frames cannot hold 10 frames.
    assert ids == ["episode_000000", "episode_000002", "episode_000004"]
    assert clips.stats["skipped_too_short"] == 2


def test_clips_batch_through_a_dataloader_with_workers(lerobot_root):
    clips = LeRobotClipDataset(lerobot_root, camera_key=CAMERAS[1], num_frames=4, seed=0)
    loader = torch.utils.data.DataLoader(clips, batch_size=5, num_workers=2, collate_fn=collate_clips)
    batches = list(loader)
    ids = sorted(video_id for batch in batches for video_id in batch["video_id"])
    assert ids == [f"episode_{index:06d}" for index in range(len(EPISODE_LENGTHS))]


def test_evaluation_clips_are_fixed_spacing_and_reproducible(lerobot_root):
    def evaluation_clips():
        clips = LeRobotClipDataset(lerobot_root, camera_key=CAMERAS[0], num_frames=4, min_gap=0.2, max_gap=0.2, seed=0)
        clips.set_epoch(3)  # the epoch changes training clips; evaluation fixes one
        return list(clips)

    first, again = evaluation_clips(), evaluation_clips()
    assert [clip["video_id"] for clip in first] == [f"episode_{index:06d}" for index in range(len(EPISODE_LENGTHS))]
    for clip, repeat in zip(first, again):
        torch.testing.assert_close(clip["timestamps"], torch.tensor([0.0, 0.2, 0.4, 0.6]))
        assert torch.equal(clip["frames"], repeat["frames"])


def test_split_and_episode_selection(lerobot_root, tmp_path):
    assert load_lerobot_episodes(lerobot_root, CAMERAS[0], split="train")["episode_index"] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="validation"):
        load_lerobot_episodes(lerobot_root, CAMERAS[0], split="validation")
    with pytest.raises(ValueError, match=r"\[9\]"):
        load_lerobot_episodes(lerobot_root, CAMERAS[0], episodes=[0, 9])


def test_layout_errors_name_the_problem(lerobot_root, tmp_path):
    with pytest.raises(ValueError, match="several cameras"):
        load_lerobot_episodes(lerobot_root)
    with pytest.raises(ValueError, match="observation.images.side"):
        load_lerobot_episodes(lerobot_root, camera_key="observation.images.side")
    with pytest.raises(LeRobotLayoutError, match="not found"):
        load_lerobot_metadata(tmp_path / "missing")
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    (old / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 10, "features": {}}))
    assert is_lerobot_dataset(old)
    with pytest.raises(LeRobotLayoutError, match="v2.1"):
        load_lerobot_metadata(old)
    with pytest.raises(TypeError, match="video_column"):
        LeRobotClipDataset(lerobot_root, camera_key=CAMERAS[0], video_column="x")


def test_hub_id_reads_the_cached_snapshot(lerobot_root, tmp_path, monkeypatch):
    repo_id = offline_hub_cache(lerobot_root, tmp_path, monkeypatch, "someorg/robot-videos", repo_type="dataset")
    assert is_lerobot_dataset(repo_id)
    assert not is_lerobot_dataset("someorg/not-cached")
    clips = LeRobotClipDataset(repo_id, camera_key=CAMERAS[0], num_frames=4, seed=0)
    assert len(list(clips)) == len(EPISODE_LENGTHS)
    with pytest.raises(LeRobotLayoutError, match="someorg/not-cached"):
        load_lerobot_metadata("someorg/not-cached")


def test_lerobot_dataset_trains_deltaworld_through_the_training_command(tmp_path):
    """`deltatok-hf train-deltaworld --train_data <LeRobot folder>`: a few steps on a tiny random-weight model
    (mechanics only: the losses are finite and the model is saved; no claim about quality)."""
    from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldForForecasting
    from deltatok_hf.cli import main as cli_main
    from deltatok_hf.training import DeltaWorldTrainingArguments, build_clip_dataset

    root = write_lerobot_dataset(tmp_path / "robot", (12, 9, 15, 7), fps=FPS, camera_keys=("observation.images.top",))
    clips = build_clip_dataset(DeltaWorldTrainingArguments(train_data=str(root), num_frames=5, frame_size=32))
    assert isinstance(clips, LeRobotClipDataset)
    torch.manual_seed(0)
    DeltaTokModel(DeltaTokConfig.tiny()).save_pretrained(tmp_path / "tokenizer")
    output_dir = tmp_path / "world"
    code = cli_main([
        "train-deltaworld", "--train_data", str(root), "--num_frames", "5", "--frame_size", "32",
        "--tokenizer", str(tmp_path / "tokenizer"), "--train_batch_size", "2", "--num_samples_train", "2",
        "--max_train_steps", "3", "--checkpointing_steps", "100", "--output_dir", str(output_dir),
    ])  # fmt: skip
    assert code == 0
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["global_step"] == 3 and all(torch.isfinite(torch.tensor(list(summary["losses"].values()))))
    DeltaWorldForForecasting.from_pretrained(output_dir)


def test_a_hub_dataset_fetches_its_metadata_then_only_the_chosen_cameras_videos(lerobot_root, monkeypatch):
    import huggingface_hub

    requests = []

    def fake_snapshot_download(repo_id, repo_type=None, revision=None, allow_patterns=None):
        requests.append((repo_id, repo_type, allow_patterns))
        return str(lerobot_root)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    table = load_lerobot_episodes("someorg/two-cameras", camera_key=CAMERAS[1])
    assert requests == [
        ("someorg/two-cameras", "dataset", ["meta/**"]),
        ("someorg/two-cameras", "dataset", [f"videos/{CAMERAS[1]}/**"]),
    ]
    assert len(table) == len(EPISODE_LENGTHS)
