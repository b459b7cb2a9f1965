"""Video decoding: the bundled clip, frame-accurate seeking, probing and error messages."""

from pathlib import Path

import numpy as np
import pytest
import torch

from deltatok_hf.data import (
    DecodedVideo,
    VideoDecodeError,
    decode_video,
    demo_clip_path,
    probe_video,
    read_frames_at,
    read_timestamps,
)
from deltatok_hf.data.video import torchcodec_problem
from conftest import grey_frames, write_audio_only, write_test_video


av = pytest.importorskip("av")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CITY_SOURCE = SHARED / "data" / "cityCC0.mpg"


def write_video(path, num_frames=10, fps=25, width=64, height=48, codec="mpeg4", gop_size=4):
    """A small video whose frame `i` is a uniform grey level `10 + 20 * i` (mod 256)."""
    return write_test_video(path, grey_frames(num_frames, height, width, 10, 20), fps=fps, codec=codec, gop_size=gop_size)


@pytest.fixture(scope="module")
def full_clip():
    return decode_video(demo_clip_path())


def test_bundled_clip_decodes_with_expected_shape_dtype_and_timing(full_clip):
    assert isinstance(full_clip, DecodedVideo)
    num_frames, height, width, channels = full_clip.frames.shape
    assert (height, width, channels) == (144, 256, 3)
    assert 75 <= num_frames <= 100  # about 3.5 s at 25 fps
    assert full_clip.frames.dtype == torch.uint8
    assert full_clip.timestamps.shape == (num_frames,)
    assert full_clip.timestamps[0].item() == pytest.approx(0.0, abs=1e-6)
    assert torch.all(torch.diff(full_clip.timestamps) > 0)
    assert torch.allclose(torch.diff(full_clip.timestamps), torch.full((num_frames - 1,), 0.04, dtype=torch.float64))
    assert full_clip.fps == pytest.approx(25.0)
    assert full_clip.frames.float().std() > 5  # real content, not a blank picture
    assert demo_clip_path().stat().st_size < 400_000


def test_decode_from_bytes_equals_decode_from_path(full_clip):
    from_bytes = decode_video(demo_clip_path().read_bytes())
    assert torch.equal(from_bytes.frames, full_clip.frames)
    assert torch.equal(from_bytes.timestamps, full_clip.timestamps)


def test_decode_start_end_and_max_frames_select_the_right_frames(full_clip):
    window = decode_video(demo_clip_path(), start=1.0, end=2.0)
    expected = (full_clip.timestamps >= 1.0) & (full_clip.timestamps <= 2.0)
    assert torch.equal(window.timestamps, full_clip.timestamps[expected])
    assert torch.equal(window.frames, full_clip.frames[expected])
    first_three = decode_video(demo_clip_path(), start=0.5, max_frames=3)
    assert len(first_three) == 3
    assert torch.equal(first_three.frames, full_clip.frames[(full_clip.timestamps >= 0.5)][:3])


def test_read_timestamps_matches_decoded_timestamps(full_clip):
    assert torch.equal(read_timestamps(demo_clip_path()), full_clip.timestamps)


def test_read_frames_at_returns_the_nearest_frames_of_a_full_decode(full_clip):
    generator = torch.Generator().manual_seed(0)
    duration = full_clip.timestamps[-1].item()
    # Unsorted times, repeats, times before the start and after the end, far apart (re-seeks).
    times = torch.cat(
        [torch.rand(12, generator=generator, dtype=torch.float64) * (duration + 0.6) - 0.3, torch.tensor([3.0, 3.0, 0.1])]
    )
    result = read_frames_at(demo_clip_path(), times)
    nearest = (full_clip.timestamps[None, :] - times[:, None]).abs().argmin(dim=1)
    assert torch.equal(result.timestamps, full_clip.timestamps[nearest])
    assert torch.equal(result.frames, full_clip.frames[nearest])


def test_read_frames_at_seeks_instead_of_decoding_from_the_start(monkeypatch):
    import deltatok_hf.data.video as video_module

    decoded = []
    original = video_module._PyAVVideo.frames

    def counting_frames(self):
        for frame in original(self):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video_module._PyAVVideo, "frames", counting_frames)
    result = read_frames_at(demo_clip_path(), [3.0], backend="pyav")
    assert result.timestamps.tolist() == [3.0]
    # The clip has a keyframe every second, so at most ~25 frames are decoded, not all ~75 before 3 s.
    assert len(decoded) <= 30


