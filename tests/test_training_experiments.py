"""The helpers of the synthetic experiments and of the ablation ladder (`deltatok_hf.training.experiments` /
`.ablation`), which the example scripts import instead of importing each other. Random weights, synthetic clips:
these tests prove mechanics (shapes, order, seeding, checks), not quality. The scripts themselves run end to end in
`tests/test_fork_world_learning.py`, `tests/test_model_cards.py`, `tests/test_training.py` and `tests/test_dinoworld.py`."""

import os

import pytest
import torch

from deltatok_hf import DeltaTokConfig, DeltaTokModel
from deltatok_hf.data import ForkWorld
from deltatok_hf.training.ablation import RUNGS, build_memory_rung, peak_training_memory
from deltatok_hf.training.experiments import encode_dataset, feature_pairs, fit


def test_fit_reproduces_its_losses_for_a_seed_and_lowers_a_simple_loss():
    inputs = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5]])  # (64, 1)

    def run(seed):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        losses = fit(
            model, lambda index: (model(inputs[index]) - targets[index]).square().mean(), len(inputs), 60,
            batch_size=8, learning_rate=0.05, weight_decay=0.0, warmup_steps=5, seed=seed,
        )  # fmt: skip
        return model, losses

    model, losses = run(seed=0)
    assert len(losses) == 60 and not model.training
    assert sum(losses[-10:]) / 10 < 0.2 * sum(losses[:10]) / 10
    assert run(seed=0)[1] == losses  # same seed, same batches, same losses
    assert run(seed=1)[1] != losses


@pytest.mark.parametrize("name, value", [("batch_size", 0), ("warmup_steps", -1)])
def test_fit_rejects_a_bad_schedule_value_by_name(name, value):
    model = torch.nn.Linear(2, 1)
    schedule = {"batch_size": 4, "learning_rate": 1e-3, "weight_decay": 0.0, "warmup_steps": 0, "seed": 0}
    with pytest.raises(ValueError, match=f"{name} must be >= .*got {value}"):
        fit(model, lambda index: model(torch.zeros(len(index), 2)).sum(), 8, 1, **{**schedule, name: value})


def test_feature_pairs_start_from_the_black_frame_and_follow_every_branch():
    num_items, num_frames, num_modes, num_future = 2, 5, 3, 1
    clips = torch.randn(num_items, num_frames, 4, 8)  # (items, T, N, D)
    futures = torch.randn(num_items, num_modes, num_future, 4, 8)  # (items, K, F, N, D)
    black = torch.randn(4, 8)
    pairs = feature_pairs(clips, futures, black, num_context_frames=4)
    assert pairs.shape == (num_items * 4 + num_items * num_modes * num_future, 2, 4, 8)
    torch.testing.assert_close(pairs[0, 0], black)  # item 0: black -> first frame
    torch.testing.assert_close(pairs[0, 1], clips[0, 0])
    torch.testing.assert_close(pairs[3], torch.stack((clips[0, 2], clips[0, 3])))  # last context pair of item 0
    branch_pairs = pairs[num_items * 4 :].unflatten(0, (num_modes, num_items))  # (K, items, 2, N, D)
    torch.testing.assert_close(branch_pairs[2, 1, 0], clips[1, 3])  # the junction ...
    torch.testing.assert_close(branch_pairs[2, 1, 1], futures[1, 2, 0])  # ... to branch 2's first future frame


def test_encode_dataset_gives_every_branch_its_tokens_and_the_taken_branch_matches_the_clip():
    world = ForkWorld(3, num_context_frames=4, num_future_frames=1, size=64, seed=0)
    tokenizer = DeltaTokModel(DeltaTokConfig.tiny(use_rope_augmentation=False)).eval()
    cache = encode_dataset(tokenizer, world, batch_size=2)  # two batches
    num_items, num_frames, token_size = cache["delta_tokens"].shape
    assert (num_items, num_frames) == (3, 5) and cache["timestamps"].shape == (3, 5)
    assert cache["mode_tokens"].shape == (3, world.num_modes, token_size)
    assert cache["mode_features"].shape[:2] == (3, world.num_modes)
    assert cache["last_context_features"].shape == cache["mode_features"][:, 0].shape
    # The clip's own future frame is the branch it took: same token as that branch's (up to float noise).
    taken = cache["mode_tokens"][torch.arange(3), cache["modes"]]  # (items, D_token)
    torch.testing.assert_close(taken, cache["delta_tokens"][:, 4], atol=1e-5, rtol=1e-4)


def test_ablation_rungs_are_checked_before_anything_runs():
    assert RUNGS == ("dinoworld", "dinoworld_bom", "frame_tokens", "delta_tokens")
    with pytest.raises(ValueError, match="rung must be one of .*got 'patches'"):
        build_memory_rung("patches", "tiny")
    with pytest.raises(ValueError, match=r"spec\['sizes'\] must be one of .*got 'huge'"):
        peak_training_memory({"rung": "dinoworld", "sizes": "huge"})


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak RSS reset needs Linux /proc")
def test_peak_training_memory_runs_its_worker_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the fresh process finds this package, not a script beside it
    run = peak_training_memory({"rung": "dinoworld", "sizes": "tiny"})
    assert run["peak_growth_bytes"] > 0 and run["step_seconds"] > 0
