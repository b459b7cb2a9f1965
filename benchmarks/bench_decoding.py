"""Decoding throughput (clips/s) for the two ways training and evaluation read videos.

- **train**: the training sampler's access pattern, `VideoClipDataset` itself: per video, the frame times
  (`read_timestamps`), a `ClipSampler` clip of 8 frames with random gaps in [1/25, 1/3] s, then `read_frames_at`.
- **eval**: the evaluation / pipeline pattern: 4 context frames 0.2 s apart ending at a random time.

Compared, interleaved in one process (every configuration once per round, the order rotated each round): PyAV vs
torchcodec, DataLoader with 1 vs 2 worker processes, H.264 (libx264) vs AV1 (libsvtav1, when PyAV has the encoder).
Every figure is a ratio against PyAV / 1 worker / H.264 of the same pattern, measured in the same run. CPU
utilisation counts the workers too (`resource.getrusage` of this process and its reaped children, over wall time):
2.0 means both cores of this machine were busy with decoding. Before timing, the backends' clips are checked equal.

    cd benchmarks && ../.venv/bin/python bench_decoding.py --num-videos 8 --seconds 8 --clips-per-video 16 --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from _common import machine_info, write_json
from deltatok_hf.data import ClipSampler, VideoClipDataset, read_frames_at, read_timestamps
from deltatok_hf.data.video import torchcodec_problem


CODECS = {"h264": "libx264", "av1": "libsvtav1"}
EVAL_CONTEXT_FRAMES, EVAL_CONTEXT_GAP = 4, 0.2


def moving_frames(num_frames: int, size: int, seed: int):
    """Frames with structure an encoder must work on: a drifting gradient, moving discs and a little noise."""
    generator = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    centres = generator.uniform(0, size, (5, 2))
    velocities = generator.uniform(-2, 2, (5, 2))
    colours = generator.uniform(0, 255, (5, 3))
    for index in range(num_frames):
        image = np.stack([(rows + index) % 256, (columns * 0.5 + 2 * index) % 256, np.full_like(rows, 96)], axis=-1)
        for centre, velocity, colour in zip(centres, velocities, colours):
            y, x = (centre + velocity * index) % size
            image[(rows - y) ** 2 + (columns - x) ** 2 < (size / 10) ** 2] = colour
        image += generator.normal(0, 4, image.shape)
        yield np.clip(image, 0, 255).astype(np.uint8)


def write_video(path: Path, codec: str, num_frames: int, size: int, fps: int, seed: int) -> Path:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = fps  # a keyframe every second
        if codec == "libsvtav1":
            stream.codec_context.options = {"preset": "10"}  # fast encoding; decoding cost is what is measured
        for index, image in enumerate(moving_frames(num_frames, size, seed)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def available_codecs() -> dict[str, str]:
    from av.codec import Codec

    found = {}
    for name, encoder in CODECS.items():
        try:
            Codec(encoder, "w")
            found[name] = encoder
        except Exception:  # noqa: BLE001 - an encoder missing from this PyAV build
            print(f"no {encoder} encoder in this PyAV build: {name} skipped")
    return found


class EvaluationContexts(torch.utils.data.IterableDataset):
    """The evaluation pattern: per video, `contexts_per_video` windows of 4 frames 0.2 s apart at random end times."""

    def __init__(self, paths: list[Path], contexts_per_video: int, backend: str, seed: int):
        super().__init__()
        self.paths, self.contexts_per_video, self.backend, self.seed = paths, contexts_per_video, backend, seed

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        paths = self.paths if worker is None else self.paths[worker.id :: worker.num_workers]
        offsets = -EVAL_CONTEXT_GAP * torch.arange(EVAL_CONTEXT_FRAMES - 1, -1, -1, dtype=torch.float64)  # (4,)
        for path in paths:
            frame_times = read_timestamps(path, backend=self.backend)
            generator = torch.Generator().manual_seed(self.seed + hash(path.name) % 1000)
            earliest = float(frame_times[0]) - float(offsets[0])
            ends = earliest + torch.rand(self.contexts_per_video, generator=generator, dtype=torch.float64) * (
                float(frame_times[-1]) - earliest
            )
            for end in ends:
                yield read_frames_at(path, end + offsets, backend=self.backend).frames  # (4, H, W, 3)


def make_dataset(pattern: str, paths: list[Path], backend: str, clips_per_video: int, seed: int):
    if pattern == "train":
        sampler = ClipSampler(8, min_gap=1 / 25, max_gap=1 / 3)
        return VideoClipDataset(paths, sampler=sampler, num_clips_per_video=clips_per_video, seed=seed, backend=backend)
    return EvaluationContexts(paths, clips_per_video, backend, seed)


def decoder_versions(backends: list[str]) -> dict:
    import av

    versions = {"av": av.__version__, "pyav_ffmpeg": getattr(av, "ffmpeg_version_info", "unknown")}
    if "torchcodec" in backends:
        import torchcodec
        from torchcodec._core import get_ffmpeg_library_versions

        versions["torchcodec"] = torchcodec.__version__
        versions["torchcodec_ffmpeg"] = str(get_ffmpeg_library_versions().get("ffmpeg_version", "unknown"))
    return versions


def count_clips(dataset, num_workers: int) -> int:
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers)
    return sum(1 for _ in loader)


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def check_backends_agree(paths: list[Path], seed: int) -> dict:
    """The two backends' training clips for one seed: max |difference| of frames, equal timestamps."""
    clips = {
        backend: list(make_dataset("train", paths, backend, 2, seed)) for backend in ("pyav", "torchcodec")
    }
    frames = [(a["frames"].int() - b["frames"].int()).abs().max().item() for a, b in zip(*clips.values())]
    times = all(torch.equal(a["timestamps"], b["timestamps"]) for a, b in zip(*clips.values()))
    return {"num_clips": len(frames), "max_abs_frame_difference": max(frames), "equal_timestamps": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0, help="Length of every test video.")
    parser.add_argument("--size", type=int, default=256, help="Frame side in pixels.")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--clips-per-video", type=int, default=16, help="Clips (or contexts) per video per pass.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed rounds (after one warm-up round).")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output", default="decoding")
    args = parser.parse_args()

    backends = ["pyav"] + (["torchcodec"] if torchcodec_problem() is None else [])
    if len(backends) == 1:
        print(f"torchcodec skipped: {torchcodec_problem()}")
    codecs = available_codecs()
    record = {"command": vars(args), "machine": machine_info(), "backends": backends, "codecs": codecs, "rows": {}}
    record["versions"] = decoder_versions(backends)
    with tempfile.TemporaryDirectory() as folder:
        videos = {}
        for name, encoder in codecs.items():
            start = time.perf_counter()
            videos[name] = [
                write_video(Path(folder) / f"{name}_{index}.mp4", encoder, int(args.seconds * args.fps), args.size, args.fps, index)
                for index in range(args.num_videos)
            ]
            size_kb = sum(path.stat().st_size for path in videos[name]) / 1024 / args.num_videos
            record.setdefault("videos", {})[name] = {"mean_kilobytes": round(size_kb, 1), "encode_s": round(time.perf_counter() - start, 1)}
            print(f"{name}: {args.num_videos} videos of {args.seconds} s, {args.size}x{args.size}, {size_kb:.0f} KiB each")
        if "torchcodec" in backends:
            record["agreement"] = {name: check_backends_agree(paths[:2], seed=0) for name, paths in videos.items()}
            print("backends agree:", record["agreement"])

        configurations = [
            (pattern, codec, backend, workers)
            for pattern in ("train", "eval")
            for codec in videos
            for backend in backends
            for workers in args.workers
        ]
        walls = {configuration: [] for configuration in configurations}
        cpus = {configuration: [] for configuration in configurations}  # CPU seconds (process + workers)
        clips = {}
        for round_index in range(1 + args.repeats):
            # Rotate the order every round so that a burst of outside load does not always hit the same configuration.
            shift = round_index % len(configurations)
            for configuration in configurations[shift:] + configurations[:shift]:
                pattern, codec, backend, workers = configuration
                dataset = make_dataset(pattern, videos[codec], backend, args.clips_per_video, seed=round_index)
                wall0, cpu0 = time.perf_counter(), cpu_seconds()
                clips[configuration] = count_clips(dataset, workers)
                wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
                if round_index > 0:
                    walls[configuration].append(wall)
                    cpus[configuration].append(cpu)
            print(f"round {round_index} done ({'warm-up' if round_index == 0 else 'timed'})")

        def cpu_per_clip(configuration):
            return statistics.median(cpus[configuration]) / clips[configuration]

        for pattern in ("train", "eval"):
            reference = (pattern, next(iter(videos)), "pyav", args.workers[0])
            reference_rate = clips[reference] / statistics.median(walls[reference])
            for configuration in configurations:
                if configuration[0] != pattern:
                    continue
                rate = clips[configuration] / statistics.median(walls[configuration])
                utilisation = [cpu / wall for cpu, wall in zip(cpus[configuration], walls[configuration])]
                record["rows"]["/".join(map(str, configuration))] = {
                    "clips": clips[configuration],
                    "median_s": round(statistics.median(walls[configuration]), 3),
                    "runs_s": [round(wall, 3) for wall in walls[configuration]],
                    "clips_per_s": round(rate, 2),
                    "ratio_vs_reference": round(rate / reference_rate, 3),
                    "cpu_utilisation": round(statistics.median(utilisation), 2),
                    "cpu_ms_per_clip": round(1000 * cpu_per_clip(configuration), 2),
                    "cpu_per_clip_ratio_vs_reference": round(cpu_per_clip(configuration) / cpu_per_clip(reference), 3),
                }
    record["machine"]["load_average_after"] = machine_info()["load_average"]
    path = write_json(args.output, record)
    print(
        f"| pattern | codec | backend | workers | clips/s | clips/s ratio vs PyAV, {args.workers[0]} worker, H.264 "
        "| CPU util. | CPU ms / clip | CPU / clip ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, row in record["rows"].items():
        pattern, codec, backend, workers = key.split("/")
        print(
            f"| {pattern} | {codec} | {backend} | {workers} | {row['clips_per_s']} | {row['ratio_vs_reference']} "
            f"| {row['cpu_utilisation']} | {row['cpu_ms_per_clip']} | {row['cpu_per_clip_ratio_vs_reference']} |"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
