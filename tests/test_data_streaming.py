"""Sharded streaming: parquet and WebDataset shards split whole across DataLoader workers and across 2 processes."""

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch

from deltatok_hf.data import VideoClipDataset, collate_clips, load_video_dataset
from conftest import REPO_ROOT, grey_frames, write_test_video


pytest.importorskip("av")
datasets = pytest.importorskip("datasets")

NUM_SHARDS, VIDEOS_PER_SHARD = 4, 2


def shard_video_ids(shard):
    return [f"shard{shard}_video{index}" for index in range(VIDEOS_PER_SHARD)]


@pytest.fixture(scope="module")
def encoded_videos(tmp_path_factory):
    """`{video_id: mp4 bytes}` for every video of every shard (12 frames of 32x48 each)."""
    folder = tmp_path_factory.mktemp("encoded")
    videos = {}
    for shard in range(NUM_SHARDS):
        for index, video_id in enumerate(shard_video_ids(shard)):
            path = write_test_video(folder / f"{video_id}.mp4", grey_frames(12, 32, 48, 30 * shard + 5 * index, 3))
            videos[video_id] = path.read_bytes()
    return videos


@pytest.fixture(scope="module")
def parquet_folder(tmp_path_factory, encoded_videos):
    """`NUM_SHARDS` parquet files, each a table of `VIDEOS_PER_SHARD` encoded videos with their ids."""
    folder = tmp_path_factory.mktemp("parquet")
    for shard in range(NUM_SHARDS):
        ids = shard_video_ids(shard)
        table = datasets.Dataset.from_dict({"video_id": ids, "video": [encoded_videos[video_id] for video_id in ids]})
        table.to_parquet(str(folder / f"train-{shard:05d}.parquet"))
    return folder


@pytest.fixture(scope="module")
def webdataset_folder(tmp_path_factory, encoded_videos):
    """`NUM_SHARDS` WebDataset tars: members `<video_id>.mp4` (and a `.json` with a label)."""
    folder = tmp_path_factory.mktemp("webdataset")
    for shard in range(NUM_SHARDS):
        with tarfile.open(folder / f"shard-{shard:05d}.tar", "w") as archive:
            for video_id in shard_video_ids(shard):
                for suffix, payload in (("mp4", encoded_videos[video_id]), ("json", json.dumps({"shard": shard}).encode())):
                    member = tarfile.TarInfo(f"{video_id}.{suffix}")
                    member.size = len(payload)
                    archive.addfile(member, io.BytesIO(payload))
    return folder


def all_video_ids():
    return {video_id for shard in range(NUM_SHARDS) for video_id in shard_video_ids(shard)}


def test_parquet_folder_streams_one_shard_per_file(parquet_folder):
    streamed = load_video_dataset(parquet_folder, streaming=True)
    assert isinstance(streamed, datasets.IterableDataset) and streamed.n_shards == NUM_SHARDS
    clips = list(VideoClipDataset(streamed, num_frames=4, seed=0))
    assert {clip["video_id"] for clip in clips} == all_video_ids()


def test_webdataset_tars_of_videos_give_clips(webdataset_folder):
    table = load_video_dataset(webdataset_folder)
    assert isinstance(table.features["mp4"], datasets.Video) and not table.features["mp4"].decode
    clip_dataset = VideoClipDataset(table, num_frames=4, id_column="__key__", seed=0)
    assert clip_dataset.video_column == "mp4"
    clips = list(clip_dataset)
    assert {clip["video_id"] for clip in clips} == all_video_ids()
    assert all(clip["frames"].shape == (4, 3, 32, 48) for clip in clips)
    streamed = load_video_dataset(webdataset_folder, streaming=True)
    assert streamed.n_shards == NUM_SHARDS
    # Without `id_column`, the sample keys name the clips.
    assert {clip["video_id"] for clip in VideoClipDataset(streamed, num_frames=4, seed=0)} == all_video_ids()


class WorkerTaggedClips(VideoClipDataset):
    """Clips that say which DataLoader worker decoded them."""

    def clips_from_example(self, example, video_id, base_seed):
        worker = torch.utils.data.get_worker_info().id
        return [{**clip, "video_id": f"{clip['video_id']}@{worker}"} for clip in super().clips_from_example(example, video_id, base_seed)]


@pytest.mark.parametrize("layout", ["parquet", "webdataset"])
def test_dataloader_workers_each_get_whole_shards(layout, parquet_folder, webdataset_folder):
    folder = parquet_folder if layout == "parquet" else webdataset_folder
    id_column = "video_id" if layout == "parquet" else "__key__"
    clip_dataset = WorkerTaggedClips(load_video_dataset(folder, streaming=True), num_frames=4, id_column=id_column, seed=0)
    loader = torch.utils.data.DataLoader(clip_dataset, batch_size=1, num_workers=2, collate_fn=collate_clips)
    worker_of = dict(tagged.split("@") for batch in loader for tagged in batch["video_id"])
    assert set(worker_of) == all_video_ids()
    workers_of_shard = [{worker_of[video_id] for video_id in shard_video_ids(shard)} for shard in range(NUM_SHARDS)]
    assert all(len(workers) == 1 for workers in workers_of_shard), workers_of_shard  # a shard stays with one worker
    assert sorted(workers.pop() for workers in workers_of_shard) == ["0", "0", "1", "1"]  # 2 whole shards each


RANK_SCRIPT = """
import json, sys
from accelerate import Accelerator
from datasets.distributed import split_dataset_by_node
from deltatok_hf.data import VideoClipDataset, load_video_dataset

accelerator = Accelerator()
streamed = load_video_dataset(sys.argv[1], streaming=True)
shard = split_dataset_by_node(streamed, rank=accelerator.process_index, world_size=accelerator.num_processes)
clips = VideoClipDataset(shard, num_frames=4, seed=0)
ids = [clip["video_id"] for clip in clips]
with open(f"{sys.argv[2]}/rank{accelerator.process_index}.json", "w") as file:
    json.dump({"rank": accelerator.process_index, "world_size": accelerator.num_processes, "n_shards": shard.n_shards,
               "video_ids": ids}, file)
"""


@pytest.mark.slow
def test_two_processes_under_accelerate_launch_see_disjoint_shards(parquet_folder, tmp_path):
    script = tmp_path / "rank_clips.py"
    script.write_text(RANK_SCRIPT)
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
               str(script), str(parquet_folder), str(tmp_path)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [rank["world_size"] for rank in ranks] == [2, 2]
    assert [rank["n_shards"] for rank in ranks] == [NUM_SHARDS // 2] * 2  # whole files per process
    seen = [set(rank["video_ids"]) for rank in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == all_video_ids()
    for rank_ids in seen:  # each process holds whole shards
        assert all(set(shard_video_ids(shard)) <= rank_ids or not set(shard_video_ids(shard)) & rank_ids for shard in range(NUM_SHARDS))


def test_webdataset_folder_is_accepted_as_train_data(webdataset_folder):
    from deltatok_hf.training import DeltaWorldTrainingArguments, build_clip_dataset

    clips = build_clip_dataset(DeltaWorldTrainingArguments(train_data=str(webdataset_folder), num_frames=4, frame_size=32))
    items = list(clips)
    assert {item["video_id"] for item in items} == all_video_ids()
    assert all(item["frames"].shape == (4, 3, 32, 32) for item in items)
