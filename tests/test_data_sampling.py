"""Clip sampling and clip-consistent augmentation."""

import pytest
import torch

from deltatok_hf.data import (
    ClipSampler,
    RandomResizedCropVideo,
    VideoTooShortError,
    center_crop,
    resize_short_side,
    split_square_crops,
)


def frame_times(num_frames, fps=25.0):
    return torch.arange(num_frames, dtype=torch.float64) / fps


def test_sampled_gaps_lie_in_range_and_timestamps_start_at_zero():
    sampler = ClipSampler(num_frames=8, min_gap=1 / 25, max_gap=1 / 3, seed=0)
    timestamps = frame_times(250)  # 10 s at 25 fps
    for _ in range(200):
        clip = sampler(timestamps)
        target_gaps = torch.diff(clip.target_times)
        assert torch.all(target_gaps >= 1 / 25 - 1e-9) and torch.all(target_gaps <= 1 / 3 + 1e-9)
        assert clip.timestamps.dtype == torch.float32
        assert clip.timestamps[0] == 0
        assert torch.all(torch.diff(clip.timestamps) > 0)
        assert torch.all(torch.diff(clip.indices) > 0)
        # Snapping to the nearest real frame moves each time by at most half a frame interval.
        assert torch.all((clip.frame_times - clip.target_times).abs() <= 0.02 + 1e-9)
        assert torch.allclose(clip.timestamps.double(), clip.frame_times - clip.frame_times[0])
        assert clip.target_times[-1] <= timestamps[-1] + 1e-9 and clip.target_times[0] >= 0


def test_sampled_gaps_cover_the_range():
    sampler = ClipSampler(num_frames=4, seed=1)
    gaps = torch.cat([torch.diff(sampler(frame_times(500)).target_times) for _ in range(300)])
    assert gaps.min() < 0.06 and gaps.max() > 0.31  # uniform over [0.04, 0.333]
    starts = torch.tensor([sampler(frame_times(500)).target_times[0].item() for _ in range(300)])
    assert starts.max() > 15.0  # the start ranges over the whole video


def test_sampler_is_deterministic_given_a_seed_or_generator():
    timestamps = frame_times(300)
    first = [ClipSampler(8, seed=7)(timestamps).indices for _ in range(3)]
    second = [ClipSampler(8, seed=7)(timestamps).indices for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    sampler = ClipSampler(8)
    clip_a = sampler(timestamps, generator=torch.Generator().manual_seed(3))
    clip_b = sampler(timestamps, generator=torch.Generator().manual_seed(3))
    clip_c = sampler(timestamps, generator=torch.Generator().manual_seed(4))
    assert torch.equal(clip_a.indices, clip_b.indices)
    assert not torch.equal(clip_a.indices, clip_c.indices)


def test_sampler_avoids_repeated_frames_when_gaps_are_below_the_frame_interval():
    # 5 fps video, gaps of 0.04-0.1 s: several targets fall nearest the same frame.
    sampler = ClipSampler(num_frames=6, min_gap=0.04, max_gap=0.1, seed=0)
    timestamps = frame_times(20, fps=5.0)
    for _ in range(50):
        indices = sampler(timestamps).indices
        assert torch.all(torch.diff(indices) >= 1)
        assert indices.max() < 20


def test_sampler_fits_clips_in_short_videos_and_rejects_too_short_ones():
    sampler = ClipSampler(num_frames=8, seed=0)
    exactly_long_enough = frame_times(8)  # 0.28 s = 7 gaps of 1/25 s
    clip = sampler(exactly_long_enough)
    assert clip.indices.tolist() == list(range(8))
    one_second = frame_times(25)
    for _ in range(20):
        clip = sampler(one_second)
        assert clip.target_times[-1] <= one_second[-1] + 1e-9
        assert len(set(clip.indices.tolist())) == 8
    with pytest.raises(VideoTooShortError, match="7 frames"):
        sampler(frame_times(7))
    with pytest.raises(ValueError, match="spans"):
        sampler(torch.linspace(0, 0.1, 30, dtype=torch.float64))


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        ClipSampler(0)
    with pytest.raises(ValueError, match="max_gap"):
        ClipSampler(4, min_gap=0.5, max_gap=0.1)


def test_random_resized_crop_is_identical_across_frames_of_a_clip():
    generator = torch.Generator().manual_seed(0)
    picture = torch.randint(0, 256, (3, 90, 160), dtype=torch.uint8, generator=generator)
    clip = picture[None].repeat(5, 1, 1, 1)  # (5, 3, 90, 160), identical frames
    transform = RandomResizedCropVideo(64, seed=0)
    for _ in range(10):
        out = transform(clip)
        assert out.shape == (5, 3, 64, 64) and out.dtype == torch.uint8
        assert all(torch.equal(out[0], out[index]) for index in range(1, 5))


def test_random_resized_crop_boxes_follow_scale_and_ratio():
    transform = RandomResizedCropVideo(64, scale=(0.6, 1.0), seed=0)
    for _ in range(100):
        top, left, height, width, _ = transform.get_params(200, 300)
        assert 0 <= top and top + height <= 200 and 0 <= left and left + width <= 300
        assert 0.6 * 200 * 300 * 0.97 <= height * width <= 200 * 300
        assert 3 / 4 * 0.95 <= width / height <= 4 / 3 * 1.05
    # The crops differ between draws (the augmentation is random).
    boxes = {transform.get_params(200, 300)[:4] for _ in range(20)}
    assert len(boxes) > 10


def test_random_resized_crop_flip_and_determinism():
    ramp = torch.arange(64, dtype=torch.uint8).repeat(3, 64, 1)[None].repeat(2, 1, 1, 1)  # (2, 3, 64, 64), x ramp
    full_crop = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))
    always = RandomResizedCropVideo(64, horizontal_flip=1.0, **full_crop)(ramp)
    never = RandomResizedCropVideo(64, horizontal_flip=False, **full_crop)(ramp)
    assert torch.equal(never, ramp)
    assert torch.equal(always, ramp.flip(-1))
    flips = [
        RandomResizedCropVideo(64, horizontal_flip=True, **full_crop)(ramp, generator=torch.Generator().manual_seed(seed))[0, 0, 0, 0] == 63
        for seed in range(200)
    ]
    assert 60 < sum(bool(flip) for flip in flips) < 140
    clip = torch.randint(0, 256, (3, 3, 50, 80), dtype=torch.uint8)
    assert torch.equal(RandomResizedCropVideo((32, 48), seed=5)(clip), RandomResizedCropVideo((32, 48), seed=5)(clip))
    assert RandomResizedCropVideo((32, 48), seed=5)(clip).shape == (3, 3, 32, 48)


