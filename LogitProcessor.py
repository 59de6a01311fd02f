"""Constrained SID decoding: a tensorised trie, a HF logits processor and a dedicated beam search.

Design (shared by evaluation and RL rollouts)
---------------------------------------------

**What is generated.**  SFT trains the response ``"{sid}\\n"`` followed by EOS.  The decoder
therefore constrains the completion to ``tokenize(sid + "\\n") + [eos]`` for a catalogue SID
(:func:`completion_token_ids`).  SIDs may have 3 or 4 tokens in one catalogue; a 3-token SID
may even be a prefix of a 4-token one (after ``abc`` both ``"\\n"`` and ``<d_k>`` are allowed).

**The trie** (:class:`SIDTrie`) is built once from the distinct catalogue SIDs and a tokenizer
and stored as tensors: node 0 is the root; ``child_tokens[n, k]`` / ``child_nodes[n, k]`` list
the ``k``-th allowed token of node ``n`` and the node it leads to (rows padded to the largest
branching factor ``K``; padding repeats the first child's token and has ``child_nodes == -1``);
``leaf_sid[n]`` is the SID index of a terminal node (reached by EOS), else -1.  A row in an
invalid state has node ``-1``; :meth:`SIDTrie.allowed` maps it to "EOS only".  Every lookup is
tensor indexing over all rows at once: no Python loop over beams, no device-to-host copy.

**The logits processor** (:class:`TrieLogitsProcessor`) is stateless: the decoding step is
``input_ids.shape[1] - prompt_length`` (the padded prompt length given at construction) and the
node of each row is recomputed by walking the generated tokens (a loop over at most 6 depths,
vectorised over rows).  Disallowed tokens get ``-inf``; a row with no valid continuation allows
only EOS.  ``normalization="trie"`` additionally renormalises over the trie vocabulary.

**The dedicated beam search** (:func:`sid_beam_search`) prefills each prompt once (users are
batched with left padding) and shares that KV cache among the user's beams: with
``shared_prefix=True`` (default) the prompt KV is kept once per user and each decode step attends
to [prompt KV ; the beam's own few generated tokens] through a registered attention function that
merges the two parts by log-sum-exp (:func:`_shared_prefix_attention`; models with sliding-window
layers fall back to expanding the cache to the beams, as ``shared_prefix=False`` does).  At every
step it scores only the candidate tokens allowed by the trie.  With ``normalization="full"``
(default) a candidate's score is its log-probability under the full-vocabulary softmax, so the
search reproduces
``model.generate(num_beams=B, num_return_sequences=B, length_penalty=0, do_sample=False)`` with
:class:`TrieLogitsProcessor` (same selection rule: top-2B candidates, a candidate ending in EOS
is finished when it ranks among the first B, the next running beams are the best B unfinished).
With ``normalization="trie"`` only the trie-vocabulary rows of the LM head are computed (SID
tokens, the newline and EOS: a few hundred rows instead of ~150k) and scores are normalised over
those rows.  With ``normalization="allowed"`` each step is normalised over the tokens the trie
allows there (the model conditioned on staying in the catalogue: item probabilities sum to 1);
forced steps then cost nothing, so once every beam has a single way left to finish
(``SIDTrie.forced_from_depth``, e.g. after the third token of 3-token SIDs) the search appends
the forced ``"\\n"`` + EOS without model calls.  The processor offers all three modes, so each
is tested against ``generate``.
Each user gets the top-B *distinct valid* SIDs (catalogue SIDs are distinct leaves) as a
:class:`Decoded`: the SID index (into ``trie.sids``; :meth:`Decoded.item_rows` maps it to info-file
rows through a :class:`Catalogue`), the summed log-probability, and the completion token ids and
mask (the tokens after the prompt, up to and including EOS) that a GRPO trainer needs to
recompute log-probs.  Constrained sampling (:func:`sid_sample`, temperature) and constrained beam sampling
(``sid_beam_search(..., sample=True)``: Gumbel-top-k, the same as HF's multinomial without
replacement) reuse the same machinery; every output is a valid catalogue SID by construction.

**Pinned generation settings.**  The dedicated decoders never read ``generation_config``.  For
``model.generate`` use :func:`generate_with_trie` (or :func:`pinned_generation_kwargs`), which sets
every sampling/penalty field to a neutral value and blanks ``model.generation_config`` during the
call, so a checkpoint's ``generation_config.json`` (top_k, top_p, repetition_penalty, do_sample,
...) cannot leak in.

Typical use::

    catalogue = Catalogue.from_info(read_info(info_file))
    trie = SIDTrie.from_sids(catalogue.sids, tokenizer)
    prompts = encode_prompts(tokenizer, [next_item_prompt(history) for history in histories])
    decoded = sid_beam_search(model, trie, prompts, num_beams=50, pad_token_id=pad_token_id_of(tokenizer))
    decoded.sid_strings(trie)        # [[sid, ...] * 50] per user, best first
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache, LogitsProcessor

from minionerec.errors import InputError
from minionerec.sid import check_sid_tokens, parse_sid, sid_vocabulary

logger = logging.getLogger("minionerec.decoding")

NORMALIZATIONS = ("full", "trie", "allowed")


# --------------------------------------------------------------------------------------------
# Tokenization of completions and prompts
# --------------------------------------------------------------------------------------------

def completion_token_ids(tokenizer: Any, sid: str) -> list[int]:
    """The token ids SFT trains as the response of ``sid``: ``tokenize(format_response(sid)) + [eos]``."""
    from data import format_response

    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token; set tokenizer.eos_token before decoding")
    return list(tokenizer.encode(format_response(sid), add_special_tokens=False)) + [int(tokenizer.eos_token_id)]


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """:func:`data.encode_prompts` (the one prompt tokenisation), rejecting empty prompts."""
    from data import encode_prompts as encode

    for i, prompt in enumerate(prompts):
        if not prompt or not prompt.strip():
            raise InputError(f"prompt {i} is empty; every user needs a non-empty prompt")
    encoded = encode(tokenizer, prompts)
    for i, ids in enumerate(encoded):
        if not ids:
            raise InputError(f"prompt {i} encodes to no tokens: {prompts[i][:80]!r}")
    return [list(ids) for ids in encoded]


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` with every sequence right-aligned (left padding)."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise InputError("cannot decode an empty prompt; every prompt needs at least one token")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq):] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


def pad_token_id_of(tokenizer: Any) -> int:
    """The pad id used for left padding (EOS when the tokenizer has no pad token, as upstream)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise InputError("the tokenizer has neither a pad nor an EOS token")
    return int(pad)


