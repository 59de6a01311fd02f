"""Running the model for the dedicated decoders: prefill a batch of prompts once, then step one
token per row, scoring only the candidate tokens the trie allows (:class:`Stepper`,
:class:`PromptState`), and splitting many prompts into left-padded batches (:func:`batched`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from minionerec.decoding.attention import PrefixContext, supports_shared_prefix, use_shared_prefix
from minionerec.decoding.results import Decoded
from minionerec.decoding.tokens import left_pad
from minionerec.decoding.trie import SIDTrie, check_normalization


class Stepper:
    """Runs the decoder body and scores candidate tokens with (a slice of) the LM head."""

    def __init__(self, model: Any, trie: SIDTrie, normalization: str) -> None:
        check_normalization(normalization)
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


class PromptState:
    """A batch of prompts prefilled once, then stepped one token per row.

    ``shared=True`` keeps the prompt KV once per user (shared-prefix attention); otherwise the
    prompt KV is expanded to every row (HF-style), which any model supports.
    """

    def __init__(self, stepper: Stepper, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, shared: bool) -> None:
        self.stepper = stepper
        self.prompt_mask = prompt_mask
        self.prompt_len = prompt_mask.sum(-1)
        prompt_cache = DynamicCache(config=stepper.model.config)
        positions = (prompt_mask.cumsum(-1) - 1).masked_fill(prompt_mask == 0, 0)
        self.first_hidden = stepper.hidden(prompt_ids, prompt_mask, positions, prompt_cache)
        self.shared = shared and supports_shared_prefix(stepper.model)
        if self.shared:
            self.context = PrefixContext([layer.keys for layer in prompt_cache.layers],
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
            with use_shared_prefix(self.stepper.model, self.context):
                return self.stepper.hidden(tokens.unsqueeze(-1), None, positions, self.cache)
        mask = torch.cat([self.prompt_mask.repeat_interleave(per_user, 0),
                          torch.ones((tokens.shape[0], step + 1), dtype=self.prompt_mask.dtype, device=tokens.device)], 1)
        return self.stepper.hidden(tokens.unsqueeze(-1), mask, positions, self.cache)


def batched(model: Any, tokenizer_pad: int, prompts: Sequence[Sequence[int]], batch_size: int, desc: str,
            fn: Callable[[torch.Tensor, torch.Tensor], Decoded]) -> Decoded:
    """``fn(input_ids, attention_mask)`` over left-padded batches of ``batch_size`` prompts, concatenated."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    parts = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc=desc, disable=len(starts) <= 1, leave=False):
        ids, mask = left_pad(prompts[start:start + batch_size], tokenizer_pad, device)
        parts.append(fn(ids, mask))
    return Decoded.concat(parts)
