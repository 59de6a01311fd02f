"""Tokenisation of prompts and samples: the one prompt encoder, response-only labels, the sequence objective."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from minionerec.errors import InputError
from minionerec.llm.tasks import TaskSample

__all__ = ["encode_prompts", "history_sid_labels", "tokenize_samples"]

logger = logging.getLogger(__name__)


def _encode_batched(tokenizer: Any, texts: Sequence[str], batch_size: int) -> list[list[int]]:
    ids: list[list[int]] = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        ids += [list(row) for row in tokenizer(chunk, add_special_tokens=False)["input_ids"]]
    return ids


def encode_prompts(tokenizer: Any, prompts: Sequence[str], batch_size: int = 4096) -> list[list[int]]:
    """Token ids of prompts, batched, with no special tokens: the one prompt tokenisation.

    Training (:func:`tokenize_samples`), RL rollouts and evaluation all feed the model these ids.
    An empty (or all-whitespace) prompt, or one that encodes to no tokens, is an InputError:
    nothing can be generated from it.
    """
    for i, prompt in enumerate(prompts):
        if not prompt or not prompt.strip():
            raise InputError(f"prompt {i} is empty; every user needs a non-empty prompt")
    ids = _encode_batched(tokenizer, prompts, batch_size)
    for i, row in enumerate(ids):
        if not row:
            raise InputError(f"prompt {i} encodes to no tokens: {prompts[i][:80]!r}")
    return ids


def history_sid_labels(prompt_ids: Sequence[int], sid_ids: Collection[int]) -> list[int]:
    """Prompt labels of the sequence objective: the SID tokens of every history item after the first.

    An item is a run of consecutive SID tokens; the first run has no earlier item to be predicted
    from, so it stays -100 like the rest of the prompt.
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
    the prediction of every next item of the row.
    """
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token; set one before training")
    eos = tokenizer.eos_token_id
    prompt_ids = encode_prompts(tokenizer, [s.prompt for s in samples], batch_size)
    completion_ids = _encode_batched(tokenizer, [s.completion for s in samples], batch_size)
    input_ids, labels = [], []
    truncated = 0
    for p, c in zip(prompt_ids, completion_ids):
        ids = p + c + [eos]
        lab = (history_sid_labels(p, history_label_ids) if history_label_ids else [-100] * len(p)) + c + [eos]
        if len(ids) > max_len:
            truncated += 1
            ids, lab = ids[-max_len:], lab[-max_len:]
        input_ids.append(ids)
        labels.append(lab)
    if truncated:
        logger.warning("%d of %d samples were longer than max_len=%d and lost their first tokens",
                       truncated, len(samples), max_len)
    return {"input_ids": input_ids, "labels": labels}