# --------------------------------------------------------------------------------------------
# The trie
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Catalogue: info-file rows -> distinct SIDs
# --------------------------------------------------------------------------------------------

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


def check_num_beams(num_beams: int, trie: SIDTrie, source: str = "the catalogue", option: str = "num_beams") -> None:
    """InputError unless 1 <= num_beams <= number of distinct SIDs; ``option`` is the caller's config key."""
    if num_beams < 1:
        raise InputError(f"{option} must be >= 1, got {num_beams}")
    if num_beams > trie.num_sids:
        raise InputError(
            f"{option}={num_beams} beams exceed the {trie.num_sids} distinct SIDs of {source}; "
            f"set {option} to {trie.num_sids} or fewer"
        )


# --------------------------------------------------------------------------------------------
# HF logits processor
# --------------------------------------------------------------------------------------------

class TrieLogitsProcessor(LogitsProcessor):
    """Masks every token the trie does not allow with ``-inf`` (stateless; see module docstring).

    ``prompt_length`` is the (padded) prompt width of the ``input_ids`` passed to ``generate``.
    """

    def __init__(self, trie: SIDTrie, prompt_length: int, normalization: str = "full") -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.trie = trie
        self.prompt_length = int(prompt_length)
        self.normalization = normalization

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_length
        if step < 0:
            raise ValueError(f"input_ids has {input_ids.shape[1]} columns, fewer than the prompt length {self.prompt_length}")
        trie = self.trie if self.trie.device == scores.device else self.trie.to(scores.device)
        nodes = trie.walk(input_ids[:, self.prompt_length:])
        tokens, _, _ = trie.allowed(nodes)
        if self.normalization == "trie":
            sub = scores[:, trie.vocab]
            scores = scores - torch.logsumexp(sub.float(), dim=-1, keepdim=True).to(scores.dtype)
        masked = torch.full_like(scores, float("-inf")).scatter(1, tokens, scores.gather(1, tokens))
        if self.normalization == "allowed":
            masked = torch.log_softmax(masked.float(), dim=-1).to(scores.dtype)
        return masked