def test_random_resized_crop_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCropVideo(64, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="horizontal_flip"):
        RandomResizedCropVideo(64, horizontal_flip=2.0)
    with pytest.raises(ValueError, match="shape"):
        RandomResizedCropVideo(64)(torch.zeros(3, 3, 10, dtype=torch.uint8))


def test_resize_short_side_and_center_crop():
    frames = torch.randint(0, 256, (2, 3, 405, 720), dtype=torch.uint8)
    resized = resize_short_side(frames, 144)
    assert resized.shape == (2, 3, 144, 256) and resized.dtype == torch.uint8
    constant = torch.full((1, 3, 90, 160), 77, dtype=torch.uint8)
    assert torch.all(resize_short_side(constant, 45) == 77)
    cropped = center_crop(frames, 100)
    assert cropped.shape == (2, 3, 100, 100)
    assert torch.equal(cropped, frames[:, :, 152:252, 310:410])
    with pytest.raises(ValueError, match="center-crop"):
        center_crop(frames, 500)


def test_split_square_crops_covers_a_wide_frame_with_two_squares():
    frames = torch.randint(0, 256, (4, 3, 405, 720), dtype=torch.uint8)
    crops, boxes = split_square_crops(frames, 256)
    assert crops.shape == (2, 4, 3, 256, 256)
    resized = resize_short_side(frames, 256, antialias=False)  # (4, 3, 256, 455)
    assert boxes.tolist() == [[0, 0, 256, 256], [0, 199, 256, 455]]
    for crop, (top, left, bottom, right) in zip(crops, boxes.tolist()):
        assert torch.equal(crop, resized[:, :, top:bottom, left:right])


def test_split_square_crops_follows_the_official_layout_for_square_tall_and_very_wide_frames():
    _, boxes = split_square_crops(torch.zeros(3, 64, 64, dtype=torch.uint8))
    assert boxes.tolist() == [[0, 0, 64, 64]]
    _, boxes = split_square_crops(torch.zeros(3, 100, 50, dtype=torch.uint8))
    assert boxes.tolist() == [[0, 0, 50, 50], [50, 0, 100, 50]]
    # Very wide: the evaluation resize caps the long side at twice the short side, then two crops at the ends.
    crops, boxes = split_square_crops(torch.zeros(3, 50, 260, dtype=torch.uint8), size=32)
    assert crops.shape == (2, 3, 32, 32)
    assert boxes.tolist() == [[0, 0, 32, 32], [0, 32, 32, 64]]
