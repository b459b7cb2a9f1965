"""Choosing a few diverse futures among many drawn ones, in token space (select-then-decode)."""

from __future__ import annotations

import torch


SELECTION_METHODS = ("farthest_point",)


def farthest_point_indices(candidates: torch.Tensor, num_selected: int) -> torch.Tensor:
    """
    Greedy farthest-point selection: start from the candidate nearest to the candidates' mean (a typical future),
    then repeatedly add the candidate farthest (Euclidean) from everything chosen so far. Deterministic.

    Args:
        candidates (`torch.Tensor` of shape `(batch_size, num_candidates, dim)`): one vector per candidate, e.g. a
            rollout's delta tokens flattened over its steps.
        num_selected (`int`): how many to keep, `1 <= num_selected <= num_candidates`.

    Returns:
        `torch.LongTensor` of shape `(batch_size, num_selected)`: distinct candidate indices, in the order chosen.
    """
    batch_size, num_candidates, _ = candidates.shape
    if not 1 <= num_selected <= num_candidates:
        raise ValueError(f"num_selected must be in [1, {num_candidates}] (the number of candidates), got {num_selected}.")
    candidates = candidates.float()
    distances = torch.cdist(candidates, candidates)  # (batch_size, num_candidates, num_candidates)
    to_mean = (candidates - candidates.mean(1, keepdim=True)).norm(dim=-1)  # (batch_size, num_candidates)
    chosen = [to_mean.argmin(1)]
    nearest_chosen = distances.gather(1, chosen[0][:, None, None].expand(-1, 1, num_candidates))[:, 0]
    nearest_chosen.scatter_(1, chosen[0][:, None], -1.0)
    for _ in range(num_selected - 1):
        following = nearest_chosen.argmax(1)  # (batch_size,)
        chosen.append(following)
        from_following = distances.gather(1, following[:, None, None].expand(-1, 1, num_candidates))[:, 0]
        nearest_chosen = torch.minimum(nearest_chosen, from_following)
        # Chosen ones are marked below every distance, so even identical candidates are never picked twice.
        nearest_chosen.scatter_(1, following[:, None], -1.0)
    return torch.stack(chosen, dim=1)


__all__ = ["SELECTION_METHODS", "farthest_point_indices"]