def pinned_generation_kwargs(*, num_beams: int, num_return_sequences: int, max_new_tokens: int,
                             eos_token_id: int, pad_token_id: int, do_sample: bool = False,
                             temperature: float = 1.0) -> dict[str, Any]:
    """Every generation field that changes the search, set explicitly for ``model.generate``.

    transformers fills fields left unset (``None``) from the checkpoint's generation_config.json;
    pinning them keeps e.g. an Instruct model's top_k/top_p/repetition_penalty out.  Fields whose
    neutral value *is* ``None`` (bad_words_ids, sequence_bias, forced_*_token_id) cannot be pinned
    this way: :func:`generate_with_trie` also blanks ``model.generation_config`` during the call.
    """
    kwargs: dict[str, Any] = dict(
        num_beams=num_beams, num_return_sequences=num_return_sequences, max_new_tokens=max_new_tokens,
        min_new_tokens=0, do_sample=do_sample, repetition_penalty=1.0,
        encoder_repetition_penalty=1.0, no_repeat_ngram_size=0, length_penalty=0.0, early_stopping=False,
        suppress_tokens=[], begin_suppress_tokens=[], renormalize_logits=False, guidance_scale=1.0,
        eos_token_id=eos_token_id, pad_token_id=pad_token_id, use_cache=True, output_scores=False,
        return_dict_in_generate=False,
    )
    if do_sample:
        kwargs.update(temperature=temperature, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0,
                      epsilon_cutoff=0.0, eta_cutoff=0.0)
    return kwargs


@torch.no_grad()
def generate_with_trie(model: Any, trie: SIDTrie, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                       num_beams: int, num_return_sequences: int | None = None, pad_token_id: int,
                       normalization: str = "full", do_sample: bool = False, temperature: float = 1.0,
                       generator_seed: int | None = None) -> torch.Tensor:
    """``model.generate`` constrained by :class:`TrieLogitsProcessor`, every setting pinned.

    Returns the generated tokens only, ``(rows * num_return_sequences, <= trie.max_depth)``.
    """
    from transformers import GenerationConfig

    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    trie = trie.to(input_ids.device)
    processor = TrieLogitsProcessor(trie, input_ids.shape[1], normalization)
    kwargs = pinned_generation_kwargs(
        num_beams=num_beams, num_return_sequences=num_return_sequences or num_beams,
        max_new_tokens=trie.max_depth, eos_token_id=trie.eos_token_id, pad_token_id=pad_token_id,
        do_sample=do_sample, temperature=temperature,
    )
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, logits_processor=[processor], **kwargs)
    finally:
        model.generation_config = saved
    return out[:, input_ids.shape[1]:]


# --------------------------------------------------------------------------------------------
# Model stepping
# --------------------------------------------------------------------------------------------

