"""Choosing a few diverse futures among many drawn ones, in token space (select-then-decode).

Every method works on the pairwise Euclidean distances of the candidates (computed once) and returns distinct
candidate indices; [`select_candidates`] also gives each chosen one's weight, the share of the candidates nearest to
it.
"""

from __future__ import annotations

import torch


SELECTION_METHODS = ("k_medoids", "farthest_point")


def _check_selection(candidates: torch.Tensor, num_selected: int) -> None:
    if not isinstance(candidates, torch.Tensor) or candidates.ndim != 3:
        shape = tuple(candidates.shape) if isinstance(candidates, torch.Tensor) else type(candidates).__name__
        raise ValueError(f"candidates must be a (batch_size, num_candidates, dim) tensor, got {shape}.")
    if isinstance(num_selected, bool) or not isinstance(num_selected, int) or not 1 <= num_selected <= candidates.shape[1]:
        raise ValueError(
            f"num_selected must be an integer in [1, {candidates.shape[1]}] (the number of candidates), got {num_selected!r}."
        )


def _pairwise_distances(candidates: torch.Tensor) -> torch.Tensor:
    """`(batch, n, dim)` -> `(batch, n, n)` float32 Euclidean distances (symmetric: row i = distances from i), as
    `sqrt(|a|² + |b|² - 2 a·b)` with one batched matmul."""
    candidates = candidates.float()
    squared = candidates.square().sum(-1)  # (batch, n)
    # One (batch, n, n) buffer, filled by the matmul and finished in place.
    products = torch.baddbmm(squared[:, :, None], candidates, candidates.transpose(1, 2), alpha=-2)
    return products.add_(squared[:, None, :]).clamp_min_(0).sqrt_()


