"""The dedicated constrained beam search (and beam sampling) over a :class:`SIDTrie`.

Each prompt is prefilled once (users are batched with left padding) and its KV cache is shared
among the user's beams (:mod:`minionerec.decoding.attention`).  At every step only the candidate
tokens the trie allows are scored.  With ``normalization="full"`` (default) a candidate's score is
its log-probability under the full-vocabulary softmax, so the search reproduces
``model.generate(num_beams=B, num_return_sequences=B, length_penalty=lp, do_sample=False)`` with
:class:`~minionerec.decoding.processor.TrieLogitsProcessor` (same selection rule: top-2B
candidates, a candidate ending in EOS is finished when it ranks among the first B, the next
running beams are the best B unfinished; finished beams rank by ``score / length ** lp`` where
``length`` counts the completion tokens including EOS, and with ``lp != 0`` a user stops taking
finished beams as HF's ``early_stopping=False`` heuristic says).  With ``normalization="trie"``
only the trie-vocabulary rows of the LM head are computed (SID tokens, the newline and EOS: a few
hundred rows instead of ~150k) and scores are normalised over those rows.  With
``normalization="allowed"`` each step is normalised over the tokens the trie allows there (the
model conditioned on staying in the catalogue: item probabilities sum to 1); forced steps then
cost nothing, so once every beam has a single way left to finish (``SIDTrie.forced_from_depth``)
the search appends the forced ``"\\n"`` + EOS without model calls (at ``length_penalty=0``; with a
length penalty the forced steps run, so finished beams are ranked at their true lengths).
``sample=True`` runs constrained beam sampling (Gumbel-top-k, the same as HF's multinomial
without replacement).  Each user gets the top-B *distinct valid* SIDs as a :class:`Decoded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from minionerec.decoding.results import Decoded, completion_from_tokens
from minionerec.decoding.stepping import PromptState, Stepper, batched
from minionerec.decoding.trie import SIDTrie, check_num_beams

#: The finished pool of every user: (ranking key, summed log-prob, SID index, completion tokens).
Finished = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _merge_finished(done: Finished, new_keys: torch.Tensor, new_scores: torch.Tensor, new_sid: torch.Tensor,
                    new_tokens: torch.Tensor, beams: int) -> Finished:
    """Keep the best ``beams`` (by key) of the finished pool plus new finished candidates (-inf = not finished).

    The pool comes first, so on equal keys earlier finishers win, as in ``generate``.  At
    ``length_penalty=0`` the keys are the scores themselves.
    """
    keys = torch.cat([done[0], new_keys], 1)
    scores = torch.cat([done[1], new_scores], 1)
    sid = torch.cat([done[2], torch.where(torch.isfinite(new_keys), new_sid, -1)], 1)
    tokens = torch.cat([done[3], new_tokens], 1)
    best, pick = torch.topk(keys, beams, dim=-1)
    return (best, scores.gather(1, pick), sid.gather(1, pick).masked_fill(~torch.isfinite(best), -1),
            tokens.gather(1, pick.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])))


def _length_normalised(scores: torch.Tensor, length: int, length_penalty: float) -> torch.Tensor:
    """HF's finished-beam key ``score / length ** length_penalty`` (the scores themselves at 0)."""
    if length_penalty == 0.0:
        return scores
    return scores / (length ** length_penalty)


def _still_open(open_users: torch.Tensor, done: Finished, running_scores: torch.Tensor, length: int,
                length_penalty: float) -> torch.Tensor:
    """HF's ``early_stopping=False`` heuristic: a user whose pool is full stops taking finished beams
    once its best running beam, normalised at the current ``length``, cannot beat the pool's worst."""
    full = torch.isfinite(done[0]).all(-1, keepdim=True)
    worst = done[0].min(-1, keepdim=True).values
    best_running = running_scores[:, :1] / (length ** length_penalty)
    return open_users & ~(full & ~(best_running > worst))