class _Stepper:
    """Runs the decoder body and scores candidate tokens with (a slice of) the LM head."""

    def __init__(self, model: Any, trie: SIDTrie, normalization: str) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.model = model
        self.body = getattr(model, model.base_model_prefix)
        head = model.get_output_embeddings()
        self.weight = head.weight
        self.bias = getattr(head, "bias", None)
        self.trie = trie
        self.normalization = normalization
        if normalization in ("trie", "allowed"):
            self.sub_weight = self.weight[trie.vocab]
            self.sub_bias = self.bias[trie.vocab] if self.bias is not None else None

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
               cache: DynamicCache) -> torch.Tensor:
        out = self.body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        cache=cache, use_cache=True)
        return out.last_hidden_state[:, -1]

    def candidate_log_probs(self, hidden: torch.Tensor, tokens: torch.Tensor, local: torch.Tensor,
                            temperature: float = 1.0, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probs (rows, K) of each row's candidate tokens, float32.

        ``valid`` marks real candidates (padding repeats a token); "allowed" normalises over them.
        """
        if self.normalization == "allowed":
            logits = F.linear(hidden, self.sub_weight, self.sub_bias).float().gather(1, local)
            if valid is not None:
                logits = logits.masked_fill(~(valid | ~valid.any(-1, keepdim=True)), float("-inf"))
            return torch.log_softmax(logits / temperature, dim=-1)
        if self.normalization == "full":
            logits, index = F.linear(hidden, self.weight, self.bias).float(), tokens
        else:
            logits, index = F.linear(hidden, self.sub_weight, self.sub_bias).float(), local
        if temperature != 1.0:
            logits = logits / temperature
        # log_softmax restricted to the candidates: no (rows, vocab) log-prob tensor is materialised
        return logits.gather(1, index) - torch.logsumexp(logits, dim=-1, keepdim=True)


# --------------------------------------------------------------------------------------------
# Shared-prefix ("cascade") attention: the prompt KV is stored once per user, never per beam
# --------------------------------------------------------------------------------------------

SHARED_PREFIX_ATTENTION = "minionerec_shared_prefix"
_PREFIX_STACK: list[_PrefixContext] = []


@dataclass
class _PrefixContext:
    keys: list[torch.Tensor]      # per layer (users, kv_heads, prompt_len, head_dim)
    values: list[torch.Tensor]
    mask: torch.Tensor            # (users, prompt_len) bool, False on left padding


def _shared_prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: Any, scaling: float | None = None, dropout: float = 0.0,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of one new token per row over [its user's prompt KV ; the row's own generated KV].

    Rows are grouped by user (``rows // users`` consecutive rows per user).  The two parts are
    computed separately and merged with their log-sum-exps, which equals softmax attention over the
    concatenation, so the prompt KV never has to be copied to every beam.
    """
    ctx = _PREFIX_STACK[-1]
    prompt_k, prompt_v = ctx.keys[module.layer_idx], ctx.values[module.layer_idx]
    users, kv_heads, _, dim = prompt_k.shape
    rows, heads, q_len, _ = query.shape
    if q_len != 1 or rows % users:
        raise RuntimeError("shared-prefix attention expects one new token per row and whole users")
    per_user, groups = rows // users, heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    # prompt part, batched per user: (users, kv_heads, per_user * groups, prompt_len)
    q_user = query.view(users, per_user, kv_heads, groups, dim).permute(0, 2, 1, 3, 4).reshape(users, kv_heads, -1, dim)
    s_prompt = torch.matmul(q_user, prompt_k.transpose(-1, -2)).float() * scale
    s_prompt = s_prompt.masked_fill(~ctx.mask[:, None, None, :], float("-inf"))
    lse_prompt = torch.logsumexp(s_prompt, dim=-1, keepdim=True)
    out_prompt = torch.matmul(torch.exp(s_prompt - lse_prompt).to(prompt_v.dtype), prompt_v)
    out_prompt = out_prompt.view(users, kv_heads, per_user, groups, dim).permute(0, 2, 1, 3, 4).reshape(rows, kv_heads, groups, dim)
    lse_prompt = lse_prompt.view(users, kv_heads, per_user, groups, 1).permute(0, 2, 1, 3, 4).reshape(rows, kv_heads, groups, 1)
    # generated part, per row: (rows, kv_heads, groups, generated)
    q_row = query.view(rows, kv_heads, groups, dim)
    s_gen = torch.matmul(q_row, key.transpose(-1, -2)).float() * scale
    lse_gen = torch.logsumexp(s_gen, dim=-1, keepdim=True)
    out_gen = torch.matmul(torch.exp(s_gen - lse_gen).to(value.dtype), value)
    lse = torch.logaddexp(lse_prompt, lse_gen)
    out = torch.exp(lse_prompt - lse) * out_prompt.float() + torch.exp(lse_gen - lse) * out_gen.float()
    return out.to(query.dtype).reshape(rows, 1, heads, dim), None


def supports_shared_prefix(model: Any) -> bool:
    """True for decoder-only models that use transformers' attention interface with full attention only."""
    config = model.config
    if getattr(config, "use_sliding_window", False) or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "attn_logit_softcapping", None) or getattr(config, "sliding_window_pattern", None):
        return False
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return all(t == "full_attention" for t in layer_types) and hasattr(config, "_attn_implementation")