def _rows(distances: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Distances from each chosen candidate to every candidate: `(batch, num_chosen, n)`."""
    return distances.gather(1, chosen[:, :, None].expand(-1, -1, distances.shape[2]))


def _assign(distances: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """
    Cluster of every candidate: the position in `chosen` of its nearest chosen candidate `(batch, n)`. A chosen
    candidate always belongs to its own cluster, even when another chosen one is identical to it, so none is empty.
    """
    labels = _rows(distances, chosen).min(1).indices
    return labels.scatter(1, chosen, torch.arange(chosen.shape[1], device=chosen.device).expand_as(chosen))


def _farthest_point(distances: torch.Tensor, num_selected: int) -> torch.Tensor:
    # Start from the candidate with the least total distance to the others (a typical future).
    chosen = [distances.sum(2).argmin(1)]
    nearest_chosen = _rows(distances, chosen[0][:, None])[:, 0]
    for _ in range(num_selected - 1):
        # Chosen ones are marked below every distance, so even identical candidates are never picked twice.
        nearest_chosen = nearest_chosen.scatter(1, chosen[-1][:, None], -1.0)
        following = nearest_chosen.argmax(1)  # (batch,)
        chosen.append(following)
        nearest_chosen = torch.minimum(nearest_chosen, _rows(distances, following[:, None])[:, 0])
    return torch.stack(chosen, dim=1)


def _k_medoids(distances: torch.Tensor, num_selected: int, max_iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Medoids `(batch, k)` and every candidate's cluster `(batch, n)` (see [`k_medoids_indices`])."""
    # Greedy build: the first medoid has the least total distance to all; each next one lowers the total distance of
    # every candidate to its nearest medoid the most.
    first = distances.sum(2).argmin(1)  # (batch,)
    chosen = [first]
    nearest = _rows(distances, first[:, None])[:, 0]  # (batch, n): distance to the nearest medoid so far
    taken = torch.zeros_like(nearest, dtype=torch.bool).scatter_(1, first[:, None], True)
    scratch = torch.empty_like(distances)  # one (batch, n, n) buffer for every build step
    for _ in range(num_selected - 1):
        total = torch.minimum(nearest[:, None, :], distances, out=scratch).sum(2)  # (batch, n): the total if i joined
        following = total.masked_fill_(taken, float("inf")).argmin(1)
        chosen.append(following)
        taken.scatter_(1, following[:, None], True)
        nearest = torch.minimum(nearest, _rows(distances, following[:, None])[:, 0])
    medoids = torch.stack(chosen, dim=1)  # (batch, selected)
    # Alternating refinement: assign to the nearest medoid, move each medoid to the member of its group with the least
    # total distance to the group, until nothing moves.
    labels = _assign(distances, medoids)
    for _ in range(max_iterations):
        members = _membership(labels, num_selected)  # (batch, k, n)
        within = (members @ distances).masked_fill_(members == 0, float("inf"))  # (batch, k, n): total to group k
        updated = within.argmin(2)
        if torch.equal(updated, medoids):
            break
        medoids = updated
        labels = _assign(distances, medoids)
    return medoids, labels


def _membership(labels: torch.Tensor, num_selected: int) -> torch.Tensor:
    """Clusters `(batch, n)` -> float32 membership `(batch, num_selected, n)` (1 where candidate j is in cluster k)."""
    batch_size, num_candidates = labels.shape
    return torch.zeros(batch_size, num_selected, num_candidates, device=labels.device).scatter_(1, labels[:, None], 1.0)


def _weights(labels: torch.Tensor, num_selected: int) -> torch.Tensor:
    """Clusters `(batch, n)` -> the share of the candidates in each `(batch, num_selected)`."""
    return _membership(labels, num_selected).mean(2)


def farthest_point_indices(candidates: torch.Tensor, num_selected: int) -> torch.Tensor:
    """
    Greedy farthest-point selection: start from the candidate with the least total distance to the others (a typical
    future), then repeatedly add the candidate farthest (Euclidean) from everything chosen so far. Spreads the choice
    as wide as it goes, outliers included. Deterministic.

    Args:
        candidates (`torch.Tensor` of shape `(batch_size, num_candidates, dim)`): one vector per candidate, e.g. a
            rollout's delta tokens flattened over its steps.
        num_selected (`int`): how many to keep, `1 <= num_selected <= num_candidates`.

    Returns:
        `torch.LongTensor` of shape `(batch_size, num_selected)`: distinct candidate indices, in the order chosen.
    """
    _check_selection(candidates, num_selected)
    return _farthest_point(_pairwise_distances(candidates), num_selected)


def k_medoids_indices(candidates: torch.Tensor, num_selected: int, max_iterations: int = 20) -> torch.Tensor:
    """
    k-medoids: `num_selected` candidates that each stand for a group of the others (a mode of the futures), so the
    chosen ones are typical futures of different modes rather than the most extreme ones. Greedy start (PAM's build
    step: each new medoid is the candidate that lowers the total distance of every candidate to its nearest medoid the
    most), then alternating refinement (assign every candidate to its nearest medoid; move each medoid to the member
    of its group with the least total distance to the group) until nothing moves. Deterministic.

    Args:
        candidates (`torch.Tensor` of shape `(batch_size, num_candidates, dim)`): one vector per candidate.
        num_selected (`int`): how many to keep, `1 <= num_selected <= num_candidates`.
        max_iterations (`int`, *optional*, defaults to 20): refinement rounds at most.

    Returns:
        `torch.LongTensor` of shape `(batch_size, num_selected)`: distinct candidate indices, the largest group first
        ([`candidate_weights`] gives the groups' shares).
    """
    return select_candidates(candidates, num_selected, "k_medoids", max_iterations=max_iterations)[0]


def candidate_weights(candidates: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """
    The share of all candidates nearest to each chosen one: how much of the drawn futures each kept future stands for
    (an estimate of the model's probability of that mode, given enough candidates).

    Args:
        candidates (`torch.Tensor` of shape `(batch_size, num_candidates, dim)`).
        chosen (`torch.LongTensor` of shape `(batch_size, num_selected)`): distinct candidate indices.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, num_selected)`, each row summing to 1.
    """
    _check_selection(candidates, chosen.shape[1])
    return _weights(_assign(_pairwise_distances(candidates), chosen), chosen.shape[1])


def select_candidates(
    candidates: torch.Tensor, num_selected: int, method: str = "k_medoids", max_iterations: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    `num_selected` diverse candidates by `method` (one of `SELECTION_METHODS`; `max_iterations` for k-medoids), with
    the distances computed once.

    Returns:
        `(indices, weights)`, each `(batch_size, num_selected)`: distinct candidate indices (k-medoids: the largest
        group first; farthest-point: in the order chosen) and [`candidate_weights`].
    """
    if method not in SELECTION_METHODS:
        raise ValueError(f"Unknown selection method {method!r}; choose one of {SELECTION_METHODS}.")
    _check_selection(candidates, num_selected)
    distances = _pairwise_distances(candidates)
    if method == "farthest_point":
        chosen = _farthest_point(distances, num_selected)
        return chosen, _weights(_assign(distances, chosen), num_selected)
    chosen, labels = _k_medoids(distances, num_selected, max_iterations)
    weights = _weights(labels, num_selected)
    # Largest group first; ties keep the order found (a stable sort).
    order = torch.sort(weights, dim=1, descending=True, stable=True).indices
    return chosen.gather(1, order), weights.gather(1, order)


__all__ = ["SELECTION_METHODS", "candidate_weights", "farthest_point_indices", "k_medoids_indices", "select_candidates"]