@pytest.mark.skipif(not CITY_SOURCE.is_file(), reason=f"shared data not found at {CITY_SOURCE}")
def test_read_frames_at_is_exact_on_an_mpeg_program_stream():
    full = decode_video(CITY_SOURCE, end=3.0)
    times = torch.tensor([0.0, 0.03, 1.01, 2.5, 0.9])
    result = read_frames_at(CITY_SOURCE, times)
    nearest = (full.timestamps[None, :] - times[:, None].double()).abs().argmin(dim=1)
    assert torch.equal(result.frames, full.frames[nearest])


def test_probe_video_reports_size_rate_and_count(full_clip):
    info = probe_video(demo_clip_path())
    assert (info.height, info.width) == (144, 256)
    assert info.fps == pytest.approx(25.0)
    assert info.num_frames == len(full_clip)
    assert info.duration == pytest.approx(len(full_clip) / 25, abs=0.05)


def test_small_written_video_has_one_frame_per_written_frame(tmp_path):
    path = write_video(tmp_path / "ramp.mp4", num_frames=10)
    video = decode_video(path)
    assert video.frames.shape == (10, 48, 64, 3)
    levels = video.frames.float().mean(dim=(1, 2, 3))
    # Lossy YUV coding moves the grey levels a little; each frame stays nearest its own level.
    expected = 10 + 20 * torch.arange(10).float()
    assert torch.equal((levels[:, None] - expected[None, :]).abs().argmin(dim=1), torch.arange(10))


def test_missing_file_raises_value_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    for function in (decode_video, probe_video, read_timestamps):
        with pytest.raises(ValueError, match="nope.mp4"):
            function(missing)
    with pytest.raises(ValueError, match="nope.mp4"):
        read_frames_at(missing, [0.0])


def test_corrupt_file_raises_value_error_naming_the_path(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        decode_video(corrupt)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        probe_video(corrupt)
    with pytest.raises(ValueError):
        decode_video(corrupt.read_bytes())


def test_empty_file_and_bytes_raise_value_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4"):
        decode_video(empty)
    with pytest.raises(ValueError, match="empty"):
        decode_video(b"")


def test_file_without_video_stream_raises_value_error(tmp_path):
    path = write_audio_only(tmp_path / "audio_only.wav", codec="pcm_s16le", sample_rate=8000)
    with pytest.raises(ValueError, match="no video stream"):
        decode_video(path)


def test_container_without_frames_raises_value_error(tmp_path):
    # MP4 drops a track that received no packets, so this file has a header and no video.
    path = write_video(tmp_path / "zero.mp4", num_frames=0)
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="no video stream|no frames"):
        decode_video(path)
    with pytest.raises(ValueError, match="zero.mp4"):
        probe_video(path)


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(TypeError, match="int"):
        decode_video(12)
    with pytest.raises(ValueError, match="backend"):
        decode_video(demo_clip_path(), backend="decord")
    with pytest.raises(ValueError, match="times"):
        read_frames_at(demo_clip_path(), [])
    with pytest.raises(ValueError, match="max_frames"):
        decode_video(demo_clip_path(), max_frames=0)


# ----------------------------------------------------------------------------------------------
# torchcodec backend (CI installs torchcodec and Debian's FFmpeg in `.ci/run`)
# ----------------------------------------------------------------------------------------------

requires_torchcodec = pytest.mark.skipif(
    torchcodec_problem() is not None, reason=f"torchcodec cannot decode here: {torchcodec_problem()}"
)


def noise_frames(num_frames, height=48, width=64):
    """Random textures: any wrong frame, shift or colour conversion shows up in the comparison."""
    generator = np.random.default_rng(0)
    return [generator.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(num_frames)]


@pytest.fixture(scope="module")
def codec_videos(tmp_path_factory):
    """The test videos: MPEG-4 part 2 and H.264 (short GOPs, B-frames for H.264), a variable-frame-rate file."""
    folder = tmp_path_factory.mktemp("codecs")
    videos = {
        "mpeg4": write_test_video(folder / "mpeg4.mp4", noise_frames(30), codec="mpeg4", gop_size=6),
        "h264": write_test_video(folder / "h264.mp4", noise_frames(30), codec="libx264", gop_size=8),
        "variable_rate": write_test_video(folder / "vfr.mkv", noise_frames(10), times=[0, 0.04, 0.08, 0.2, 0.24, 0.4, 0.44, 0.48, 0.8, 0.84]),
        "demo": demo_clip_path(),
    }
    return videos


