"""What the decoders return: :class:`Decoded` (best-first SIDs, scores, completion tokens), mapped back to
info-file rows through :class:`minionerec.catalogue.Catalogue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from minionerec.catalogue import Catalogue
from minionerec.decoding.trie import SIDTrie


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