@torch.no_grad()
def sid_beam_search_batch(model: Any, trie: SIDTrie, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                          num_beams: int, pad_token_id: int, normalization: str = "full", sample: bool = False,
                          temperature: float = 1.0, generator: torch.Generator | None = None,
                          shared_prefix: bool = True, length_penalty: float = 0.0) -> Decoded:
    """Constrained beam search (or beam sampling) for one left-padded batch of prompts.

    ``shared_prefix`` keeps one copy of each prompt's KV for all its beams (when the model supports it);
    ``length_penalty`` ranks finished beams by ``score / length ** length_penalty`` as HF does.
    """
    check_num_beams(num_beams, trie)
    device = prompt_ids.device
    stepper = Stepper(model, trie, normalization)
    users, beams = prompt_ids.shape[0], num_beams
    depth = trie.max_depth
    neg_inf = float("-inf")
    penalised = length_penalty != 0.0

    state = PromptState(stepper, prompt_ids, prompt_mask, shared_prefix)
    hidden = state.first_hidden
    nodes = torch.zeros((users, 1), dtype=torch.long, device=device)
    scores = torch.zeros((users, 1), device=device)
    tokens_so_far = torch.zeros((users, 1, 0), dtype=torch.long, device=device)

    empty = torch.full((users, beams), neg_inf, device=device)
    done: Finished = (empty, empty,                                                     # keys, scores
                      torch.full((users, beams), -1, dtype=torch.long, device=device),  # SID index
                      torch.full((users, beams, depth), trie.eos_token_id, dtype=torch.long, device=device))  # tokens
    open_users = torch.ones((users, 1), dtype=torch.bool, device=device)
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

        # finished: leaves among the first `beams` candidates (of users still taking finished beams)
        finishing = finite & is_leaf & (rank < beams)
        if penalised:
            finishing = finishing & open_users
        new_done = torch.where(finishing, top_scores, torch.full_like(top_scores, neg_inf))
        done = _merge_finished(done, _length_normalised(new_done, step + 1, length_penalty), new_done,
                               trie.leaf_sid[top_next.clamp(min=0)],
                               F.pad(top_seq, (0, depth - step - 1), value=trie.eos_token_id), beams)
        if step == depth - 1:
            break

        # running: the best `beams` unfinished candidates
        run_key = torch.where(finite & ~is_leaf, top_scores, torch.full_like(top_scores, neg_inf))
        n_run = min(beams, n_keep)
        scores, pick = torch.topk(run_key, n_run, dim=-1)
        nodes = top_next.gather(1, pick).masked_fill(~torch.isfinite(scores), -1)
        tokens_so_far = top_seq.gather(1, pick.unsqueeze(-1).expand(-1, -1, step + 1))
        if penalised:
            open_users = _still_open(open_users, done, scores, step + 1, length_penalty)
            if not bool(open_users.any()):
                break
        elif normalization == "allowed" and step + 1 >= trie.forced_from_depth:
            # every running beam has one way left to finish, worth log 1 = 0: finish them all now
            # (generate would keep all of them through the forced steps and finish them together)
            safe = nodes.clamp(min=0)
            done = _merge_finished(done, scores, scores, trie.tail_leaf[safe],
                                   torch.cat([tokens_so_far, trie.tail_tokens[safe]], -1)[..., :depth], beams)
            break
        parent_rows = (user_offset * width + parent.gather(1, pick)).reshape(-1)
        hidden = state.step(tokens_so_far[:, :, -1].reshape(-1), parent_rows, step)

    _, done_scores, done_sid, done_tokens = done
    ids, cmask = completion_from_tokens(done_tokens, done_sid, trie, pad_token_id)
    return Decoded(done_sid, done_scores, ids, cmask)


def sid_beam_search(model: Any, trie: SIDTrie, prompts: Sequence[Sequence[int]], num_beams: int, pad_token_id: int,
                    batch_size: int = 8, normalization: str = "full", sample: bool = False, temperature: float = 1.0,
                    generator: torch.Generator | None = None, shared_prefix: bool = True,
                    length_penalty: float = 0.0) -> Decoded:
    """Top-``num_beams`` distinct catalogue SIDs per prompt (token-id lists), best first.

    ``sample=True`` runs constrained beam sampling (stochastic, for RL rollouts);
    ``length_penalty`` is HF's (finished beams rank by ``score / length ** length_penalty``; 0 = by score).
    """
    check_num_beams(num_beams, trie)
    model.eval()
    trie = trie.to(next(model.parameters()).device)
    return batched(model, pad_token_id, prompts, batch_size, "beam search",
                   lambda ids, mask: sid_beam_search_batch(model, trie, ids, mask, num_beams, pad_token_id,
                                                           normalization, sample, temperature, generator,
                                                           shared_prefix, length_penalty))
