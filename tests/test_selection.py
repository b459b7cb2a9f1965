"""Select-then-decode internals: the selection methods, and the rollout's shared context (random tiny weights:
mechanics and parity, never quality)."""

from __future__ import annotations

import pytest
import torch

from deltatok_hf.pipelines import (
    SELECTION_METHODS,
    candidate_weights,
    farthest_point_indices,
    k_medoids_indices,
    select_candidates,
)


def clustered_points(sizes=(40, 30, 20, 10), outliers=((40.0, 40.0), (-30.0, 2.0)), seed=0):
    """Four tight clusters of the given sizes at the corners of a 10 x 10 square, plus far outliers (last)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    groups = [centre + 0.3 * torch.randn(size, 2, generator=generator) for centre, size in zip(centres, sizes)]
    points = torch.cat(groups + [torch.tensor(outliers)])
    labels = torch.cat([torch.full((size,), index) for index, size in enumerate(sizes)] + [torch.full((len(outliers),), -1)])
    return points[None], labels


def test_k_medoids_picks_one_typical_future_per_mode_largest_first_and_ignores_outliers():
    points, labels = clustered_points()
    chosen, weights = select_candidates(points, 4, "k_medoids")
    assert labels[chosen[0]].tolist() == [0, 1, 2, 3]  # one per cluster, the largest group first, no outlier
    # Each weight is the share of candidates nearest to the chosen one: its cluster and the outlier nearest to it
    # ((-30, 2) is nearest to the cluster at the origin, (40, 40) to the one at (10, 10)).
    torch.testing.assert_close(weights[0], torch.tensor([41.0, 30.0, 20.0, 11.0]) / 102)
    # Medoids are typical: each lies within its cluster's spread of the centre.
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    assert (points[0, chosen[0]] - centres).norm(dim=1).max() < 1.0
    assert torch.equal(k_medoids_indices(points, 4), chosen)


def test_farthest_point_spreads_out_and_reaches_the_outliers():
    points, labels = clustered_points()
    chosen, weights = select_candidates(points, 4, "farthest_point")
    assert torch.equal(chosen, farthest_point_indices(points, 4))
    assert (labels[chosen[0]] == -1).sum() == 2  # the extremes: both outliers are taken
    assert torch.allclose(weights, candidate_weights(points, chosen))
    assert torch.allclose(weights.sum(1), torch.ones(1))
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    noise = 0.1 * torch.randn(15, 2, generator=torch.Generator().manual_seed(0))
    three = (centres.repeat_interleave(5, 0) + noise)[None]
    assert sorted((farthest_point_indices(three, 3)[0] // 5).tolist()) == [0, 1, 2]  # one per cluster


@pytest.mark.parametrize("method", SELECTION_METHODS)
def test_selection_is_distinct_even_for_identical_candidates_and_batched(method):
    identical = torch.zeros(2, 6, 3)
    chosen, weights = select_candidates(identical, 6, method)
    assert all(sorted(row.tolist()) == list(range(6)) for row in chosen)
    assert torch.allclose(weights.sum(1), torch.ones(2))
    # Clips of a batch are selected independently: the same as one at a time.
    points = torch.randn(3, 50, 8, generator=torch.Generator().manual_seed(1))
    batched, batched_weights = select_candidates(points, 5, method)
    for index in range(3):
        single, single_weights = select_candidates(points[index : index + 1], 5, method)
        assert torch.equal(batched[index], single[0])
        assert torch.allclose(batched_weights[index], single_weights[0])
    assert all(len(set(row.tolist())) == 5 for row in batched)


def test_selection_refuses_bad_requests_by_name():
    points = torch.randn(1, 5, 2)
    with pytest.raises(ValueError, match="num_selected"):
        select_candidates(points, 6)
    with pytest.raises(ValueError, match="num_selected"):
        k_medoids_indices(points, 0)
    with pytest.raises(ValueError, match="Unknown selection method 'kmeans'"):
        select_candidates(points, 2, "kmeans")
    with pytest.raises(ValueError, match="candidates must be"):
        farthest_point_indices(points[0], 2)


def test_rollout_over_shared_context_equals_copying_it_per_sample(tiny_world):
    """The predictor's rollout path (context keys/values per clip, each sample's own tokens apart) gives what the
    plain path gives when the context is copied for every sample and the own tokens appended to it."""
    predictor = tiny_world.predictor
    clips, samples, steps, width = 2, 5, 3, tiny_world.config.delta_token_size
    generator = torch.Generator().manual_seed(0)
    context = torch.randn(clips, 4, width, generator=generator)
    context_times = torch.tensor([0.0, 0.2, 0.4, 0.6]).expand(clips, -1)
    shared = predictor.project_context(context, context_times)
    copied = [(key.repeat_interleave(samples, 0), value.repeat_interleave(samples, 0)) for key, value in shared]
    own = None
    with torch.no_grad():
        for step in range(steps):
            queries = torch.randn(clips * samples, 1, tiny_world.config.hidden_size, generator=generator)
            times = torch.full((clips * samples, 1), 0.8 + 0.2 * step)
            fast = predictor(queries, times, context_states=shared, sample_states=own, num_samples=samples)
            plain = predictor(queries, times, context_states=copied)
            torch.testing.assert_close(fast, plain, rtol=0, atol=1e-6)
            new = predictor.project_context(fast, times)
            own = new if own is None else [(torch.cat((k, nk), 2), torch.cat((v, nv), 2)) for (k, v), (nk, nv) in zip(own, new)]
            copied = [(torch.cat((k, nk), 2), torch.cat((v, nv), 2)) for (k, v), (nk, nv) in zip(copied, new)]
        with pytest.raises(ValueError, match="attention_mask"):
            predictor(queries, times, context_states=shared, sample_states=own, num_samples=samples, attention_mask=torch.zeros(1))


def test_patch_rope_tables_are_reused_only_outside_augmentation_and_inference_mode(tiny_tokenizer):
    tokenizer = tiny_tokenizer.eval()
    first = tokenizer.position_embeddings(32, 32)
    assert tokenizer.position_embeddings(32, 32)[0] is first[0]  # eval: computed once per size
    with torch.inference_mode():
        inside = tokenizer.position_embeddings(32, 32)
    assert inside[0] is not first[0] and torch.equal(inside[0], first[0])
    # Tables made under inference_mode never reach autograd: a training step after an inference call works.
    tokenizer.train()
    features = torch.randn(2, 2, 4, tokenizer.config.hidden_size, requires_grad=True)
    tokenizer(features=features, grid_size=(2, 2)).loss.backward()
    assert features.grad is not None
    if tokenizer.rope_augmentation_active:  # train-mode augmentation: a fresh random draw every call
        assert not torch.equal(tokenizer.position_embeddings(32, 32)[0], tokenizer.position_embeddings(32, 32)[0])
