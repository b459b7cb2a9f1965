"""Video decoding: whole clips, frame-accurate reads at given times, and cheap probing.

Every function takes a *source*: a path (`str` / `os.PathLike`) or the raw bytes of an encoded
file. Timestamps are seconds measured from the start of the video stream (the frame's pts minus
the stream's start time), so the first frame of a file is at (or very near) 0 s whatever the
container's own start offset (MPEG-PS files often start at 0.5 s).

Backends: `backend="auto"` (the default) decodes pixels with torchcodec when it is installed and
can load FFmpeg, else with PyAV (logged once). Frame times always come from PyAV's demuxer when
PyAV is installed (no pixels decoded; torchcodec has no API for that), so both backends pick the
same frames. torchcodec's frames are checked against the times asked for; where it returns other
frames (it seeks inaccurately in MPEG-PS files, for example), `"auto"` decodes that file with PyAV
instead and `"torchcodec"` raises `VideoDecodeError`. Why torchcodec first: for training clips it
gave 1.3-1.6x the clips/s of PyAV at 0.5-0.65x the CPU time per clip; PyAV's frame threads win
single 4-frame evaluation reads by 1.1-1.2x in wall time (`benchmarks/RESULTS.md`, section 7).

Note: the official DeltaTok code reads videos with decord (whole-index random access). We seek
to the keyframe before the first wanted frame and decode forward instead, which gives the same
frames for the timestamps the sampler picks (tested against full decoding).
"""

from __future__ import annotations

import functools
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
    encoded = getattr(source, "_hf_encoded", None)
    if isinstance(encoded, dict):
        # A value of a decoding `datasets.Video` column (a torchcodec `VideoDecoder` that remembers
        # its file): read the file or bytes it was made from.
        source = encoded.get("bytes") or encoded.get("path")
        if source is None:
            raise VideoDecodeError("A `datasets.Video` value has neither bytes nor a path.")
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


