"""DeltaWorldVideoProcessor: clip coercion, context selection in files, timing, resize modes, crop boxes, label
alignment, and its saved settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deltatok_hf.data.video_processor import (
    DeltaWorldVideoProcessor,
    SquareCropLayout,
    align_to_labels,
    merge_square_crops,
    split_into_square_crops,
    split_labels,
)
from conftest import grey_frames, write_test_video


def _clip(num_frames=3, height=32, width=48):
    return torch.randint(0, 256, (num_frames, 3, height, width), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """2 s at 10 fps, 48x32, grey level 10 * index (so every frame is identifiable by its value)."""
    pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "grey.mp4"
    return write_test_video(path, grey_frames(20, 32, 48, 0, 10), fps=10, codec="libx264")


def test_settings_are_a_saved_config(tmp_path):
    processor = DeltaWorldVideoProcessor(size=64, resize_mode="resize_square", context_frames=3, context_interval=0.5)
    processor.save_config(tmp_path)
    saved = json.loads((tmp_path / DeltaWorldVideoProcessor.config_name).read_text())
    assert (saved["size"], saved["resize_mode"], saved["context_frames"], saved["context_interval"]) == (64, "resize_square", 3, 0.5)
    loaded = DeltaWorldVideoProcessor.from_config(DeltaWorldVideoProcessor.load_config(tmp_path))
    for key in ("size", "resize_mode", "context_frames", "context_interval", "patch_size"):
        assert loaded.config[key] == processor.config[key]


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"size": 40}, "multiple of the patch size"),
        ({"size": 0}, "size"),
        ({"resize_mode": "stretch"}, "resize_mode"),
        ({"context_frames": 0}, "context_frames"),
        ({"context_interval": -0.1}, "context_interval"),
        ({"context_interval": float("nan")}, "context_interval"),
    ],
)
def test_bad_settings_raise(settings, message):
    with pytest.raises(ValueError, match=message):
        DeltaWorldVideoProcessor(**settings)


def test_square_crops_boxes_match_the_crops():
    processor = DeltaWorldVideoProcessor(size=32)
    clip = processor.preprocess(_clip(3, 64, 96), fps=10)
    assert clip.views.shape == (2, 3, 3, 32, 32)
    assert clip.layout.frame_size == (32, 48) and clip.crop_boxes == [(0, 0, 32, 32), (0, 16, 32, 32)]
    assert clip.layout.is_wide and clip.layout.overlap
    resized = processor.resize(_clip(3, 64, 96).permute(0, 2, 3, 1))[0]
    # The second crop's left columns are the first crop's right columns (they overlap by 16 pixels).
    assert torch.equal(resized[0][..., 16:], resized[1][..., :16])


def test_aspect_ratio_above_two_is_capped_as_the_official_evaluation():
    layout = DeltaWorldVideoProcessor(size=32).preprocess(_clip(2, 32, 160), fps=10).layout
    assert layout.frame_size == (32, 64) and not layout.overlap  # 5:1 squeezed to 2:1, two disjoint squares


def test_resize_modes_none_and_resize_square():
    assert DeltaWorldVideoProcessor(resize_mode="resize_square", size=32).preprocess(_clip(), fps=5).views.shape == (1, 3, 3, 32, 32)
    kept = DeltaWorldVideoProcessor(resize_mode="none").preprocess(_clip(), fps=5)
    assert torch.equal(kept.views[0], _clip()) and kept.crop_boxes is None
    with pytest.raises(ValueError, match="multiples of the patch size"):
        DeltaWorldVideoProcessor(resize_mode="none").preprocess(_clip(2, 30, 48), fps=5)


def test_timing_from_fps_explicit_times_and_future_spacing():
    processor = DeltaWorldVideoProcessor(size=32)
    clip = processor.preprocess(_clip(3, 32, 32), fps=4, num_future_frames=2)
    torch.testing.assert_close(clip.context_timestamps, torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64))
    torch.testing.assert_close(clip.future_timestamps, torch.tensor([0.75, 1.0], dtype=torch.float64))
    clip = processor.preprocess(_clip(2, 32, 32), timestamps=[1.0, 1.5], future_timestamps=[1.6, 3.0])
    torch.testing.assert_close(clip.future_timestamps, torch.tensor([1.6, 3.0], dtype=torch.float64))
    last_two = processor.preprocess(_clip(5, 32, 32), fps=10, context_frames=2)
    torch.testing.assert_close(last_two.context_timestamps, torch.tensor([0.3, 0.4], dtype=torch.float64))


def test_video_context_ends_on_the_last_frame_or_starts_at_start_time(video):
    processor = DeltaWorldVideoProcessor(size=32, context_frames=3, context_interval=0.3)
    ending = processor.preprocess(str(video))
    np.testing.assert_allclose(ending.context_timestamps.numpy(), [1.3, 1.6, 1.9], atol=1e-6)
    # Frames are identified by their grey level (10 per frame index), so the right frames were decoded.
    levels = ending.views[0, :, 0].float().mean((-1, -2)).numpy()
    np.testing.assert_allclose(levels, [130, 160, 190], atol=3)
    starting = processor.preprocess(str(video), start_time=0.2, read_ground_truth=True)
    np.testing.assert_allclose(starting.context_timestamps.numpy(), [0.2, 0.5, 0.8], atol=1e-6)
    np.testing.assert_allclose(starting.future_timestamps.numpy(), [1.1, 1.4, 1.7], atol=1e-6)
    truth_levels = starting.ground_truth_views[0, :, 0].float().mean((-1, -2)).numpy()
    np.testing.assert_allclose(truth_levels, [110, 140, 170], atol=3)
    assert ending.ground_truth_views is None  # nothing was asked for
    late = processor.preprocess(str(video), start_time=1.0, read_ground_truth=True)
    assert late.ground_truth_views is None  # the video ends before the last future time
    with pytest.raises(ValueError, match="too short"):
        processor.preprocess(str(video), context_frames=10)
    with pytest.raises(ValueError, match="carries its own timestamps"):
        processor.preprocess(str(video), fps=10)


def test_in_memory_frames_refuse_file_only_options():
    with pytest.raises(ValueError, match="select frames of a video file"):
        DeltaWorldVideoProcessor().preprocess(_clip(), fps=5, start_time=0.0)


def test_ground_truth_frames_are_prepared_like_the_context():
    processor = DeltaWorldVideoProcessor(size=32)
    clip = processor.preprocess(_clip(3, 32, 48), fps=5, ground_truth_frames=_clip(3, 32, 48))
    assert clip.ground_truth_views.shape == (2, 3, 3, 32, 32)
    with pytest.raises(ValueError, match="2 frames for 3 future times"):
        processor.preprocess(_clip(3, 32, 48), fps=5, ground_truth_frames=_clip(2, 32, 48))


def test_label_halves_and_alignment_cover_every_label_pixel_once():
    frames = torch.zeros(2, 4, 3, 32, 48)
    labels = torch.arange(2 * 4 * 31 * 47).reshape(2, 4, 31, 47)
    crops, halves, layout = split_into_square_crops(frames, labels)
    assert crops.shape == (4, 4, 3, 32, 32) and layout.num_crops == 2 and layout.is_wide
    assert halves.shape == (4, 4, 31, 24)  # 47 columns -> 23 + 24, the first half padded by one ignored column
    assert (halves[:2, ..., -1] == 255).all()
    kept = torch.cat([halves[:2, ..., :23], halves[2:]], dim=-1)
    assert torch.equal(kept, labels)
    maps = torch.randn(4, 5, 32, 32)
    aligned = align_to_labels(maps, (31, 24), layout)
    assert aligned.shape == (4, 5, 31, 24)
    counts = merge_square_crops(torch.ones(4, 3), layout)
    assert torch.equal(counts, torch.full((2, 3), 2.0))
    tall = SquareCropLayout.for_frame(48, 32)
    assert tall.boxes == ((0, 0, 32, 32), (16, 0, 32, 32)) and tall.is_wide is False
    assert [half.shape for half in split_labels(torch.zeros(1, 48, 32), tall)] == [(1, 24, 32), (1, 24, 32)]
