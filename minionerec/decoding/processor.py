"""Constrained decoding through HF ``generate``: a stateless trie logits processor and a wrapper
that pins every generation setting.

:class:`TrieLogitsProcessor` recomputes each row's trie node from the tokens generated after the
(padded) prompt, so it carries no state between steps; disallowed tokens get ``-inf`` and a row off
the trie allows only EOS.  :func:`generate_with_trie` blanks ``model.generation_config`` during the
call and passes every sampling/penalty field explicitly, so a checkpoint's
``generation_config.json`` (top_k, top_p, repetition_penalty, do_sample, ...) cannot leak in.
The dedicated decoders (:mod:`minionerec.decoding.search`, :mod:`minionerec.decoding.sampling`)
never read ``generation_config``; this path is their oracle and a user-facing alternative.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor

from minionerec.decoding.trie import SIDTrie, check_normalization


class TrieLogitsProcessor(LogitsProcessor):
    """Masks every token the trie does not allow with ``-inf`` (stateless; see module docstring).

    ``prompt_length`` is the (padded) prompt width of the ``input_ids`` passed to ``generate``.
    """

    def __init__(self, trie: SIDTrie, prompt_length: int, normalization: str = "full") -> None:
        check_normalization(normalization)
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
                             temperature: float = 1.0, length_penalty: float = 0.0) -> dict[str, Any]:
    """Every generation field that changes the search, set explicitly for ``model.generate``.

    transformers fills fields left unset (``None``) from the checkpoint's generation_config.json;
    pinning them keeps e.g. an Instruct model's top_k/top_p/repetition_penalty out.  Fields whose
    neutral value *is* ``None`` (bad_words_ids, sequence_bias, forced_*_token_id) cannot be pinned
    this way: :func:`generate_with_trie` also blanks ``model.generation_config`` during the call.
    """
    kwargs: dict[str, Any] = dict(
        num_beams=num_beams, num_return_sequences=num_return_sequences, max_new_tokens=max_new_tokens,
        min_new_tokens=0, do_sample=do_sample, repetition_penalty=1.0,
        encoder_repetition_penalty=1.0, no_repeat_ngram_size=0, length_penalty=length_penalty, early_stopping=False,
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
                       generator_seed: int | None = None, length_penalty: float = 0.0) -> torch.Tensor:
    """``model.generate`` constrained by :class:`TrieLogitsProcessor`, every setting pinned.

    ``length_penalty`` is HF's: finished beams rank by ``score / generated_length ** length_penalty``
    (0, the default, ranks by the summed log-probability; ``early_stopping`` stays pinned to False).

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
        do_sample=do_sample, temperature=temperature, length_penalty=length_penalty,
    )
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, logits_processor=[processor], **kwargs)
    finally:
        model.generation_config = saved
    return out[:, input_ids.shape[1]:]
