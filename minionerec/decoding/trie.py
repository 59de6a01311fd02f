"""The catalogue's SIDs as a token trie stored in tensors.

Node 0 is the root; ``child_tokens[n, k]`` / ``child_nodes[n, k]`` list the ``k``-th allowed token
of node ``n`` and the node it leads to (rows padded to the largest branching factor ``K``; padding
repeats the first child's token and has ``child_nodes == -1``); ``leaf_sid[n]`` is the SID index
of a terminal node (reached by EOS), else -1.  A row in an invalid state has node ``-1``;
:meth:`SIDTrie.allowed` maps it to "EOS only".  Every lookup is tensor indexing over all rows at
once: no Python loop over beams, no device-to-host copy.  SIDs may have 3 or 4 tokens in one
catalogue; a 3-token SID may even be a prefix of a 4-token one (after ``abc`` both ``"\\n"`` and
``<d_k>`` are allowed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minionerec.decoding.tokens import completion_token_ids
from minionerec.errors import InputError
from minionerec.sid import check_sid_tokens, parse_sid, sid_vocabulary

#: How a step's scores are normalised: over the full vocabulary, over the trie's vocabulary, or
#: over the tokens the trie allows at that step (see :mod:`minionerec.decoding.search`).
NORMALIZATIONS = ("full", "trie", "allowed")


def check_normalization(normalization: str) -> None:
    """ValueError unless ``normalization`` is one of :data:`NORMALIZATIONS` (a programming error, not input)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def _forced_tails(children: list[dict[int, int]], leaf_of: dict[int, int], max_depth: int,
                  eos_token_id: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per node: the forced rest of the completion when the subtree is a single chain."""
    n_nodes = len(children)
    depth = [0] * n_nodes
    order = [0]
    for node in order:  # breadth-first: parents before children
        for child in children[node].values():
            depth[child] = depth[node] + 1
            order.append(child)
    tail: list[list[int] | None] = [None] * n_nodes
    leaf = [-1] * n_nodes
    for node in reversed(order):
        kids = children[node]
        if not kids:
            tail[node], leaf[node] = [], leaf_of.get(node, -1)
        elif len(kids) == 1:
            (token, child), = kids.items()
            if tail[child] is not None:
                tail[node], leaf[node] = [token] + tail[child], leaf[child]
    tail_tokens = torch.full((n_nodes, max_depth), eos_token_id, dtype=torch.long)
    for node, rest in enumerate(tail):
        if rest:
            tail_tokens[node, : len(rest)] = torch.tensor(rest)
    branching_depths = [depth[n] for n in range(n_nodes) if tail[n] is None]
    forced_from = (max(branching_depths) + 1) if branching_depths else 0
    return tail_tokens, torch.tensor(leaf, dtype=torch.long), forced_from


@dataclass
class SIDTrie:
    """Catalogue SIDs as a token trie stored in tensors (see the module docstring)."""

    sids: list[str]                 # distinct SID strings; leaf_sid indexes this list
    sequences: list[list[int]]      # completion token ids of each SID (ends with EOS)
    child_tokens: torch.Tensor      # (N, K) long
    child_nodes: torch.Tensor       # (N, K) long, -1 = no child
    child_local: torch.Tensor       # (N, K) long: index of child_tokens in ``vocab``
    leaf_sid: torch.Tensor          # (N,) long, -1 for inner nodes
    vocab: torch.Tensor             # (V_trie,) sorted token ids that occur in the trie
    eos_token_id: int
    eos_local: int                  # index of EOS in ``vocab``
    max_depth: int
    tail_tokens: torch.Tensor       # (N, max_depth): the forced remaining tokens of a chain node, EOS-padded
    tail_leaf: torch.Tensor         # (N,) SID index a chain node must end at, -1 for branching nodes
    forced_from_depth: int          # every node this deep or deeper has at most one way to finish

    @classmethod
    def from_sids(cls, sids: Sequence[str], tokenizer: Any, device: torch.device | str = "cpu") -> SIDTrie:
        """Build from catalogue SID strings (duplicates allowed; order of first occurrence kept).

        Raises InputError when the tokenizer lacks a SID token or a SID does not tokenize to its
        own tokens followed by the terminator.
        """
        distinct = list(dict.fromkeys(sids))
        if not distinct:
            raise InputError("the catalogue has no SIDs")
        parsed = [parse_sid(s) for s in distinct]
        token_ids = dict(zip(sid_vocabulary(parsed), check_sid_tokens(tokenizer, sid_vocabulary(parsed))))
        sequences = []
        for sid_text, tokens in zip(distinct, parsed):
            seq = completion_token_ids(tokenizer, sid_text)
            expected = [token_ids[t] for t in tokens]
            if seq[: len(expected)] != expected:
                raise InputError(f"SID {sid_text!r} does not tokenize to its {len(tokens)} SID tokens; check the tokenizer")
            sequences.append(seq)
        return cls.from_sequences(distinct, sequences, int(tokenizer.eos_token_id), device)

    @classmethod
    def from_sequences(cls, sids: Sequence[str], sequences: Sequence[Sequence[int]], eos_token_id: int,
                       device: torch.device | str = "cpu") -> SIDTrie:
        """Build from explicit completion token sequences (each must end with ``eos_token_id``)."""
        children: list[dict[int, int]] = [{}]
        leaf_of: dict[int, int] = {}
        for sid_index, seq in enumerate(sequences):
            if not seq or seq[-1] != eos_token_id or eos_token_id in seq[:-1]:
                raise InputError(f"completion of SID {sids[sid_index]!r} must contain EOS exactly once, at the end")
            node = 0
            for token in seq:
                nxt = children[node].get(token)
                if nxt is None:
                    nxt = len(children)
                    children[node][token] = nxt
                    children.append({})
                node = nxt
            if node in leaf_of:
                raise InputError(f"SIDs {sids[leaf_of[node]]!r} and {sids[sid_index]!r} tokenize identically")
            leaf_of[node] = sid_index
        n_nodes = len(children)
        width = max(len(c) for c in children)
        child_tokens = torch.full((n_nodes, width), eos_token_id, dtype=torch.long)
        child_nodes = torch.full((n_nodes, width), -1, dtype=torch.long)
        for node, kids in enumerate(children):
            if kids:
                toks = list(kids.keys())
                child_tokens[node, : len(toks)] = torch.tensor(toks)
                child_tokens[node, len(toks):] = toks[0]
                child_nodes[node, : len(toks)] = torch.tensor(list(kids.values()))
        leaf_sid = torch.full((n_nodes,), -1, dtype=torch.long)
        for node, sid_index in leaf_of.items():
            leaf_sid[node] = sid_index
        vocab = torch.unique(torch.tensor([t for seq in sequences for t in seq] + [eos_token_id]))
        child_local = torch.searchsorted(vocab, child_tokens)
        max_depth = max(len(s) for s in sequences)
        tail_tokens, tail_leaf, forced_from_depth = _forced_tails(children, leaf_of, max_depth, eos_token_id)
        return cls(
            sids=list(sids), sequences=[list(s) for s in sequences],
            child_tokens=child_tokens.to(device), child_nodes=child_nodes.to(device),
            child_local=child_local.to(device), leaf_sid=leaf_sid.to(device), vocab=vocab.to(device),
            eos_token_id=eos_token_id, eos_local=int(torch.searchsorted(vocab, torch.tensor(eos_token_id))),
            max_depth=max_depth, tail_tokens=tail_tokens.to(device), tail_leaf=tail_leaf.to(device),
            forced_from_depth=forced_from_depth,
        )

    @property
    def num_sids(self) -> int:
        return len(self.sids)

    @property
    def device(self) -> torch.device:
        return self.child_tokens.device

    def to(self, device: torch.device | str) -> SIDTrie:
        return SIDTrie(self.sids, self.sequences, self.child_tokens.to(device), self.child_nodes.to(device),
                       self.child_local.to(device), self.leaf_sid.to(device), self.vocab.to(device),
                       self.eos_token_id, self.eos_local, self.max_depth, self.tail_tokens.to(device),
                       self.tail_leaf.to(device), self.forced_from_depth)

    def allowed(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens, next_nodes, local)`` of shape ``nodes.shape + (K,)`` for every row.

        Invalid rows (node -1) and padding slots allow EOS only and lead to node -1.
        """
        safe = nodes.clamp(min=0)
        tokens = self.child_tokens[safe]
        next_nodes = self.child_nodes[safe]
        local = self.child_local[safe]
        dead = (nodes < 0).unsqueeze(-1)
        tokens = torch.where(dead, torch.full_like(tokens, self.eos_token_id), tokens)
        local = torch.where(dead, torch.full_like(local, self.eos_local), local)
        next_nodes = torch.where(dead, torch.full_like(next_nodes, -1), next_nodes)
        return tokens, next_nodes, local

    def advance(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The node reached from each row's node by its token (-1 when not allowed)."""
        safe = nodes.clamp(min=0)
        match = (self.child_tokens[safe] == tokens.unsqueeze(-1)) & (self.child_nodes[safe] >= 0)
        found = match.any(-1) & (nodes >= 0)
        nxt = self.child_nodes[safe].gather(-1, match.long().argmax(-1, keepdim=True)).squeeze(-1)
        return torch.where(found, nxt, torch.full_like(nxt, -1))

    def walk(self, generated: torch.Tensor) -> torch.Tensor:
        """Node of each row after its generated tokens ``(rows, steps)``; -1 once off the trie."""
        nodes = torch.zeros(generated.shape[0], dtype=torch.long, device=generated.device)
        for step in range(generated.shape[1]):
            nodes = self.advance(nodes, generated[:, step])
        return nodes


def check_num_beams(num_beams: int, trie: SIDTrie, source: str = "the catalogue", option: str = "num_beams") -> None:
    """InputError unless 1 <= num_beams <= number of distinct SIDs; ``option`` is the caller's config key."""
    if num_beams < 1:
        raise InputError(f"{option} must be >= 1, got {num_beams}")
    if num_beams > trie.num_sids:
        raise InputError(
            f"{option}={num_beams} beams exceed the {trie.num_sids} distinct SIDs of {source}; "
            f"set {option} to {trie.num_sids} or fewer"
        )
