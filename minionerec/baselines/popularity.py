"""Popularity: items ranked by how often they are a train target (ties: catalogue order), and
ranking helpers that break score ties by a prior order (the popularity fill-in of Markov)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minionerec.catalogue import Catalogue
from minionerec.io import SplitRow


def target_rank_with_prior(scores: torch.Tensor, prior_rank: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target when items are sorted by score, ties by ``prior_rank`` (0 = first)."""
    target_scores = scores.gather(1, targets[:, None])
    ahead_by_score = (scores > target_scores).sum(1)
    tied_ahead = ((scores == target_scores) & (prior_rank[None, :] < prior_rank[targets][:, None])).sum(1)
    return ahead_by_score + tied_ahead


def top_k_with_prior(scores: torch.Tensor, prior_order: torch.Tensor, k: int) -> torch.Tensor:
    """(B, k) item indices by score, ties broken by ``prior_order`` (item indices, best first)."""
    permuted = scores[:, prior_order]
    order = torch.sort(permuted, dim=1, descending=True, stable=True).indices[:, :k]
    return prior_order[order]


class Popularity:
    """Items ranked by their number of train targets; ties in catalogue order."""

    def __init__(self, catalogue: Catalogue, train: Sequence[SplitRow]):
        index = catalogue.index_of
        counts = torch.zeros(catalogue.n_items, dtype=torch.float32)
        for row in train:
            counts[index[row.item_id]] += 1
        self.counts = counts
        # Stable sort: equal counts keep catalogue order.
        self.order = torch.sort(counts, descending=True, stable=True).indices
        self.rank = torch.empty_like(self.order)
        self.rank[self.order] = torch.arange(len(self.order))
