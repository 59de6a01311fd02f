"""First-order Markov chain over items: P(next | item) counted on train, summed over the last
``window`` history items with weights ``decay**age``; ties fall back to popularity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from minionerec.catalogue import Catalogue
from minionerec.errors import InputError
from minionerec.io import SplitRow

TRANSITION_SOURCES = ("last", "all")


@dataclass(frozen=True)
class MarkovSettings:
    transitions: str
    window: int
    decay: float


class Markov:
    """First-order Markov chain over items with popularity fill-in."""

    def __init__(self, catalogue: Catalogue, train: Sequence[SplitRow], transitions: str):
        if transitions not in TRANSITION_SOURCES:
            raise InputError(f"markov transitions must be one of {', '.join(TRANSITION_SOURCES)}, got {transitions!r}")
        self.catalogue = catalogue
        index = catalogue.index_of
        n = catalogue.n_items
        pairs: Counter[tuple[int, int]] = Counter()
        if transitions == "last":
            for row in train:
                pairs[(index[row.history_item_id[-1]], index[row.item_id])] += 1
        else:
            # Consecutive pairs inside the sliding windows repeat across a user's rows: count each
            # (user, from, to) once.
            seen: set[tuple[str, int, int]] = set()
            for row in train:
                seq = [index[i] for i in (*row.history_item_id, row.item_id)]
                for a, b in zip(seq, seq[1:]):
                    seen.add((row.user_id, a, b))
            pairs.update((a, b) for _, a, b in seen)
        counts = torch.zeros((n, n), dtype=torch.float32)
        if pairs:
            src, dst = zip(*pairs.keys())
            counts[list(src), list(dst)] = torch.tensor(list(pairs.values()), dtype=torch.float32)
        self.transition = counts / counts.sum(1, keepdim=True).clamp(min=1)

    def age_rows(self, histories: torch.Tensor, lengths: torch.Tensor, max_age: int) -> torch.Tensor:
        """(max_age, B, n_items): row ``a`` is P(item | history[-1 - a]), zero where the history is shorter.

        ``histories`` are right-padded catalogue indices + 1 (0 = pad), as in :mod:`minionerec.baselines.tensors`.
        """
        b = histories.shape[0]
        out = torch.zeros((max_age, b, self.catalogue.n_items), dtype=torch.float32)
        rows = torch.arange(b)
        for age in range(max_age):
            pos = lengths - 1 - age
            present = pos >= 0
            if not present.any():
                break
            items = histories[rows[present], pos[present]] - 1
            out[age, present] = self.transition[items.clamp(min=0)] * (items >= 0)[:, None]
        return out

    @staticmethod
    def combine(age_rows: torch.Tensor, window: int, decay: float) -> torch.Tensor:
        """(B, n_items) Σ_{age < window} decay**age · age_rows[age]."""
        weights = decay ** torch.arange(min(window, age_rows.shape[0]), dtype=torch.float32)
        return torch.einsum("a,abn->bn", weights, age_rows[: len(weights)])

    def scores(self, histories: torch.Tensor, lengths: torch.Tensor, window: int, decay: float) -> torch.Tensor:
        """(B, n_items) Markov scores of the last ``window`` history items weighted by ``decay**age``."""
        return self.combine(self.age_rows(histories, lengths, window), window, decay)