class _use_shared_prefix:
    """Context manager: route the model's attention through :func:`_shared_prefix_attention`."""

    def __init__(self, model: Any, ctx: _PrefixContext) -> None:
        self.config, self.ctx = model.config, ctx

    def __enter__(self) -> None:
        from transformers import AttentionInterface

        AttentionInterface.register(SHARED_PREFIX_ATTENTION, _shared_prefix_attention)
        self.saved = self.config._attn_implementation
        self.config._attn_implementation = SHARED_PREFIX_ATTENTION
        _PREFIX_STACK.append(self.ctx)

    def __exit__(self, *exc: object) -> None:
        _PREFIX_STACK.pop()
        self.config._attn_implementation = self.saved


class _PromptState:
    """A batch of prompts prefilled once, then stepped one token per row.

    ``shared=True`` keeps the prompt KV once per user (shared-prefix attention); otherwise the
    prompt KV is expanded to every row (HF-style), which any model supports.
    """

    def __init__(self, stepper: _Stepper, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, shared: bool) -> None:
        self.stepper = stepper
        self.prompt_mask = prompt_mask
        self.prompt_len = prompt_mask.sum(-1)
        prompt_cache = DynamicCache(config=stepper.model.config)
        positions = (prompt_mask.cumsum(-1) - 1).masked_fill(prompt_mask == 0, 0)
        self.first_hidden = stepper.hidden(prompt_ids, prompt_mask, positions, prompt_cache)
        self.shared = shared and supports_shared_prefix(stepper.model)
        if self.shared:
            self.context = _PrefixContext([layer.keys for layer in prompt_cache.layers],
                                          [layer.values for layer in prompt_cache.layers], prompt_mask.bool())
            self.cache = DynamicCache(config=stepper.model.config)
        else:
            self.cache = prompt_cache

    def step(self, tokens: torch.Tensor, parent_rows: torch.Tensor | None, step: int) -> torch.Tensor:
        """Hidden states after feeding ``tokens`` (one per row, rows grouped by user) at decode ``step``.

        ``parent_rows`` maps each new row to the row (of the previous step) it continues.
        """
        if parent_rows is not None:
            self.cache.reorder_cache(parent_rows)   # a no-op on the still-empty generated-part cache
        per_user = tokens.shape[0] // self.prompt_len.shape[0]
        positions = (self.prompt_len.repeat_interleave(per_user) + step).unsqueeze(-1)
        if self.shared:
            with _use_shared_prefix(self.stepper.model, self.context):
                return self.stepper.hidden(tokens.unsqueeze(-1), None, positions, self.cache)
        mask = torch.cat([self.prompt_mask.repeat_interleave(per_user, 0),
                          torch.ones((tokens.shape[0], step + 1), dtype=self.prompt_mask.dtype, device=tokens.device)], 1)
        return self.stepper.hidden(tokens.unsqueeze(-1), mask, positions, self.cache)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass
