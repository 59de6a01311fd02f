"""What the decoders return: :class:`Decoded` (best-first SIDs, scores, completion tokens) and
:class:`Catalogue` (info-file rows grouped by SID) that maps decoded SIDs back to info-file rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minionerec.decoding.trie import SIDTrie


@dataclass
class Catalogue:
    """Info-file rows grouped by SID: ``sid_rows[s]`` are the row indices carrying ``sids[s]``."""

    sids: list[str]
    sid_rows: list[list[int]]
    item_ids: list[int]             # item id of every info row

    @classmethod
    def from_info(cls, items: Sequence[Any]) -> Catalogue:
        """From :func:`minionerec.io.read_info` rows (``CatalogueItem``)."""
        index: dict[str, int] = {}
        sid_rows: list[list[int]] = []
        for row, item in enumerate(items):
            s = item.sid_string
            if s not in index:
                index[s] = len(sid_rows)
                sid_rows.append([])
            sid_rows[index[s]].append(row)
        return cls(list(index), sid_rows, [int(item.item_id) for item in items])

    def sid_to_items(self) -> dict[str, list[int]]:
        """``{sid: [item ids]}`` in catalogue order (the mapping metrics.evaluate_predictions takes)."""
        return {s: [self.item_ids[r] for r in rows] for s, rows in zip(self.sids, self.sid_rows)}


@dataclass
class Decoded:
    """Decoded items of a batch of users, best first (``n`` = beams or samples per user).

    ``sid_index[u, j]`` indexes ``trie.sids`` (-1 only if the search found fewer than ``n``
    items, which cannot happen with ``n <= trie.num_sids`` in beam search);
    ``scores[u, j]`` is the item's summed log-probability (beam search ranks finished items by
    ``score / length ** length_penalty``, which is the score itself at the default 0);
    ``completion_ids``/``completion_mask`` are ``(users, n, max_depth)``, right-padded.
    """

    sid_index: torch.Tensor
    scores: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor

    def sid_strings(self, trie: SIDTrie) -> list[list[str]]:
        rows = self.sid_index.tolist()
        return [[trie.sids[i] for i in row if i >= 0] for row in rows]

    def item_rows(self, catalogue: Catalogue) -> list[list[int]]:
        """First info-file row of every decoded SID (the trie must be built from ``catalogue.sids``)."""
        return [[catalogue.sid_rows[i][0] for i in row if i >= 0] for row in self.sid_index.tolist()]

    @staticmethod
    def concat(parts: Sequence[Decoded]) -> Decoded:
        return Decoded(*(torch.cat([getattr(p, f) for p in parts]) for f in ("sid_index", "scores", "completion_ids", "completion_mask")))


def completion_from_tokens(tokens: torch.Tensor, sid_index: torch.Tensor, trie: SIDTrie, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of the real completion tokens (up to and including the first EOS) and padded ids."""
    is_eos = tokens == trie.eos_token_id
    before_eos = (is_eos.long().cumsum(-1) - is_eos.long()) == 0
    mask = before_eos & (sid_index >= 0).unsqueeze(-1)
    ids = torch.where(mask, tokens, torch.full_like(tokens, pad_token_id))
    return ids, mask.long()
