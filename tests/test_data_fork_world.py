"""The fork world: a colourful disc drives to a junction and takes one of K equally likely branches."""

import math

import pytest
import torch

from deltatok_hf.data import ForkWorld, collate_clips, fork_mode_coverage, locate_fork_object, read_fork_mode
from deltatok_hf.data.synthetic import turn_on_screen


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These arrays are tiny: on a shared 2-core machine torch's second intra-op thread makes them ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blur_like_a_decoder(frames: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Average `factor x factor` blocks and upsample bilinearly: a frame as blurry as a coarse decoder would draw it."""
    low = torch.nn.functional.avg_pool2d(frames.float(), factor)
    return torch.nn.functional.interpolate(low, scale_factor=factor, mode="bilinear", align_corners=False)


def test_items_have_the_documented_shapes_and_types():
    world = ForkWorld(num_items=5, num_context_frames=4, num_future_frames=1, size=64, num_modes=3)
    item = world[0]
    assert len(world) == 5
    assert item["frames"].shape == (5, 3, 64, 64) and item["frames"].dtype == torch.uint8
    assert item["timestamps"].dtype == torch.float32
    assert item["timestamps"].tolist() == pytest.approx([index / 10 for index in range(5)])
    assert isinstance(item["mode"], int) and 0 <= item["mode"] < 3
    assert item["all_futures"].shape == (3, 1, 3, 64, 64) and item["all_futures"].dtype == torch.uint8
    assert item["positions"].shape == (5, 2) and item["mode_positions"].shape == (3, 1, 2)
    assert item["object_colour"].shape == (3,) and item["object_colour"].dtype == torch.uint8
    assert item["background"].shape == (3, 64, 64) and item["background"].dtype == torch.uint8


def test_the_drawn_branch_is_the_clip_future_and_branches_are_a_patch_apart():
    world = ForkWorld(num_items=16, num_future_frames=1, seed=2)
    for index in range(16):
        item = world[index]
        assert torch.equal(item["all_futures"][item["mode"]], item["frames"][4:])
        assert torch.allclose(item["mode_positions"][item["mode"]], item["positions"][4:])
        # After one step neighbouring branches are 16 * sqrt(2) px apart: more than a 16 px patch.
        separations = torch.cdist(item["mode_positions"][:, 0], item["mode_positions"][:, 0])
        assert separations[~torch.eye(3, dtype=torch.bool)].min() > 16
        futures = item["all_futures"].flatten(1).float()
        assert torch.cdist(futures, futures)[~torch.eye(3, dtype=torch.bool)].min() > 1000


def test_context_moves_steadily_then_turns_left_straight_or_right():
    world = ForkWorld(num_items=20, num_context_frames=4, num_future_frames=1, seed=0)
    turned = {0: 90.0, 1: 0.0, 2: -90.0}
    for index in range(20):
        item = world[index]
        positions = item["positions"]  # (5, 2)
        context_steps = torch.diff(positions[:4], dim=0)  # (3, 2)
        assert torch.allclose(context_steps, context_steps[0].expand_as(context_steps), atol=1e-4)
        assert torch.linalg.vector_norm(context_steps[0]) == pytest.approx(world.speed, abs=1e-4)
        heading, branch = context_steps[0], positions[4] - positions[3]
        # Signed turn as seen on screen (y down): positive is counter-clockwise (a left turn).
        angle = math.degrees(math.atan2(-(heading[0] * branch[1] - heading[1] * branch[0]), float(heading @ branch)))
        assert angle == pytest.approx(turned[item["mode"]], abs=1e-3)
        # The rendered disc is where the positions say, found from the pixels alone.
        found, area = locate_fork_object(item["frames"], item["object_colour"], item["background"])
        assert torch.allclose(found, positions, atol=0.3)
        assert torch.all(area > 0.9 * math.pi * world.radius**2)


def test_modes_are_equally_likely_and_independent_of_the_heading():
    world = ForkWorld(num_items=3000, num_modes=3, seed=1)
    scenes = [world.sample_scene(index) for index in range(len(world))]
    modes = torch.tensor([scene["mode"] for scene in scenes])
    headings = torch.tensor([scene["heading"] for scene in scenes])
    assert torch.all((torch.bincount(modes, minlength=3) / 3000 - 1 / 3).abs() < 0.035)  # ~4 standard deviations
    for heading in range(4):
        frequencies = torch.bincount(modes[headings == heading], minlength=3).float()
        frequencies /= frequencies.sum()
        assert torch.all((frequencies - 1 / 3).abs() < 0.07)


def test_objects_are_colourful_and_the_background_is_textured():
    world = ForkWorld(num_items=20, seed=4)
    hues = set()
    for index in range(20):
        item = world[index]
        colour = item["object_colour"].int()
        assert colour.max() - colour.min() >= 250  # fully saturated
        hues.add(tuple(colour.tolist()))
        background = item["background"].float()
        assert background.std(dim=(1, 2)).min() > 4  # not flat
        assert (background.amax(dim=0) - background.amin(dim=0)).max() < 100  # never as saturated as the object
        assert torch.linalg.vector_norm(background - colour[:, None, None], dim=0).min() > 100
    assert len(hues) >= 15  # random hues: a few near-collisions round to the same colour


