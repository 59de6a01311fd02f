"""Tokenisation of prompts and samples: the one prompt encoder, response-only labels, the sequence objective."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Collection, Sequence
from typing import Any

from minionerec.errors import InputError
from minionerec.llm.tasks import TaskSample
from minionerec.sid.vocab import ITEM_TOKEN_RE, item_token_sid

__all__ = ["collapse_item_runs", "encode_prompts", "history_sid_labels", "item_token_runs", "tokenize_samples"]

logger = logging.getLogger(__name__)
_ITEM_RUNS: weakref.WeakKeyDictionary[Any, tuple[int, dict[tuple[int, ...], int], frozenset[int]]] = (
    weakref.WeakKeyDictionary())


def _encode_batched(tokenizer: Any, texts: Sequence[str], batch_size: int) -> list[list[int]]:
    ids: list[list[int]] = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        ids += [list(row) for row in tokenizer(chunk, add_special_tokens=False)["input_ids"]]
    return ids


def item_token_runs(tokenizer: Any) -> tuple[dict[tuple[int, ...], int], frozenset[int]]:
    """``({SID level token ids: item token id}, SID level token ids)`` of a tokenizer with item tokens.

    A tokenizer that ``sft.item_tokens`` extended holds one ``<item_...>`` token per catalogue item;
    any other tokenizer gives ``({}, frozenset())``.  Cached per tokenizer and vocabulary size.
    """
    if not hasattr(tokenizer, "get_vocab"):  # a bare encoder (no vocabulary to hold item tokens)
        return {}, frozenset()
    size = len(tokenizer)
    cached = _ITEM_RUNS.get(tokenizer)
    if cached is not None and cached[0] == size:
        return cached[1], cached[2]
    vocab = tokenizer.get_vocab()
    runs: dict[tuple[int, ...], int] = {}
    for token, token_id in vocab.items():
        if token.startswith("<item_") and ITEM_TOKEN_RE.fullmatch(token):
            sid = item_token_sid(token)
            if sid is not None and all(t in vocab for t in sid):
                runs[tuple(vocab[t] for t in sid)] = token_id
    levels = frozenset(i for run in runs for i in run)
    _ITEM_RUNS[tokenizer] = (size, runs, levels)
    return runs, levels


def collapse_item_runs(ids: Sequence[int], runs: dict[tuple[int, ...], int], level_ids: Collection[int]) -> list[int]:
    """``ids`` with every maximal run of SID level tokens that spells an item replaced by that item's token.

    Runs that are not a catalogue item's SID are kept as they are.
    """
    out: list[int] = []
    position, n = 0, len(ids)
    while position < n:
        if ids[position] not in level_ids:
            out.append(ids[position])
            position += 1
            continue
        end = position
        while end < n and ids[end] in level_ids:
            end += 1
        run = tuple(ids[position:end])
        item = runs.get(run)
        out.extend(run if item is None else (item,))
        position = end
    return out


def encode_prompts(tokenizer: Any, prompts: Sequence[str], batch_size: int = 4096) -> list[list[int]]:
    """Token ids of prompts, batched, with no special tokens: the one prompt tokenisation.

    Training (:func:`tokenize_samples`), RL rollouts and evaluation all feed the model these ids.
    With a tokenizer that holds item tokens (``sft.item_tokens``: the checkpoint carries them) every
    SID in a prompt becomes its item's one token (:func:`collapse_item_runs`); completions stay SID
    tokens.  An empty (or all-whitespace) prompt, or one that encodes to no tokens, is an InputError:
    nothing can be generated from it.
    """
    for i, prompt in enumerate(prompts):
        if not prompt or not prompt.strip():
            raise InputError(f"prompt {i} is empty; every user needs a non-empty prompt")
    ids = _encode_batched(tokenizer, prompts, batch_size)
    runs, level_ids = item_token_runs(tokenizer)
    if runs:
        ids = [collapse_item_runs(row, runs, level_ids) for row in ids]
    for i, row in enumerate(ids):
        if not row:
            raise InputError(f"prompt {i} encodes to no tokens: {prompts[i][:80]!r}")
    return ids


def history_sid_labels(prompt_ids: Sequence[int], sid_ids: Collection[int]) -> list[int]:
    """Prompt labels of the sequence objective: the SID tokens of every history item after the first.

    An item is a run of consecutive SID tokens (with item tokens: one item token, when ``sid_ids``
    holds the item token ids); the first run has no earlier item to be predicted from, so it stays
    -100 like the rest of the prompt.
    """
    labels = [-100] * len(prompt_ids)
    first_run_over = False
    for position, token in enumerate(prompt_ids):
        if token in sid_ids:
            if first_run_over:
                labels[position] = token
        elif position and prompt_ids[position - 1] in sid_ids:
            first_run_over = True
    return labels


def tokenize_samples(tokenizer: Any, samples: Sequence[TaskSample], max_len: int,
                     batch_size: int = 4096, history_label_ids: Collection[int] = ()) -> dict[str, list[list[int]]]:
    """``{"input_ids", "labels"}``: prompt + completion + EOS, labels -100 on the prompt.

    Prompt and completion are encoded separately (batched) so the prompt boundary is exact;
    sequences longer than ``max_len`` keep their last ``max_len`` tokens (left truncation).
    With ``history_label_ids`` (the SID token ids: the sequence objective) the prompt's history
    SIDs after the first are labelled too (:func:`history_sid_labels`), so one causal pass trains
    the prediction of every next item of the row, and ``"response_len"`` gives each row's count of
    response labels (completion + EOS, the row's own target) so the loss can weight the two apart.
    """
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token; set one before training")
    eos = tokenizer.eos_token_id
    prompt_ids = encode_prompts(tokenizer, [s.prompt for s in samples], batch_size)
    completion_ids = _encode_batched(tokenizer, [s.completion for s in samples], batch_size)
    input_ids, labels, response_len = [], [], []
    truncated = 0
    for p, c in zip(prompt_ids, completion_ids):
        ids = p + c + [eos]
        lab = (history_sid_labels(p, history_label_ids) if history_label_ids else [-100] * len(p)) + c + [eos]
        if len(ids) > max_len:
            truncated += 1
            ids, lab = ids[-max_len:], lab[-max_len:]
        input_ids.append(ids)
        labels.append(lab)
        response_len.append(min(len(c) + 1, len(ids)))
    if truncated:
        logger.warning("%d of %d samples were longer than max_len=%d and lost their first tokens",
                       truncated, len(samples), max_len)
    if history_label_ids:
        return {"input_ids": input_ids, "labels": labels, "response_len": response_len}
    return {"input_ids": input_ids, "labels": labels}
