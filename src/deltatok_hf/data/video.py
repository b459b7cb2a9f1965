"""Video decoding: whole clips, frame-accurate reads at given times, and cheap probing.

Every function takes a *source*: a path (`str` / `os.PathLike`) or the raw bytes of an encoded
file. Timestamps are seconds measured from the start of the video stream (the frame's pts minus
the stream's start time), so the first frame of a file is at (or very near) 0 s whatever the
container's own start offset (MPEG-PS files often start at 0.5 s).

PyAV is the default backend. torchcodec is used only when asked for (`backend="torchcodec"`) or
when PyAV is missing and torchcodec is importable (`backend="auto"`).

Note: the official DeltaTok code reads videos with decord (whole-index random access). We seek
to the keyframe before the first wanted frame and decode forward instead, which gives the same
frames for the timestamps the sampler picks (tested against full decoding).
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch


logger = logging.getLogger(__name__)

VideoSource = Union[str, os.PathLike, bytes, bytearray, memoryview]

BACKENDS = ("auto", "pyav", "torchcodec")

# When the next wanted time lies this far (seconds) beyond the frame just decoded, seek again
# instead of decoding every frame in between.
SEEK_AHEAD_THRESHOLD = 2.0


class VideoDecodeError(ValueError):
    """A video could not be read: missing, corrupt, without a video stream, or without frames."""


@dataclass
class DecodedVideo:
    """
    Frames decoded from a video.

    Args:
        frames (`torch.Tensor` of shape `(num_frames, height, width, 3)`, `uint8`):
            RGB frames.
        timestamps (`torch.Tensor` of shape `(num_frames,)`, `float64`):
            Presentation time of every frame in seconds from the start of the video stream.
        fps (`float`):
            The stream's average frame rate (frames per second).
    """

    frames: torch.Tensor
    timestamps: torch.Tensor
    fps: float

    def __len__(self) -> int:
        return self.frames.shape[0]


@dataclass
class VideoInfo:
    """
    What `probe_video` learns about a video without decoding it.

    Args:
        duration (`float`): length in seconds.
        fps (`float`): average frame rate.
        num_frames (`int`): number of frames (counted from the container's packets when the
            header does not say).
        height (`int`), width (`int`): frame size in pixels.
    """

    duration: float
    fps: float
    num_frames: int
    height: int
    width: int


def demo_clip_path() -> Path:
    """Path of the bundled demo clip (256x144, 25 fps, about 3.5 s of a night-time city; CC0).

    See `deltatok_hf/assets/ATTRIBUTION.md` for its source and how it was made.
    """
    path = Path(__file__).resolve().parents[1] / "assets" / "city_clip.mp4"
    if not path.is_file():
        raise FileNotFoundError(
            f"The bundled demo clip is missing at {path}; rebuild it with "
            f"`python -m deltatok_hf.data.make_demo_clip --source cityCC0.mpg --out {path}`."
        )
    return path


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def describe_source(source: VideoSource) -> str:
    """A short human-readable name for a source, used in error and log messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes of video>"
    return str(source)