class Decoded:
    """Decoded items of a batch of users, best first (``n`` = beams or samples per user).

    ``sid_index[u, j]`` indexes ``trie.sids`` (-1 only if the search found fewer than ``n``
    items, which cannot happen with ``n <= trie.num_sids`` in beam search);
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


def _completion_from_tokens(tokens: torch.Tensor, sid_index: torch.Tensor, trie: SIDTrie, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of the real completion tokens (up to and including the first EOS) and padded ids."""
    is_eos = tokens == trie.eos_token_id
    before_eos = (is_eos.long().cumsum(-1) - is_eos.long()) == 0
    mask = before_eos & (sid_index >= 0).unsqueeze(-1)
    ids = torch.where(mask, tokens, torch.full_like(tokens, pad_token_id))
    return ids, mask.long()


# --------------------------------------------------------------------------------------------
# Dedicated beam search
# --------------------------------------------------------------------------------------------

def _merge_finished(done: tuple[torch.Tensor, torch.Tensor, torch.Tensor], new_scores: torch.Tensor,
                    new_sid: torch.Tensor, new_tokens: torch.Tensor, beams: int) -> tuple[torch.Tensor, ...]:
    """Keep the best ``beams`` of the finished pool plus new finished candidates (-inf = not finished).

    The pool comes first, so on equal scores earlier finishers win, as in ``generate``.
    """
    scores = torch.cat([done[0], new_scores], 1)
    sid = torch.cat([done[1], torch.where(torch.isfinite(new_scores), new_sid, -1)], 1)
    tokens = torch.cat([done[2], new_tokens], 1)
    best, pick = torch.topk(scores, beams, dim=-1)
    return (best, sid.gather(1, pick).masked_fill(~torch.isfinite(best), -1),
            tokens.gather(1, pick.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])))