@functools.cache
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode in this environment, or `None` when it can.

    Importing `torchcodec.decoders` loads FFmpeg's shared libraries, which fails (RuntimeError or
    OSError) when no compatible FFmpeg is installed. Cached: the answer cannot change while the
    process runs (a module once imported stays imported).
    """
    if importlib.util.find_spec("torchcodec") is None:
        return "torchcodec is not installed (`pip install torchcodec` and a system FFmpeg)"
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception as error:  # noqa: BLE001 - any failure to load means "not usable here"
        return f"torchcodec could not load FFmpeg ({type(error).__name__}: {error})"
    return None


@functools.cache
def _log_once(message: str, level: int = logging.WARNING) -> None:
    """Log `message` the first time only (cached on the message and level)."""
    logger.log(level, message)


def _resolve_backend(backend: str) -> tuple[str, bool]:
    """`(backend to use, whether PyAV may stand in for a file torchcodec cannot read)`."""
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    has_pyav = importlib.util.find_spec("av") is not None
    if backend == "auto":
        problem = torchcodec_problem()
        if problem is None:
            return "torchcodec", has_pyav
        if has_pyav:
            # Without torchcodec, PyAV is the normal choice (info); torchcodec installed but unable to load is a
            # problem worth a warning.
            installed = importlib.util.find_spec("torchcodec") is not None
            _log_once(f"Decoding video with PyAV: {problem}.", logging.WARNING if installed else logging.INFO)
            return "pyav", False
        raise ImportError(f"Decoding video needs PyAV (`pip install av`) or torchcodec; {problem}.")
    if backend == "pyav" and not has_pyav:
        raise ImportError("backend='pyav' needs PyAV: `pip install av`.")
    if backend == "torchcodec":
        problem = torchcodec_problem()
        if problem is not None:
            raise ImportError(f"backend='torchcodec' cannot be used: {problem}.")
    return backend, False


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
            A video file path or the encoded file's bytes (or a value of a decoding
            `datasets.Video` column).
        start (`float`, *optional*):
            First time (seconds from the stream start) to keep; frames before it are skipped
            after seeking to the keyframe before it.
        end (`float`, *optional*):
            Last time (inclusive) to keep.
        max_frames (`int`, *optional*):
            Stop after this many frames.
        backend (`str`, *optional*, defaults to `"auto"`):
            `"pyav"`, `"torchcodec"`, or `"auto"` (see the module docstring).

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
    backend, may_fall_back = _resolve_backend(backend)
    name = describe_source(source)
    checked = _check_source(source)
    if backend == "torchcodec":
        timing = _read_timing(checked, name)
        keep = torch.ones_like(timing.times, dtype=torch.bool)
        if start is not None:
            keep &= timing.times >= start
        if end is not None:
            keep &= timing.times <= end
        wanted = timing.times[keep][:max_frames]  # (num_frames,)
        if wanted.numel() == 0:
            raise VideoDecodeError(f"Video {name} has no frames in the requested range.")
        decoded = _torchcodec_or_fallback(checked, name, timing, wanted, may_fall_back)
        if decoded is not None:
            return decoded
        return _read_frames_at_pyav(checked, name, wanted)

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


@dataclass
class _Timing:
    """Frame times of a video: `times` `(num_frames,)` float64 seconds from the stream start
    (sorted), the stream start in absolute seconds, and the average frame rate."""

    times: torch.Tensor
    start_seconds: float
    fps: float


def _read_timing(checked: Union[str, bytes], name: str) -> _Timing:
    """Frame times from the demuxer (PyAV; no pixels decoded), or, without PyAV, by decoding all
    frames with torchcodec."""
    if importlib.util.find_spec("av") is None:
        decoder, begin, fps = _torchcodec_decoder(checked, name)
        frames = decoder.get_frames_in_range(0, len(decoder))
        return _Timing(times=frames.pts_seconds.to(torch.float64) - begin, start_seconds=begin, fps=fps)
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
        # `_PyAVVideo.seconds` vectorised: integers below 2**53 are exact in float64 and one division
        # rounds once, so every value equals float(Fraction) (the Fraction loop took most of the time).
        offsets = torch.tensor(sorted(pts_values), dtype=torch.float64) - video.start_pts  # (num_frames,)
        seconds = offsets * video.time_base.numerator / video.time_base.denominator
        start_seconds = float(video.start_pts * video.time_base)
        fps = video.fps
    return _Timing(times=seconds, start_seconds=start_seconds, fps=fps)


def read_timestamps(source: VideoSource, backend: str = "auto") -> torch.Tensor:
    """
    Presentation times of all frames of a video, in seconds, sorted, without decoding pixels.

    The packets are demuxed with PyAV (no decoding) and their pts collected, whatever `backend`
    (it is only checked: torchcodec cannot list frame times without decoding them); when a
    container does not store a pts for every packet, the frames are decoded instead.

    Returns:
        `torch.Tensor` of shape `(num_frames,)`, `float64`.
    """
    _resolve_backend(backend)
    return _read_timing(_check_source(source), describe_source(source)).times


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
            A video file path or the encoded file's bytes (or a value of a decoding
            `datasets.Video` column).
        times (sequence of `float` or `torch.Tensor` of shape `(num_times,)`):
            Seconds from the stream start, in any order; repeats are allowed.
        backend (`str`, *optional*, defaults to `"auto"`):
            `"pyav"`, `"torchcodec"` or `"auto"` (see the module docstring).

    Returns:
        `DecodedVideo`: `frames` `(num_times, height, width, 3)` uint8 in the order of `times`,
        and `timestamps` `(num_times,)` float64, the actual time of each returned frame.
    """
    times = torch.as_tensor(times, dtype=torch.float64).flatten()
    if times.numel() == 0:
        raise ValueError("`times` must hold at least one time, got an empty sequence.")
    if not torch.isfinite(times).all():
        raise ValueError(f"`times` must be finite numbers, got {times.tolist()}.")
    backend, may_fall_back = _resolve_backend(backend)
    name = describe_source(source)
    checked = _check_source(source)
    if backend == "torchcodec":
        timing = _read_timing(checked, name)
        wanted = timing.times[nearest_frame_indices(timing.times, times)]  # (num_times,)
        decoded = _torchcodec_or_fallback(checked, name, timing, wanted, may_fall_back)
        if decoded is not None:
            return decoded
    return _read_frames_at_pyav(checked, name, times)