@requires_torchcodec
@pytest.mark.parametrize("kind", ["mpeg4", "h264", "variable_rate", "demo"])
def test_torchcodec_gives_pyavs_frames_at_the_same_times(codec_videos, kind):
    path = codec_videos[kind]
    full = decode_video(path, backend="pyav")
    decoded = decode_video(path, backend="torchcodec")
    assert torch.equal(decoded.timestamps, full.timestamps)
    # Same FFmpeg decoders and RGB conversion: equal frames here; allow one level of rounding anyway.
    assert (decoded.frames.int() - full.frames.int()).abs().max() <= 1
    duration = float(full.timestamps[-1])
    times = torch.rand(16, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * (duration + 0.4) - 0.2
    by_pyav = read_frames_at(path, times, backend="pyav")
    by_torchcodec = read_frames_at(path, times, backend="torchcodec")
    assert torch.equal(by_torchcodec.timestamps, by_pyav.timestamps)
    assert (by_torchcodec.frames.int() - by_pyav.frames.int()).abs().max() <= 1
    window = decode_video(path, start=0.1, end=0.5, backend="torchcodec")
    assert torch.equal(window.timestamps, full.timestamps[(full.timestamps >= 0.1) & (full.timestamps <= 0.5)])


@requires_torchcodec
def test_torchcodec_reads_bytes_like_a_path(codec_videos):
    times = [0.3, 0.0, 0.3]
    from_bytes = read_frames_at(codec_videos["h264"].read_bytes(), times, backend="torchcodec")
    from_path = read_frames_at(codec_videos["h264"], times, backend="torchcodec")
    assert torch.equal(from_bytes.frames, from_path.frames)
    assert torch.equal(from_bytes.frames[0], from_bytes.frames[2])


@requires_torchcodec
def test_auto_backend_prefers_torchcodec(codec_videos, monkeypatch):
    import deltatok_hf.data.video as video_module

    calls = []
    original = video_module._read_frames_torchcodec
    monkeypatch.setattr(video_module, "_read_frames_torchcodec", lambda *args: calls.append(args) or original(*args))
    result = read_frames_at(codec_videos["mpeg4"], [0.2])
    assert len(calls) == 1 and result.timestamps.tolist() == [0.2]


def test_auto_backend_falls_back_to_pyav_saying_so_once(codec_videos, monkeypatch, caplog):
    import deltatok_hf.data.video as video_module

    monkeypatch.setattr(video_module, "torchcodec_problem", lambda: "torchcodec is broken in this test")
    video_module._log_once.cache_clear()
    with caplog.at_level("INFO", logger="deltatok_hf.data.video"):
        first = read_frames_at(codec_videos["mpeg4"], [0.2])
        read_frames_at(codec_videos["mpeg4"], [0.4])
    assert first.timestamps.tolist() == [0.2]
    assert caplog.text.count("torchcodec is broken in this test") == 1
    with pytest.raises(ImportError, match="broken"):
        read_frames_at(codec_videos["mpeg4"], [0.2], backend="torchcodec")


@requires_torchcodec
@pytest.mark.skipif(not CITY_SOURCE.is_file(), reason=f"shared data not found at {CITY_SOURCE}")
def test_inaccurate_torchcodec_seeking_is_caught(caplog):
    """torchcodec seeks to wrong frames in this MPEG program stream: "auto" reads it with PyAV, "torchcodec" raises."""
    import deltatok_hf.data.video as video_module

    video_module._log_once.cache_clear()
    with caplog.at_level("WARNING", logger="deltatok_hf.data.video"):
        automatic = read_frames_at(CITY_SOURCE, [1.0, 2.5])
    assert torch.equal(automatic.frames, read_frames_at(CITY_SOURCE, [1.0, 2.5], backend="pyav").frames)
    assert "PyAV decodes those instead" in caplog.text
    with pytest.raises(VideoDecodeError, match="when asked for the frame at"):
        read_frames_at(CITY_SOURCE, [1.0, 2.5], backend="torchcodec")


@requires_torchcodec
def test_values_of_a_decoding_datasets_video_column_are_sources(codec_videos):
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_dict({"clip": [str(codec_videos["h264"])]}).cast_column("clip", datasets.Video())
    decoder = table[0]["clip"]  # a torchcodec VideoDecoder made by `datasets`
    assert not isinstance(decoder, (str, bytes, dict))
    expected = read_frames_at(codec_videos["h264"], [0.1, 0.5], backend="pyav")
    assert torch.equal(read_frames_at(decoder, [0.1, 0.5]).frames, expected.frames)
    assert torch.equal(read_timestamps(decoder), read_timestamps(codec_videos["h264"]))
