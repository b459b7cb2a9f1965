"""Pictures: shared PCA basis, colour maps, forecast grids and GIFs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deltatok_hf.visualization import (
    depth_to_rgb,
    features_to_pca_images,
    fit_pca_basis,
    make_forecast_grid,
    save_forecast_gif,
    save_forecast_png,
    segmentation_to_rgb,
)


def _features(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_pca_basis_is_deterministic_and_sign_fixed():
    features = _features(0, 200, 16)
    first, second = fit_pca_basis(features), fit_pca_basis(features.clone())
    torch.testing.assert_close(first.components, second.components)
    assert (first.components.sum(0) > 0).all()
    # Flipping the data's sign does not flip the colours' orientation convention.
    flipped = fit_pca_basis(-features)
    assert (flipped.components.sum(0) > 0).all()


def test_pca_strongest_direction_comes_first():
    data = torch.zeros(500, 8)
    data[:, 3] = torch.linspace(-10, 10, 500)  # dominant direction
    data[:, 5] = torch.linspace(-1, 1, 500).roll(37)
    data += 0.01 * _features(1, 500, 8)
    basis = fit_pca_basis(data)
    assert basis.components[:, 0].abs().argmax() == 3


def test_shared_basis_gives_same_colours_for_same_features():
    context = _features(2, 2, 4, 16)  # (T, N, D) on a 2x2 grid
    samples = torch.cat([context[-1:], _features(3, 1, 4, 16)])  # sample 0 repeats the last context frame
    context_rgb, samples_rgb = features_to_pca_images([context, samples], (2, 2))
    assert context_rgb.shape == (2, 2, 2, 3) and context_rgb.dtype == np.uint8
    np.testing.assert_array_equal(context_rgb[-1], samples_rgb[0])
    assert not np.array_equal(samples_rgb[0], samples_rgb[1])


def test_project_rejects_wrong_grid():
    basis = fit_pca_basis(_features(4, 10, 8))
    with pytest.raises(ValueError, match="grid_size"):
        basis.project(_features(5, 6, 8), (2, 2))


def test_colour_maps():
    classes = segmentation_to_rgb(torch.tensor([[0, 1], [255, 1]]))
    assert classes.shape == (2, 2, 3) and classes.dtype == np.uint8
    assert (classes[1, 0] == 0).all() and (classes[0, 1] == classes[1, 1]).all()
    depth = depth_to_rgb(torch.tensor([[0.0, 5.0], [10.0, 10.0]]))
    assert depth.shape == (2, 2, 3) and not np.array_equal(depth[0, 0], depth[1, 1])


def test_forecast_grid_has_a_row_per_sample_and_a_column_per_time():
    num_context, num_samples, num_future, grid = 2, 3, 2, (2, 3)
    context = _features(6, num_context, 6, 8)
    future = _features(7, num_samples, num_future, 6, 8)
    frames = torch.randint(0, 256, (num_context, 32, 48, 3), dtype=torch.uint8)
    truth_frames = torch.randint(0, 256, (num_future, 32, 48, 3), dtype=torch.uint8)
    common = dict(
        context_features=context, future_features=future, grid_size=grid, context_timestamps=[0, 0.2],
        future_timestamps=[0.4, 0.6], context_frames=frames, cell_size=20,
    )  # fmt: skip
    without_truth = make_forecast_grid(**common)
    with_truth = make_forecast_grid(
        **common, ground_truth_frames=truth_frames, ground_truth_features=_features(8, num_future, 6, 8)
    )
    shown_two = make_forecast_grid(**common, max_samples_shown=2)
    assert isinstance(without_truth, Image.Image)
    # rows: frames, context, 3 samples, mean -> 6 rows; fewer samples shown -> shorter picture.
    assert shown_two.height < without_truth.height
    assert with_truth.height == without_truth.height  # truth fills the future columns of existing rows
    # Cells keep the frames' 3:2 aspect ratio and there are 4 columns of them.
    assert without_truth.width > 4 * 30
    with pytest.raises(ValueError, match="future_features"):
        make_forecast_grid(**{**common, "future_features": future[0]})


def test_png_and_gif_from_pipeline_output(tmp_path):
    from deltatok_hf.pipelines import DeltaWorldPipelineOutput

    output = DeltaWorldPipelineOutput(
        future_features=_features(9, 3, 2, 4, 8),
        mean_future_features=_features(9, 3, 2, 4, 8).mean(0),
        future_delta_tokens=_features(10, 3, 2, 8),
        context_delta_tokens=_features(11, 2, 8),
        context_features=_features(12, 2, 4, 8),
        context_timestamps=torch.tensor([0.0, 0.2]),
        future_timestamps=torch.tensor([0.4, 0.6]),
        grid_size=(2, 2),
        context_frames=torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8),
        task_maps={"segmentation": torch.randint(0, 4, (3, 2, 32, 32))},
        mean_task_maps={"segmentation": torch.randint(0, 4, (2, 32, 32))},
        context_task_maps={"segmentation": torch.randint(0, 4, (2, 32, 32))},
    )
    png = save_forecast_png([output, output], tmp_path / "grid.png", title="two crops")
    gif = save_forecast_gif(output, tmp_path / "grid.gif")
    picture = Image.open(png)
    assert picture.mode == "RGB" and picture.height > 2 * 100
    assert np.asarray(picture).std() > 10  # not a blank canvas
    animation = Image.open(gif)
    assert animation.n_frames == 4  # 2 context + 2 future times


def _fork_clip(seed: int, num_samples: int, true_mode: int = 1, num_modes: int = 3):
    """A stand-in for `deltatok_hf.demo.ForkDemoClip` (the drawing only reads these attributes)."""
    from types import SimpleNamespace

    generator = torch.Generator().manual_seed(seed)
    frames = lambda count: torch.randint(0, 256, (count, 16, 16, 3), dtype=torch.uint8, generator=generator)  # noqa: E731
    samples = frames(num_samples)
    return SimpleNamespace(
        context_frames=frames(4),
        context_timestamps=torch.arange(4) / 10,
        branch_frames=frames(num_modes),
        true_mode=true_mode,
        sample_frames=samples,
        sample_modes=torch.tensor([index % (num_modes + 1) - 1 for index in range(num_samples)]),
        mean_frame=samples.float().mean(0).to(torch.uint8),
    )


def test_fork_grid_has_a_row_per_clip_and_a_column_per_frame_branch_sample_and_mean():
    from deltatok_hf.visualization import make_fork_grid

    names = ("left", "straight", "right")
    one = make_fork_grid([_fork_clip(0, 6)], names, max_samples_shown=4, cell_size=20)
    two = make_fork_grid([_fork_clip(0, 6), _fork_clip(1, 6)], names, max_samples_shown=4, cell_size=20)
    fewer = make_fork_grid([_fork_clip(0, 6)], names, max_samples_shown=2, cell_size=20)
    assert two.height > one.height and two.width == one.width
    # 4 context + 3 branches + 4 samples + mean = 12 columns of 20 px cells (+ margins); 2 fewer with 2 samples shown.
    assert one.width - fewer.width == 2 * (20 + 4)
    assert one.width > 12 * 20
    # The first sample's frame is in the picture, at the first sample column, unchanged (nearest-neighbour, 1:1 scale).
    clip = _fork_clip(0, 6)
    picture = np.asarray(make_fork_grid([clip], names, max_samples_shown=4, cell_size=16))
    sample = clip.sample_frames[0].numpy()
    found = [
        (top, left)
        for top in range(picture.shape[0] - 15)
        for left in range(picture.shape[1] - 15)
        if picture[top, left, 0] == sample[0, 0, 0] and np.array_equal(picture[top : top + 16, left : left + 16], sample)
    ]
    assert found
    with pytest.raises(ValueError, match="at least one clip"):
        make_fork_grid([], names)


def test_fork_png_and_gif(tmp_path):
    from deltatok_hf.visualization import save_fork_gif, save_fork_png

    clips = [_fork_clip(2, 5), _fork_clip(3, 5, true_mode=0)]
    png = save_fork_png(clips, tmp_path / "fork.png", ("left", "straight", "right"), title="fork")
    assert Image.open(png).mode == "RGB" and np.asarray(Image.open(png)).std() > 10
    gif = save_fork_gif(clips, tmp_path / "fork.gif", max_samples_shown=3)
    animation = Image.open(gif)
    assert animation.n_frames == 5  # 4 context frames + the future
    with pytest.raises(ValueError, match="fps"):
        save_fork_gif(clips, tmp_path / "bad.gif", fps=0)


def test_forecast_grid_adds_rgb_rows_when_decoded_frames_are_given():
    context = _features(13, 2, 4, 8)
    future = _features(14, 3, 2, 4, 8)
    common = dict(
        context_features=context, future_features=future, grid_size=(2, 2), context_timestamps=[0, 0.2],
        future_timestamps=[0.4, 0.6], cell_size=20,
    )  # fmt: skip
    plain = make_forecast_grid(**common)
    rgb = torch.randint(0, 256, (3, 2, 32, 32, 3), dtype=torch.uint8)
    with_rgb = make_forecast_grid(**common, future_frames=rgb, mean_future_frames=rgb[0])
    row = 20 + 4  # cell + margin
    assert with_rgb.height - plain.height == 4 * row  # 3 sample rows + the mean's
    one_shown = make_forecast_grid(**common, max_samples_shown=1)
    assert make_forecast_grid(**common, future_frames=rgb, max_samples_shown=1).height - one_shown.height == row