def _check_source(source: VideoSource) -> Union[str, bytes]:
    """Validate a source and return it as a path string or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VideoDecodeError("Cannot decode video: the given bytes are empty.")
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise VideoDecodeError(f"Video file not found: {path!r}.")
        if os.path.isdir(path):
            raise VideoDecodeError(f"Expected a video file but {path!r} is a directory.")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(f"Video file {path!r} is empty (0 bytes).")
        return path
    raise TypeError(
        f"A video source must be a path (str or os.PathLike) or bytes, got {type(source).__name__}."
    )


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    has_pyav = importlib.util.find_spec("av") is not None
    has_torchcodec = importlib.util.find_spec("torchcodec") is not None
    if backend == "auto":
        if has_pyav:
            return "pyav"
        if has_torchcodec:
            return "torchcodec"
        raise ImportError("Decoding video needs PyAV (`pip install av`) or torchcodec.")
    if backend == "pyav" and not has_pyav:
        raise ImportError("backend='pyav' needs PyAV: `pip install av`.")
    if backend == "torchcodec" and not has_torchcodec:
        raise ImportError("backend='torchcodec' needs torchcodec: `pip install torchcodec`.")
    return backend


# ----------------------------------------------------------------------------------------------
# PyAV helpers
# ----------------------------------------------------------------------------------------------


class _PyAVVideo:
    """An open PyAV container with its first video stream; closes on `with` exit."""

    def __init__(self, source: Union[str, bytes], name: str):
        self.source = source
        self.name = name
        self._open()

    def _open(self) -> None:
        import av

        source, name = self.source, self.name
        try:
            self.container = av.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise VideoDecodeError(f"Could not open video {name}: it is corrupt or not a video ({error}).") from error
        if not self.container.streams.video:
            self.container.close()
            raise VideoDecodeError(f"Video {name} has no video stream.")
        self.stream = self.container.streams.video[0]
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 1)
        # pts of the stream's first frame; timestamps are measured from here.
        self.start_pts = self.stream.start_time if self.stream.start_time is not None else 0

    def __enter__(self) -> "_PyAVVideo":
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    @property
    def fps(self) -> float:
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        return float(rate) if rate else 0.0

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def pts(self, seconds: float) -> int:
        return int(self.start_pts + int(np.floor(seconds / float(self.time_base))))

    def frame_seconds(self, frame) -> float:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            raise VideoDecodeError(f"Video {self.name} has frames without timestamps.")
        return self.seconds(pts)

    def frames(self):
        """Decoded frames from the current position, with FFmpeg errors turned into ours."""
        import av

        try:
            for frame in self.container.decode(self.stream):
                yield frame
        except av.FFmpegError as error:
            raise VideoDecodeError(f"Could not decode video {self.name} ({error}).") from error

    def rewind(self) -> None:
        """Go back to the first frame by reopening the file.

        Seeking to 0 is not reliable in every container: in MPEG-PS it can skip the first GOP.
        """
        self.container.close()
        self._open()

    def seek(self, seconds: float) -> None:
        """Seek to the keyframe at or before `seconds` (reopen the file for `seconds <= 0`)."""
        import av

        if seconds <= 0.0:
            self.rewind()
            return
        try:
            self.container.seek(max(self.pts(seconds), self.start_pts), stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"Could not seek in video {self.name} ({error}).") from error


def _to_rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")  # (height, width, 3)


def _stack(frames: list[np.ndarray], name: str) -> torch.Tensor:
    if not frames:
        raise VideoDecodeError(f"Video {name} has no frames in the requested range.")
    return torch.from_numpy(np.stack(frames))  # (num_frames, height, width, 3)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def decode_video(
    source: VideoSource,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
    backend: str = "auto",
) -> DecodedVideo:
    """
    Decode the frames of a video, optionally only those within `[start, end]` seconds.

    Args:
        source (`str`, `os.PathLike` or `bytes`):
            A video file path or the encoded file's bytes.
        start (`float`, *optional*):
            First time (seconds from the stream start) to keep; frames before it are skipped
            after seeking to the keyframe before it.
        end (`float`, *optional*):
            Last time (inclusive) to keep.
        max_frames (`int`, *optional*):
            Stop after this many frames.
        backend (`str`, *optional*, defaults to `"auto"`):
            `"pyav"`, `"torchcodec"`, or `"auto"` (PyAV when installed, else torchcodec).

    Returns:
        `DecodedVideo`: frames `(num_frames, height, width, 3)` uint8, timestamps `(num_frames,)`
        float64 seconds and the frame rate.

    Raises:
        `ValueError` (`VideoDecodeError`): the file is missing, corrupt, has no video stream, or
        no frame falls in the requested range.
    """
    if start is not None and start < 0:
        raise ValueError(f"`start` must be >= 0 seconds, got {start}.")
    if end is not None and start is not None and end < start:
        raise ValueError(f"`end` ({end}) must not be before `start` ({start}).")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise ValueError(f"`max_frames` must be a positive integer, got {max_frames!r}.")
    backend = _resolve_backend(backend)
    name = describe_source(source)
    checked = _check_source(source)
    if backend == "torchcodec":
        return _decode_video_torchcodec(checked, name, start, end, max_frames)

    frames, timestamps = [], []
    with _PyAVVideo(checked, name) as video:
        video.stream.thread_type = "AUTO"
        if start:
            frames_iterator, first, _ = _seek_before(video, start)
            frames_iterator = itertools.chain([first], frames_iterator)
        else:
            frames_iterator = video.frames()
        for frame in frames_iterator:
            time = video.frame_seconds(frame)
            if start is not None and time < start:
                continue
            if end is not None and time > end:
                break
            frames.append(_to_rgb(frame))
            timestamps.append(time)
            if max_frames is not None and len(frames) >= max_frames:
                break
        fps = video.fps
    if not frames and start is None and end is None:
        raise VideoDecodeError(f"Video {name} has no frames.")
    return DecodedVideo(
        frames=_stack(frames, name),
        timestamps=torch.tensor(timestamps, dtype=torch.float64),
        fps=fps,
    )


def read_timestamps(source: VideoSource, backend: str = "auto") -> torch.Tensor:
    """
    Presentation times of all frames of a video, in seconds, sorted, without decoding pixels.

    The packets are demuxed (no decoding) and their pts collected; when a container does not
    store a pts for every packet, the frames are decoded instead.

    Returns:
        `torch.Tensor` of shape `(num_frames,)`, `float64`.
    """
    backend = _resolve_backend(backend)
    name = describe_source(source)
    checked = _check_source(source)
    if backend == "torchcodec":
        return _decode_video_torchcodec(checked, name, None, None, None).timestamps

    import av

    with _PyAVVideo(checked, name) as video:
        pts_values = []
        complete = True
        try:
            for packet in video.container.demux(video.stream):
                if packet.size == 0:  # flush / end-of-sequence packet, not a frame
                    continue
                if packet.pts is None:
                    complete = False
                    break
                pts_values.append(packet.pts)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"Could not read video {name} ({error}).") from error
        if not complete:
            video.seek(0.0)
            pts_values = [frame.pts if frame.pts is not None else frame.dts for frame in video.frames()]
        if not pts_values:
            raise VideoDecodeError(f"Video {name} has no frames.")
        seconds = sorted(video.seconds(pts) for pts in pts_values)
    return torch.tensor(seconds, dtype=torch.float64)


def read_frames_at(
    source: VideoSource,
    times: Sequence[float] | torch.Tensor,
    backend: str = "auto",
) -> DecodedVideo:
    """
    Read, for every requested time, the frame whose timestamp is nearest to it.

    Only the needed part of the video is decoded: the reader seeks to the keyframe before the
    earliest time and decodes forward, seeking again across long gaps. Times before the first
    frame give the first frame, times after the last give the last. Ties go to the earlier frame.

    Args:
        source (`str`, `os.PathLike` or `bytes`):
            A video file path or the encoded file's bytes.
        times (sequence of `float` or `torch.Tensor` of shape `(num_times,)`):
            Seconds from the stream start, in any order; repeats are allowed.
        backend (`str`, *optional*, defaults to `"auto"`):
            `"pyav"`, `"torchcodec"` or `"auto"`.

    Returns:
        `DecodedVideo`: `frames` `(num_times, height, width, 3)` uint8 in the order of `times`,
        and `timestamps` `(num_times,)` float64, the actual time of each returned frame.
    """
    times = torch.as_tensor(times, dtype=torch.float64).flatten()
    if times.numel() == 0:
        raise ValueError("`times` must hold at least one time, got an empty sequence.")
    if not torch.isfinite(times).all():
        raise ValueError(f"`times` must be finite numbers, got {times.tolist()}.")
    backend = _resolve_backend(backend)
    name = describe_source(source)
    checked = _check_source(source)
    if backend == "torchcodec":
        return _read_frames_at_torchcodec(checked, name, times)

    order = torch.argsort(times, stable=True).tolist()
    wanted = [float(times[index]) for index in order]  # ascending
    picked: list[tuple[np.ndarray, float] | None] = [None] * len(wanted)
    with _PyAVVideo(checked, name) as video:
        fps = video.fps
        position = 0  # next entry of `wanted` to resolve
        while position < len(wanted):
            position = _decode_forward(video, wanted, picked, position)
    frames = [None] * len(wanted)
    timestamps = [0.0] * len(wanted)
    for sorted_index, original_index in enumerate(order):
        frame, time = picked[sorted_index]
        frames[original_index] = frame
        timestamps[original_index] = time
    return DecodedVideo(
        frames=_stack(frames, name),
        timestamps=torch.tensor(timestamps, dtype=torch.float64),
        fps=fps,
    )


def _seek_before(video: _PyAVVideo, target: float):
    """Position `video` on a frame at or before `target` (or on the first frame).

    Returns `(frames, first, first_time)`: the frame iterator, the first frame it gave and that
    frame's time. Some containers (e.g. MPEG-PS) seek by byte position and can land after the
    target; then we back off further until a frame at or before the target is seen, or we are
    back at the stream start.
    """
    backoff = 0.0
    while True:
        seek_time = max(target - backoff, 0.0)
        video.seek(seek_time)
        frames = video.frames()
        first = next(frames, None)
        if first is None:
            if seek_time == 0.0:
                raise VideoDecodeError(f"Video {video.name} has no frames.")
        else:
            first_time = video.frame_seconds(first)
            if first_time <= target or seek_time == 0.0:
                return frames, first, first_time
        backoff = max(2 * backoff, 1.0)


def _decode_forward(video: _PyAVVideo, wanted: list[float], picked: list, position: int) -> int:
    """Seek before `wanted[position]`, decode forward and fill `picked` until a long gap or EOF.

    Returns the position of the first time still unresolved (`len(wanted)` when done).
    """
    target = wanted[position]
    seeked_position = position
    frames, first, first_time = _seek_before(video, target)

    previous, previous_time = None, None
    current, current_time = first, first_time
    while True:
        # Resolve every wanted time that lies at or before the current frame: the nearest frame
        # is either the current one or the one before it.
        while position < len(wanted) and wanted[position] <= current_time:
            time = wanted[position]
            if previous is not None and time - previous_time <= current_time - time:
                picked[position] = (_to_rgb(previous), previous_time)
            else:
                picked[position] = (_to_rgb(current), current_time)
            position += 1
        if position == len(wanted):
            return position
        if position != seeked_position and wanted[position] - current_time > SEEK_AHEAD_THRESHOLD:
            return position  # far ahead: the caller seeks again (progress was made since the last seek)
        following = next(frames, None)
        if following is None:  # end of stream: later times get the last frame
            last = _to_rgb(current)
            while position < len(wanted):
                picked[position] = (last, current_time)
                position += 1
            return position
        previous, previous_time = current, current_time
        current, current_time = following, video.frame_seconds(following)


def probe_video(source: VideoSource) -> VideoInfo:
    """
    Duration, frame rate, frame count and size of a video, read from its header and packets.

    Nothing is decoded; when the header has no frame count the packets are counted.

    Raises:
        `ValueError` (`VideoDecodeError`): missing, corrupt, no video stream or zero frames.
    """
    name = describe_source(source)
    checked = _check_source(source)
    _resolve_backend("pyav")
    with _PyAVVideo(checked, name) as video:
        stream = video.stream
        fps = video.fps
        height, width = stream.codec_context.height, stream.codec_context.width
        if stream.duration is not None:
            duration = float(stream.duration * video.time_base)
        elif video.container.duration is not None:
            duration = video.container.duration / 1_000_000
        else:
            duration = 0.0
        num_frames = stream.frames
    if not num_frames:
        num_frames = int(read_timestamps(checked, backend="pyav").numel())
    if num_frames == 0:
        raise VideoDecodeError(f"Video {name} has no frames.")
    if duration <= 0.0 and fps > 0:
        duration = num_frames / fps
    return VideoInfo(duration=duration, fps=fps, num_frames=int(num_frames), height=height, width=width)


# ----------------------------------------------------------------------------------------------
# torchcodec backend (optional; not installed in this project's CI, so kept minimal)
# ----------------------------------------------------------------------------------------------


def _torchcodec_decoder(source: Union[str, bytes], name: str):
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(source, dimension_order="NHWC", seek_mode="exact")
    except (RuntimeError, ValueError, OSError) as error:
        raise VideoDecodeError(f"Could not open video {name} with torchcodec ({error}).") from error
    if len(decoder) == 0:
        raise VideoDecodeError(f"Video {name} has no frames.")
    begin = getattr(decoder.metadata, "begin_stream_seconds", None)
    if begin is None:
        begin = float(decoder.get_frame_at(0).pts_seconds)
    fps = float(getattr(decoder.metadata, "average_fps", None) or 0.0)
    return decoder, float(begin), fps


def _decode_video_torchcodec(source, name, start, end, max_frames) -> DecodedVideo:
    decoder, begin, fps = _torchcodec_decoder(source, name)
    batch = decoder.get_frames_in_range(0, len(decoder))
    timestamps = batch.pts_seconds.to(torch.float64) - begin
    keep = torch.ones_like(timestamps, dtype=torch.bool)
    if start is not None:
        keep &= timestamps >= start
    if end is not None:
        keep &= timestamps <= end
    frames, timestamps = batch.data[keep], timestamps[keep]
    if max_frames is not None:
        frames, timestamps = frames[:max_frames], timestamps[:max_frames]
    if frames.shape[0] == 0:
        raise VideoDecodeError(f"Video {name} has no frames in the requested range.")
    return DecodedVideo(frames=frames.contiguous(), timestamps=timestamps, fps=fps)


def _read_frames_at_torchcodec(source, name, times: torch.Tensor) -> DecodedVideo:
    decoder, begin, fps = _torchcodec_decoder(source, name)
    # torchcodec returns the frame *played* at a time (pts <= t < pts + duration); the nearest
    # frame is that one or the next, so the next is read where the time is past mid-frame.
    last = decoder.get_frame_at(len(decoder) - 1)
    first_time = float(decoder.get_frame_at(0).pts_seconds)
    absolute = (times + begin).clamp(first_time, float(last.pts_seconds)).tolist()
    played = decoder.get_frames_played_at(seconds=absolute)
    frames, timestamps = played.data.clone(), played.pts_seconds.to(torch.float64).clone()
    for index, time in enumerate(absolute):
        frame_time, duration = float(played.pts_seconds[index]), float(played.duration_seconds[index])
        next_time = frame_time + duration
        if time - frame_time > next_time - time and next_time <= float(last.pts_seconds):
            following = decoder.get_frame_played_at(seconds=next_time)
            frames[index], timestamps[index] = following.data, float(following.pts_seconds)
    return DecodedVideo(frames=frames, timestamps=timestamps - begin, fps=fps)
