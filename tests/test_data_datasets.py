"""Video datasets: loading tables of videos and sampling clips, with skipping and sharding."""

import logging

import numpy as np
import pytest
import torch

from deltatok_hf.data import (
    RandomResizedCropVideo,
    VideoClipDataset,
    collate_clips,
    load_video_dataset,
)
from conftest import grey_frames, write_test_video


av = pytest.importorskip("av")
datasets = pytest.importorskip("datasets")

NUM_GOOD_VIDEOS = 4


def write_video(path, num_frames=20, fps=25, width=48, height=32, level=100):
    return write_test_video(path, grey_frames(num_frames, height, width, level, 7), fps=fps, gop_size=5)


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """Four good videos (one in a subfolder), one corrupt file and one 3-frame video."""
    folder = tmp_path_factory.mktemp("videos")
    (folder / "nested").mkdir()
    for index in range(NUM_GOOD_VIDEOS - 1):
        write_video(folder / f"good_{index}.mp4", level=40 * index)
    write_video(folder / "nested" / "good_3.mp4", level=200)
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    write_video(folder / "short.mp4", num_frames=3)
    (folder / "notes.txt").write_text("not a video")
    return folder


def good_ids():
    return {"good_0", "good_1", "good_2", "nested/good_3"}


def test_folder_loads_as_a_table_of_paths(video_folder):
    dataset = load_video_dataset(video_folder)
    assert isinstance(dataset, datasets.Dataset)
    assert len(dataset) == NUM_GOOD_VIDEOS + 2  # the .txt file is not a video
    assert set(dataset["video_id"]) == good_ids() | {"corrupt", "short"}


def test_clips_from_folder_skip_corrupt_and_short_videos_with_a_warning(video_folder, caplog):
    clip_dataset = VideoClipDataset(video_folder, num_frames=4, num_clips_per_video=2, seed=0)
    with caplog.at_level(logging.WARNING, logger="deltatok_hf.data.datasets"):
        clips = list(clip_dataset)
    assert len(clips) == 2 * NUM_GOOD_VIDEOS
    assert {clip["video_id"] for clip in clips} == good_ids()
    assert clip_dataset.num_skipped == 2
    assert clip_dataset.stats["skipped_unreadable"] == 1 and clip_dataset.stats["skipped_too_short"] == 1
    assert "corrupt" in caplog.text and "short" in caplog.text
    for clip in clips:
        assert clip["frames"].shape == (4, 3, 32, 48) and clip["frames"].dtype == torch.uint8
        assert clip["timestamps"].dtype == torch.float32 and clip["timestamps"][0] == 0
        assert torch.all(torch.diff(clip["timestamps"]) > 0)


def test_clip_frames_are_the_frames_at_the_clip_timestamps(tmp_path):
    from deltatok_hf.data import decode_video

    path = write_video(tmp_path / "ramp.mp4", num_frames=30, level=0)
    full = decode_video(path).frames.permute(0, 3, 1, 2)  # (30, 3, height, width)
    clips = list(VideoClipDataset([path], num_frames=5, num_clips_per_video=3, seed=1))
    assert len(clips) == 3
    for clip in clips:
        offsets = torch.round(clip["timestamps"] * 25).long()  # frame offsets from the first frame
        matching_starts = [
            start
            for start in range(30 - int(offsets[-1]))
            if torch.equal(clip["frames"], full[start + offsets])
        ]
        assert matching_starts, "the clip's frames are not the video's frames at its timestamps"


def test_clips_are_deterministic_for_a_seed_and_change_with_the_epoch(video_folder):
    transform = RandomResizedCropVideo(16)

    def run(seed, epoch=0):
        dataset = VideoClipDataset(video_folder, num_frames=4, transform=transform, seed=seed)
        dataset.set_epoch(epoch)
        return [(clip["video_id"], clip["timestamps"], clip["frames"]) for clip in dataset]

    first, again, other_epoch = run(0), run(0), run(0, epoch=1)
    assert all(a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) for a, b in zip(first, again))
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(first, other_epoch))


def test_clips_from_a_list_of_paths_use_the_transform(video_folder):
    paths = [video_folder / "good_0.mp4", str(video_folder / "good_1.mp4")]
    clip_dataset = VideoClipDataset(paths, num_frames=3, transform=RandomResizedCropVideo(24), seed=0)
    clips = list(clip_dataset)
    assert [clip["video_id"] for clip in clips] == ["good_0", "good_1"]
    assert all(clip["frames"].shape == (3, 3, 24, 24) for clip in clips)


def test_clips_from_a_dataset_of_bytes(video_folder):
    names = ["good_0", "good_1", "corrupt"]
    table = datasets.Dataset.from_dict({"mp4": [(video_folder / f"{name}.mp4").read_bytes() for name in names]})
    clip_dataset = VideoClipDataset(table, num_frames=4, seed=0)
    assert clip_dataset.video_column == "mp4"
    clips = list(clip_dataset)
    assert [clip["video_id"] for clip in clips] == ["row-0", "row-1"]
    assert clip_dataset.num_skipped == 1


