"""Constrained temperature sampling: independent samples per prompt, each a valid catalogue SID.

Reuses the dedicated search's machinery (one prefill per prompt, shared prompt KV, trie-indexed
candidates); a sample's score is its log-probability at temperature 1.  With
``normalization="allowed"`` the forced rest of every sample is appended without model calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minionerec.decoding.results import Decoded, completion_from_tokens
from minionerec.decoding.stepping import PromptState, Stepper, batched
from minionerec.decoding.trie import SIDTrie
from minionerec.errors import InputError


@torch.no_grad()
def sid_sample_batch(model: Any, trie: SIDTrie, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, num_samples: int,
                     pad_token_id: int, temperature: float = 1.0, normalization: str = "full",
                     generator: torch.Generator | None = None, shared_prefix: bool = True) -> Decoded:
    """``num_samples`` independent constrained samples per prompt; scores are the samples' log-probs at T=1."""
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    device = prompt_ids.device
    stepper = Stepper(model, trie, normalization)
    users, n = prompt_ids.shape[0], num_samples
    state = PromptState(stepper, prompt_ids, prompt_mask, shared_prefix)
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
    ids, cmask = completion_from_tokens(tokens.view(users, n, -1), sid_index, trie, pad_token_id)
    return Decoded(sid_index, logprob.view(users, n), ids, cmask)


def sid_sample(model: Any, trie: SIDTrie, prompts: Sequence[Sequence[int]], num_samples: int, pad_token_id: int,
               temperature: float = 1.0, batch_size: int = 8, normalization: str = "full",
               generator: torch.Generator | None = None, shared_prefix: bool = True) -> Decoded:
    """Constrained temperature sampling: ``num_samples`` valid SIDs per prompt (repeats possible)."""
    model.eval()
    trie = trie.to(next(model.parameters()).device)
    return batched(model, pad_token_id, prompts, batch_size, "sampling",
                   lambda ids, mask: sid_sample_batch(model, trie, ids, mask, num_samples, pad_token_id,
                                                      temperature, normalization, generator, shared_prefix))
