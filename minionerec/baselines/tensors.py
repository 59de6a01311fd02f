"""Tensors of the sequential baselines: right-padded item histories, their targets, and the device.

Items are indexed by their line in the info file (:class:`minionerec.catalogue.Catalogue`);
embedding row 0 is padding, row ``i + 1`` is catalogue item ``i``.  Sequences keep the last
``max_history`` items and are right-padded, so with a causal encoder the hidden state at position
``len - 1`` summarises the whole history and padding is never attended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from minionerec.catalogue import Catalogue
from minionerec.io import SplitRow

PAD = 0


@dataclass
class SequenceBatch:
    """Right-padded histories (embedding rows, 0 = pad), their lengths and target rows (0-based)."""

    seqs: torch.Tensor  # (B, L) long
    lengths: torch.Tensor  # (B,) long, >= 1
    targets: torch.Tensor  # (B,) long, catalogue index, -1 when unknown

    def to(self, device: torch.device | str) -> "SequenceBatch":
        return SequenceBatch(self.seqs.to(device), self.lengths.to(device), self.targets.to(device))

    def __len__(self) -> int:
        return int(self.seqs.shape[0])

    def subset(self, idx: torch.Tensor | slice) -> "SequenceBatch":
        return SequenceBatch(self.seqs[idx], self.lengths[idx], self.targets[idx])


def pad_histories(history_rows: Sequence[Sequence[int]], max_history: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the last ``max_history`` embedding rows of each history and right-pad with 0.

    An empty history becomes a single padding position (length 1): the model then scores from
    its position embedding alone, i.e. a learned popularity prior.
    """
    seqs = torch.zeros((len(history_rows), max_history), dtype=torch.long)
    lengths = torch.ones(len(history_rows), dtype=torch.long)
    for r, rows in enumerate(history_rows):
        kept = list(rows)[-max_history:]
        if kept:
            seqs[r, : len(kept)] = torch.tensor(kept, dtype=torch.long)
            lengths[r] = len(kept)
    return seqs, lengths


def split_rows_to_batch(rows: Sequence[SplitRow], catalogue: Catalogue, max_history: int, source: str) -> SequenceBatch:
    """Tensors of one split; ``source`` (the CSV path) names the file in errors."""
    histories = [catalogue.to_rows(r.history_item_id, f"{source} row {n + 1}") for n, r in enumerate(rows)]
    targets = [catalogue.to_rows([r.item_id], f"{source} row {n + 1}")[0] - 1 for n, r in enumerate(rows)]
    seqs, lengths = pad_histories(histories, max_history)
    return SequenceBatch(seqs, lengths, torch.tensor(targets, dtype=torch.long))



