"""The synthetic multimodal motion dataset used to check Best-of-Many mode coverage."""

import pytest
import torch

from deltatok_hf.data import SyntheticMultimodalMotion, collate_clips, render_trajectory


def test_items_have_the_documented_shapes_and_types():
    dataset = SyntheticMultimodalMotion(num_videos=5, num_frames=7, num_context_frames=4, size=64, num_modes=4)
    item = dataset[0]
    assert len(dataset) == 5
    assert item["frames"].shape == (7, 3, 64, 64) and item["frames"].dtype == torch.uint8
    assert item["timestamps"].dtype == torch.float32 and item["timestamps"].tolist() == pytest.approx(
        [index / 10 for index in range(7)]
    )
    assert isinstance(item["mode"], int) and 0 <= item["mode"] < 4
    assert item["all_futures"].shape == (4, 3, 3, 64, 64) and item["all_futures"].dtype == torch.uint8


def test_all_futures_at_the_mode_equals_the_actual_future_and_modes_differ():
    dataset = SyntheticMultimodalMotion(num_videos=20, seed=3)
    for index in range(20):
        item = dataset[index]
        assert torch.equal(item["all_futures"][item["mode"]], item["frames"][4:])
        futures = item["all_futures"].flatten(1)
        for first in range(4):
            for second in range(first + 1, 4):
                assert not torch.equal(futures[first], futures[second])


def test_disc_moves_steadily_in_context_then_along_its_mode_direction():
    dataset = SyntheticMultimodalMotion(num_videos=10, seed=0)
    for index in range(10):
        item = dataset[index]
        positions = item["positions"]  # (7, 2)
        context_steps = torch.diff(positions[:4], dim=0)
        assert torch.allclose(context_steps, context_steps[0].expand_as(context_steps), atol=1e-4)
        future_steps = torch.diff(positions[3:], dim=0)
        assert torch.allclose(future_steps, (dataset.speed * dataset.mode_directions[item["mode"]]).expand_as(future_steps), atol=1e-4)
        # The rendered disc's brightness centroid follows the positions.
        frames = item["frames"][:, 0].float() - 16  # (7, 64, 64), background removed
        coordinates = torch.arange(64, dtype=torch.float32)
        centroid_x = (frames.sum(dim=1) * coordinates).sum(dim=1) / frames.sum(dim=(1, 2))
        centroid_y = (frames.sum(dim=2) * coordinates).sum(dim=1) / frames.sum(dim=(1, 2))
        assert torch.allclose(torch.stack([centroid_x, centroid_y], dim=1), positions, atol=0.1)


def test_modes_are_equally_likely_and_independent_of_the_context():
    dataset = SyntheticMultimodalMotion(num_videos=4000, num_modes=4, seed=1)
    modes = torch.tensor([dataset.sample_trajectory(index)[1] for index in range(len(dataset))])
    counts = torch.bincount(modes, minlength=4).float()
    assert torch.all((counts / 4000 - 0.25).abs() < 0.03)  # ~4 standard deviations
    # The mode is not predictable from the context direction.
    context_directions = torch.stack(
        [torch.diff(dataset.sample_trajectory(index)[0], dim=0)[0] for index in range(400)]
    )
    rightward = context_directions[:, 0] > 0
    assert abs(modes[:400][rightward].float().mean() - modes[:400][~rightward].float().mean()) < 0.4


def test_items_are_deterministic_by_seed_and_index():
    first, again, other = SyntheticMultimodalMotion(8, seed=5), SyntheticMultimodalMotion(8, seed=5), SyntheticMultimodalMotion(8, seed=6)
    assert all(torch.equal(first[index]["frames"], again[index]["frames"]) for index in range(8))
    assert torch.equal(first[-1]["frames"], first[7]["frames"])
    assert any(not torch.equal(first[index]["frames"], other[index]["frames"]) for index in range(8))
    assert not torch.equal(first[0]["frames"], first[1]["frames"])
    with pytest.raises(IndexError):
        first[8]


def test_render_trajectory_draws_a_disc_at_each_position():
    frames = render_trajectory(torch.tensor([[10.0, 20.0], [40.0, 30.0]]), size=48, radius=4.0, foreground=255, background=0)
    assert frames.shape == (2, 3, 48, 48) and frames.dtype == torch.uint8
    assert frames[0, :, 20, 10].tolist() == [255, 255, 255] and frames[0, 0, 20, 20] == 0
    assert frames[1, 0, 30, 40] == 255 and frames[1, 0, 20, 10] == 0
    assert torch.equal(frames[:, 0], frames[:, 2])
    with pytest.raises(ValueError, match="positions"):
        render_trajectory(torch.zeros(3))


def test_batches_collate_with_modes_and_futures():
    dataset = SyntheticMultimodalMotion(num_videos=3)
    batch = collate_clips([dataset[index] for index in range(3)])
    assert batch["frames"].shape == (3, 7, 3, 64, 64)
    assert batch["mode"].shape == (3,) and batch["all_futures"].shape == (3, 4, 3, 3, 64, 64)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="num_frames"):
        SyntheticMultimodalMotion(4, num_frames=4, num_context_frames=4)
    with pytest.raises(ValueError, match="too small"):
        SyntheticMultimodalMotion(4, size=16, radius=4, speed=3)