def test_video_feature_without_decoding_and_saved_to_disk(video_folder, tmp_path):
    paths = [str(video_folder / f"good_{index}.mp4") for index in range(3)]
    table = datasets.Dataset.from_dict({"clip": paths, "video_id": ["a", "b", "c"]})
    table = table.cast_column("clip", datasets.Video(decode=False))
    table.save_to_disk(str(tmp_path / "saved"))
    loaded = load_video_dataset(tmp_path / "saved")
    assert isinstance(loaded.features["clip"], datasets.Video) and not loaded.features["clip"].decode
    clips = list(VideoClipDataset(loaded, num_frames=4, seed=0))
    assert [clip["video_id"] for clip in clips] == ["a", "b", "c"]
    # A DatasetDict saved to disk: the split is picked.
    datasets.DatasetDict({"train": table, "validation": table.select([0])}).save_to_disk(str(tmp_path / "dict"))
    assert len(load_video_dataset(tmp_path / "dict", split="validation")) == 1
    with pytest.raises(ValueError, match="test"):
        load_video_dataset(tmp_path / "dict", split="test")


def test_streaming_split_by_node_gives_disjoint_shards_covering_everything(video_folder):
    from datasets.distributed import split_dataset_by_node

    streamed = load_video_dataset(video_folder, streaming=True, num_shards=6)
    assert isinstance(streamed, datasets.IterableDataset)
    seen = []
    for rank in range(2):
        shard = split_dataset_by_node(streamed, rank=rank, world_size=2)
        seen.append({clip["video_id"] for clip in VideoClipDataset(shard, num_frames=4, seed=0)})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == good_ids()


def test_dataloader_workers_split_the_videos(video_folder):
    clip_dataset = VideoClipDataset(video_folder, num_frames=4, transform=RandomResizedCropVideo(16), seed=0)
    loader = torch.utils.data.DataLoader(clip_dataset, batch_size=2, num_workers=2, collate_fn=collate_clips)
    video_ids = [video_id for batch in loader for video_id in batch["video_id"]]
    assert sorted(video_ids) == sorted(good_ids())


def test_collate_clips_stacks_frames_and_timestamps(video_folder):
    clips = list(VideoClipDataset(video_folder, num_frames=4, transform=RandomResizedCropVideo((16, 24)), seed=0))
    batch = collate_clips(clips)
    assert batch["frames"].shape == (NUM_GOOD_VIDEOS, 4, 3, 16, 24) and batch["frames"].dtype == torch.uint8
    assert batch["timestamps"].shape == (NUM_GOOD_VIDEOS, 4) and batch["timestamps"].dtype == torch.float32
    assert len(batch["video_id"]) == NUM_GOOD_VIDEOS
    with pytest.raises(ValueError, match="same frames shape"):
        collate_clips([clips[0], {**clips[1], "frames": clips[1]["frames"][:, :, :8]}])


def test_bad_sources_raise(tmp_path):
    with pytest.raises(ValueError, match="No video files"):
        load_video_dataset(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        load_video_dataset([])
    with pytest.raises(TypeError, match="int"):
        load_video_dataset(3)
    table = datasets.Dataset.from_dict({"something": ["x"]})
    with pytest.raises(ValueError, match="video column"):
        VideoClipDataset(table)
    with pytest.raises(ValueError, match="nope"):
        VideoClipDataset(table, video_column="nope")


def test_a_decoding_video_column_is_usable_as_input(video_folder):
    from deltatok_hf.data import video_source_from_entry
    from deltatok_hf.data.video import torchcodec_problem

    if torchcodec_problem() is not None:
        pytest.skip(f"datasets' Video feature decodes with torchcodec, which cannot run here: {torchcodec_problem()}")
    paths = [str(video_folder / f"good_{index}.mp4") for index in range(2)]
    table = datasets.Dataset.from_dict({"clip": paths}).cast_column("clip", datasets.Video())
    decoder = table[0]["clip"]  # what a user iterating this table gets: a torchcodec VideoDecoder
    assert video_source_from_entry(decoder) == (paths[0], "good_0")
    clips = list(VideoClipDataset(table, num_frames=4, seed=0))
    assert [clip["video_id"] for clip in clips] == ["good_0", "good_1"]
    # Rows that already hold decoders (e.g. a stream mapped without features) are read from their files too.
    rows = [{"clip": table[index]["clip"], "video_id": f"decoded-{index}"} for index in range(2)]
    streamed = datasets.IterableDataset.from_generator(lambda: iter(rows))
    assert [clip["video_id"] for clip in VideoClipDataset(streamed, video_column="clip", num_frames=4, seed=0)] == [
        "decoded-0",
        "decoded-1",
    ]


def test_counts_of_dataloader_workers_reach_the_main_process(video_folder):
    clip_dataset = VideoClipDataset(video_folder, num_frames=4, transform=RandomResizedCropVideo(16), seed=0)
    loader = torch.utils.data.DataLoader(clip_dataset, batch_size=1, num_workers=2, collate_fn=collate_clips)
    assert len(list(loader)) == NUM_GOOD_VIDEOS
    # The corrupt and the short video were skipped inside the workers; the main process's dataset counts them.
    assert clip_dataset.stats == {"videos": NUM_GOOD_VIDEOS, "clips": NUM_GOOD_VIDEOS, "skipped_unreadable": 1, "skipped_too_short": 1}
    assert clip_dataset.num_skipped == 2
    list(loader)  # a second epoch adds up
    assert clip_dataset.stats["clips"] == 2 * NUM_GOOD_VIDEOS