@torch.no_grad()
def sid_beam_search_batch(model: Any, trie: SIDTrie, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                          num_beams: int, pad_token_id: int, normalization: str = "full", sample: bool = False,
                          temperature: float = 1.0, generator: torch.Generator | None = None,
                          shared_prefix: bool = True) -> Decoded:
    """Constrained beam search (or beam sampling) for one left-padded batch of prompts.

    ``shared_prefix`` keeps one copy of each prompt's KV for all its beams (when the model supports it).
    """
    check_num_beams(num_beams, trie)
    device = prompt_ids.device
    stepper = _Stepper(model, trie, normalization)
    users, beams = prompt_ids.shape[0], num_beams
    depth = trie.max_depth
    neg_inf = float("-inf")

    state = _PromptState(stepper, prompt_ids, prompt_mask, shared_prefix)
    hidden = state.first_hidden
    nodes = torch.zeros((users, 1), dtype=torch.long, device=device)
    scores = torch.zeros((users, 1), device=device)
    tokens_so_far = torch.zeros((users, 1, 0), dtype=torch.long, device=device)

    done = (torch.full((users, beams), neg_inf, device=device),                      # scores
            torch.full((users, beams), -1, dtype=torch.long, device=device),               # SID index
            torch.full((users, beams, depth), trie.eos_token_id, dtype=torch.long, device=device))  # tokens
    user_offset = torch.arange(users, device=device).unsqueeze(-1)

    for step in range(depth):
        width = nodes.shape[1]
        cand_tok, cand_next, cand_local = trie.allowed(nodes)                     # (U, W, K)
        k = cand_tok.shape[-1]
        logp = stepper.candidate_log_probs(hidden, cand_tok.reshape(-1, k), cand_local.reshape(-1, k), temperature,
                                           (cand_next >= 0).reshape(-1, k))
        cand_scores = scores.unsqueeze(-1) + logp.view(users, width, k)
        cand_scores = cand_scores.masked_fill(cand_next < 0, neg_inf).view(users, width * k)
        n_keep = min(2 * beams, width * k)
        if sample:
            gumbel = -torch.log(-torch.log(torch.rand(cand_scores.shape, device=device, generator=generator).clamp_min(1e-20)))
            _, top_idx = torch.topk(cand_scores + gumbel, n_keep, dim=-1)
            top_scores = cand_scores.gather(1, top_idx)
            top_scores, order = top_scores.sort(dim=-1, descending=True)
            top_idx = top_idx.gather(1, order)
        else:
            top_scores, top_idx = torch.topk(cand_scores, n_keep, dim=-1)
        parent = top_idx // k
        top_tok = cand_tok.view(users, -1).gather(1, top_idx)
        top_next = cand_next.view(users, -1).gather(1, top_idx)
        top_seq = torch.cat([tokens_so_far.gather(1, parent.unsqueeze(-1).expand(-1, -1, step)), top_tok.unsqueeze(-1)], -1)
        finite = torch.isfinite(top_scores)
        is_leaf = (trie.leaf_sid[top_next.clamp(min=0)] >= 0) & (top_next >= 0)
        rank = torch.arange(n_keep, device=device).unsqueeze(0)

        # finished: leaves among the first `beams` candidates
        new_done = torch.where(finite & is_leaf & (rank < beams), top_scores, torch.full_like(top_scores, neg_inf))
        done = _merge_finished(done, new_done, trie.leaf_sid[top_next.clamp(min=0)],
                               F.pad(top_seq, (0, depth - step - 1), value=trie.eos_token_id), beams)
        if step == depth - 1:
            break

        # running: the best `beams` unfinished candidates
        run_key = torch.where(finite & ~is_leaf, top_scores, torch.full_like(top_scores, neg_inf))
        n_run = min(beams, n_keep)
        scores, pick = torch.topk(run_key, n_run, dim=-1)
        nodes = top_next.gather(1, pick).masked_fill(~torch.isfinite(scores), -1)
        tokens_so_far = top_seq.gather(1, pick.unsqueeze(-1).expand(-1, -1, step + 1))
        if normalization == "allowed" and step + 1 >= trie.forced_from_depth:
            # every running beam has one way left to finish, worth log 1 = 0: finish them all now
            # (generate would keep all of them through the forced steps and finish them together)
            safe = nodes.clamp(min=0)
            done = _merge_finished(done, scores, trie.tail_leaf[safe],
                                   torch.cat([tokens_so_far, trie.tail_tokens[safe]], -1)[..., :depth], beams)
            break
        parent_rows = (user_offset * width + parent.gather(1, pick)).reshape(-1)
        hidden = state.step(tokens_so_far[:, :, -1].reshape(-1), parent_rows, step)

    done_scores, done_sid, done_tokens = done
    ids, cmask = _completion_from_tokens(done_tokens, done_sid, trie, pad_token_id)
    return Decoded(done_sid, done_scores, ids, cmask)


def _batched(model: Any, tokenizer_pad: int, prompts: Sequence[Sequence[int]], batch_size: int, desc: str, fn) -> Decoded:
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    parts = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc=desc, disable=len(starts) <= 1, leave=False):
        ids, mask = left_pad(prompts[start:start + batch_size], tokenizer_pad, device)
        parts.append(fn(ids, mask))
    return Decoded.concat(parts)


def sid_beam_search(model: Any, trie: SIDTrie, prompts: Sequence[Sequence[int]], num_beams: int, pad_token_id: int,
                    batch_size: int = 8, normalization: str = "full", sample: bool = False, temperature: float = 1.0,
                    generator: torch.Generator | None = None, shared_prefix: bool = True) -> Decoded:
    """Top-``num_beams`` distinct catalogue SIDs per prompt (token-id lists), best first.

    ``sample=True`` runs constrained beam sampling (stochastic, for RL rollouts).
    """
    check_num_beams(num_beams, trie)
    model.eval()
    trie = trie.to(next(model.parameters()).device)
    return _batched(model, pad_token_id, prompts, batch_size, "beam search",
                    lambda ids, mask: sid_beam_search_batch(model, trie, ids, mask, num_beams, pad_token_id,
                                                            normalization, sample, temperature, generator,
                                                            shared_prefix))


