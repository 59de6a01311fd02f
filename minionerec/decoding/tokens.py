"""Token ids of what the decoders read (prompts) and write (completions), and left padding.

SFT trains the response ``format_response(sid)`` followed by EOS, so that is exactly the
completion the trie allows (:func:`completion_token_ids`).  Prompts are tokenised by the one
prompt tokenisation of :mod:`minionerec.llm` (:func:`encode_prompts` adds the checks a decoder
needs: no empty prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minionerec.errors import InputError
from minionerec.llm import encode_prompts as llm_encode_prompts
from minionerec.llm import format_response


def completion_token_ids(tokenizer: Any, sid: str) -> list[int]:
    """The token ids SFT trains as the response of ``sid``: ``tokenize(format_response(sid)) + [eos]``."""
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token; set tokenizer.eos_token before decoding")
    return list(tokenizer.encode(format_response(sid), add_special_tokens=False)) + [int(tokenizer.eos_token_id)]


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """:func:`minionerec.llm.encode_prompts` (the one prompt tokenisation), rejecting empty prompts."""
    for i, prompt in enumerate(prompts):
        if not prompt or not prompt.strip():
            raise InputError(f"prompt {i} is empty; every user needs a non-empty prompt")
    encoded = llm_encode_prompts(tokenizer, prompts)
    for i, ids in enumerate(encoded):
        if not ids:
            raise InputError(f"prompt {i} encodes to no tokens: {prompts[i][:80]!r}")
    return [list(ids) for ids in encoded]


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
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