def test_items_are_a_pure_function_of_seed_and_index():
    first, again, other = ForkWorld(8, seed=5), ForkWorld(8, seed=5), ForkWorld(8, seed=6)
    assert all(torch.equal(first[index]["frames"], again[index]["frames"]) for index in range(8))
    assert torch.equal(first[-1]["frames"], first[7]["frames"])
    assert torch.equal(first[3]["frames"], ForkWorld(100, seed=5)[3]["frames"])  # independent of the dataset size
    assert any(not torch.equal(first[index]["frames"], other[index]["frames"]) for index in range(8))
    assert not torch.equal(first[0]["background"], first[1]["background"])
    with pytest.raises(IndexError):
        first[8]


@pytest.mark.parametrize("num_modes", [2, 3, 4])
def test_the_mode_reader_recovers_every_branch_from_sharp_and_blurry_pixels(num_modes):
    world = ForkWorld(num_items=12, num_future_frames=2, size=64, num_modes=num_modes, speed=11, seed=7)
    for index in range(12):
        item = world[index]
        for step in range(2):
            futures = item["all_futures"][:, step]  # (num_modes, 3, 64, 64)
            expected = torch.arange(num_modes)
            assert torch.equal(world.read_mode(futures, item, step=step), expected)
            assert torch.equal(world.read_mode(blur_like_a_decoder(futures), item, step=step), expected)


def test_the_mode_reader_answers_none_without_a_disc_on_a_branch():
    world = ForkWorld(num_items=10, seed=3)
    for index in range(10):
        item = world[index]
        background = item["background"]
        blank = torch.stack([background, torch.zeros_like(background), torch.full_like(background, 128)])
        assert world.read_mode(blank, item).tolist() == [-1, -1, -1]
        # The disc still at the junction (a "nothing moves" forecast) is on no branch.
        assert world.read_mode(item["frames"][3], item).item() == -1
    # A disc that turned 45 degrees, halfway between the left and the straight branch, is on neither.
    item = world[0]
    junction, heading = item["positions"][3], item["positions"][3] - item["positions"][2]
    between = junction + turn_on_screen(heading, torch.tensor(45.0))
    frame = world.render(between[None], item["object_colour"], item["background"])
    assert world.read_mode(frame, item).item() == -1
    # Nudged towards the left branch, it is read as left.
    towards_left = junction + turn_on_screen(heading, torch.tensor(75.0))
    frame = world.render(towards_left[None], item["object_colour"], item["background"])
    assert world.read_mode(frame, item).item() == 0


def test_read_fork_mode_checks_its_inputs():
    item = ForkWorld(1)[0]
    with pytest.raises(ValueError, match="mode_positions"):
        read_fork_mode(item["frames"], item["object_colour"], item["background"], torch.zeros(3))
    with pytest.raises(ValueError, match="background"):
        read_fork_mode(item["frames"], item["object_colour"], item["background"][:, :8], item["mode_positions"][:, 0])


def test_coverage_counts_the_modes_some_sample_shows():
    assert fork_mode_coverage(torch.tensor([0, 0, 2, -1]), 3) == pytest.approx(2 / 3)
    assert fork_mode_coverage(torch.tensor([1, 1, 1]), 3) == pytest.approx(1 / 3)
    assert fork_mode_coverage(torch.tensor([2, 0, 1, 0]), 3) == 1.0
    assert fork_mode_coverage(torch.tensor([-1, -1]), 3) == 0.0
    with pytest.raises(ValueError, match="Mode indices"):
        fork_mode_coverage(torch.tensor([3]), 3)


def test_batches_collate_and_the_datasets_version_has_the_same_rows(tmp_path):
    world = ForkWorld(num_items=3, num_future_frames=2, speed=12)
    batch = collate_clips([world[index] for index in range(3)])
    assert batch["frames"].shape == (3, 6, 3, 64, 64) and batch["all_futures"].shape == (3, 3, 2, 3, 64, 64)
    table = world.to_hf_dataset(cache_dir=str(tmp_path))
    assert len(table) == 3 and table.features["frames"].shape == (6, 3, 64, 64)
    assert table.features["frames"].dtype == "uint8" and table.features["all_futures"].dtype == "uint8"
    rows = table.with_format("torch")  # datasets widens integer arrays to int64 when formatting
    for index in range(3):
        row, item = rows[index], world[index]
        for key in ("frames", "all_futures", "background", "object_colour"):
            assert torch.equal(row[key], item[key].long()), key
        for key in ("timestamps", "positions", "mode_positions"):
            assert torch.equal(row[key], item[key]), key
        assert int(row["mode"]) == item["mode"]


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match=r"speed <= \d"):
        ForkWorld(4, num_context_frames=4, num_future_frames=3)  # 16 px steps do not fit 64 px
    with pytest.raises(ValueError, match="num_context_frames"):
        ForkWorld(4, num_context_frames=1)
    with pytest.raises(ValueError, match="seed"):
        ForkWorld(4, seed=-1)
    with pytest.raises(ValueError, match="num_modes"):
        ForkWorld(4, num_modes=0)