# --------------------------------------------------------------------------------------------
# Constrained sampling
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def sid_sample_batch(model: Any, trie: SIDTrie, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, num_samples: int,
                     pad_token_id: int, temperature: float = 1.0, normalization: str = "full",
                     generator: torch.Generator | None = None, shared_prefix: bool = True) -> Decoded:
    """``num_samples`` independent constrained samples per prompt; scores are the samples' log-probs at T=1."""
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    device = prompt_ids.device
    stepper = _Stepper(model, trie, normalization)
    users, n = prompt_ids.shape[0], num_samples
    state = _PromptState(stepper, prompt_ids, prompt_mask, shared_prefix)
    hidden = state.first_hidden.repeat_interleave(n, 0)
    rows = users * n
    parent_rows: torch.Tensor | None = torch.arange(users, device=device).repeat_interleave(n)
    nodes = torch.zeros(rows, dtype=torch.long, device=device)
    logprob = torch.zeros(rows, device=device)
    tokens = torch.full((rows, trie.max_depth), trie.eos_token_id, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    for step in range(trie.max_depth):
        cand_tok, cand_next, cand_local = trie.allowed(nodes)
        logp = stepper.candidate_log_probs(hidden, cand_tok, cand_local, valid=cand_next >= 0)
        keys = (logp / temperature).masked_fill(cand_next < 0, float("-inf"))
        gumbel = -torch.log(-torch.log(torch.rand(keys.shape, device=device, generator=generator).clamp_min(1e-20)))
        choice = torch.argmax(keys + gumbel, dim=-1, keepdim=True)
        chosen_tok = cand_tok.gather(1, choice).squeeze(1)
        active = ~finished
        logprob = logprob + torch.where(active, logp.gather(1, choice).squeeze(1), torch.zeros_like(logprob))
        tokens[:, step] = torch.where(active, chosen_tok, tokens[:, step])
        nodes = torch.where(active, cand_next.gather(1, choice).squeeze(1), nodes)
        finished = finished | (active & (trie.leaf_sid[nodes.clamp(min=0)] >= 0))
        if step == trie.max_depth - 1:
            break
        if normalization == "allowed" and step + 1 >= trie.forced_from_depth:
            # the rest of every sample is forced (probability 1): append it without model calls
            rest = trie.tail_tokens[nodes.clamp(min=0)][:, : trie.max_depth - step - 1]
            tokens[:, step + 1:] = torch.where((~finished).unsqueeze(-1), rest, tokens[:, step + 1:])
            break
        hidden = state.step(tokens[:, step], parent_rows, step)
        parent_rows = None
    sid_index = trie.tail_leaf[nodes.clamp(min=0)].masked_fill(nodes < 0, -1).view(users, n)
    ids, cmask = _completion_from_tokens(tokens.view(users, n, -1), sid_index, trie, pad_token_id)
    return Decoded(sid_index, logprob.view(users, n), ids, cmask)


def sid_sample(model: Any, trie: SIDTrie, prompts: Sequence[Sequence[int]], num_samples: int, pad_token_id: int,
               temperature: float = 1.0, batch_size: int = 8, normalization: str = "full",
               generator: torch.Generator | None = None, shared_prefix: bool = True) -> Decoded:
    """Constrained temperature sampling: ``num_samples`` valid SIDs per prompt (repeats possible)."""
    model.eval()
    trie = trie.to(next(model.parameters()).device)
    return _batched(model, pad_token_id, prompts, batch_size, "sampling",
                    lambda ids, mask: sid_sample_batch(model, trie, ids, mask, num_samples, pad_token_id,
                                                       temperature, normalization, generator, shared_prefix))


__all__ = [
    "NORMALIZATIONS",
    "Catalogue",
    "Decoded",
    "SIDTrie",
    "TrieLogitsProcessor",
    "check_num_beams",
    "completion_token_ids",
    "encode_prompts",
    "generate_with_trie",
    "left_pad",
    "pad_token_id_of",
    "pinned_generation_kwargs",
    "sid_beam_search",
    "sid_beam_search_batch",
    "sid_sample",
    "sid_sample_batch",
]