def nearest_frame_indices(frame_times: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """
    For every time, the index of the nearest frame (ties to the earlier frame, as `read_frames_at`).

    Args:
        frame_times (`torch.Tensor` of shape `(num_frames,)`): sorted frame times.
        times (`torch.Tensor` of shape `(num_times,)`): any times, same units.

    Returns:
        `torch.LongTensor` of shape `(num_times,)`.
    """
    frame_times = frame_times.to(torch.float64)
    times = times.to(torch.float64)
    following = torch.searchsorted(frame_times, times).clamp(max=frame_times.numel() - 1)  # first frame >= time
    previous = (following - 1).clamp(min=0)
    take_previous = (times - frame_times[previous]) <= (frame_times[following] - times)
    return torch.where(take_previous & (following > 0), previous, following)


def _read_frames_at_pyav(checked: Union[str, bytes], name: str, times: torch.Tensor) -> DecodedVideo:
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
# torchcodec backend
# ----------------------------------------------------------------------------------------------


def _torchcodec_decoder(source: Union[str, bytes], name: str):
    from torchcodec.decoders import VideoDecoder

    # "exact" scans the packets on opening (in C++: faster here than handing torchcodec our own
    # packet index as `custom_frame_mappings`, measured); "approximate" would turn times into indices
    # with the header's frame rate, which picks wrong frames in variable-frame-rate videos.
    try:
        decoder = VideoDecoder(source, dimension_order="NHWC", seek_mode="exact")
    except (RuntimeError, ValueError, OSError) as error:
        raise VideoDecodeError(f"Could not open video {name} with torchcodec ({error}).") from error
    if len(decoder) == 0:
        raise VideoDecodeError(f"Video {name} has no frames.")
    begin = getattr(decoder.metadata, "begin_stream_seconds", None) or 0.0
    fps = float(getattr(decoder.metadata, "average_fps", None) or 0.0)
    return decoder, float(begin), fps


def _read_frames_torchcodec(
    checked: Union[str, bytes], name: str, timing: _Timing, wanted: torch.Tensor
) -> DecodedVideo:
    """
    Decode the frames at `wanted` (exact frame times from `timing`, any order, repeats allowed).

    torchcodec numbers the frames in pts order, as `timing.times` does, so frames are asked for by
    index (asking by time would need a time strictly inside each frame's display interval, which
    the last frame of some files lacks). The returned frame times are checked: torchcodec must give
    exactly the frames asked for.
    """
    unique_times, inverse = torch.unique(wanted, sorted=True, return_inverse=True)  # (num_unique,), (num_times,)
    indices = torch.searchsorted(timing.times, unique_times).clamp(max=timing.times.numel() - 1)  # (num_unique,)
    decoder, _, _ = _torchcodec_decoder(checked, name)
    try:
        batch = decoder.get_frames_at(indices=indices.tolist())
    except (RuntimeError, IndexError, ValueError) as error:
        raise VideoDecodeError(f"torchcodec could not decode video {name} ({error}).") from error
    returned = batch.pts_seconds.to(torch.float64) - timing.start_seconds  # (num_unique,)
    mismatch = (returned - unique_times).abs() > 1e-6 + 1e-9 * unique_times.abs()
    if mismatch.any():
        index = int(mismatch.nonzero()[0])
        raise VideoDecodeError(
            f"torchcodec returned the frame at {float(returned[index]):.6f} s of video {name} when asked "
            f"for the frame at {float(unique_times[index]):.6f} s (inaccurate seeking in this container)."
        )
    if torch.equal(inverse, torch.arange(inverse.numel())):
        frames = batch.data  # (num_times, height, width, 3): the times were sorted and distinct
    else:
        # numpy's row gather: torch's uint8 advanced indexing was several times slower here.
        frames = torch.from_numpy(batch.data.numpy()[inverse.numpy()])  # (num_times, height, width, 3)
    return DecodedVideo(frames=frames.contiguous(), timestamps=unique_times[inverse], fps=timing.fps)


def _torchcodec_or_fallback(
    checked: Union[str, bytes], name: str, timing: _Timing, wanted: torch.Tensor, may_fall_back: bool
) -> DecodedVideo | None:
    """torchcodec's frames at `wanted`, or `None` when it failed and PyAV may stand in (`"auto"`)."""
    try:
        return _read_frames_torchcodec(checked, name, timing, wanted)
    except VideoDecodeError as error:
        if not may_fall_back:
            raise
        _log_once("torchcodec could not read some videos frame-accurately; PyAV decodes those instead.")
        logger.debug("Decoding %s with PyAV: %s", name, error)
        return None
