"""Rollouts: G constrained completions per prompt (every one a catalogue item), from the shared decoder."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from transformers import PreTrainedModel

from minionerec.decoding import sid_beam_search_batch, sid_sample_batch
from minionerec.errors import InputError
from minionerec.rl.config import ROLLOUT_MODES


class RolloutFn(Protocol):
    """Constrained rollouts: G valid completions per prompt, grouped by prompt, ranked within.

    ``prompt_ids``/``prompt_mask`` are left-padded (B, P).  Returns right-padded
    ``completion_ids`` and ``completion_mask`` of shape (B * G, L); rows ``b*G .. b*G+G-1`` belong
    to prompt ``b`` (best beam first for beam search).
    """

    def __call__(self, model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                 num_generations: int, mode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]: ...


class TrieRollout:
    """The :class:`RolloutFn` of the shared decoder (:mod:`minionerec.decoding`) over a SID trie.

    ``beam_search`` -> ``sid_beam_search_batch`` (top-G distinct items, deterministic),
    ``beam_sample`` -> the same with Gumbel-top-k sampling, ``sample`` -> ``sid_sample_batch``.
    Sampling modes draw from a generator seeded with ``seed`` (offset by the process index).
    """

    def __init__(self, trie: Any, pad_token_id: int, normalization: str = "full", seed: int = 42):
        self.trie = trie
        self.pad_token_id = pad_token_id
        self.normalization = normalization
        self.seed = seed
        self._generator: torch.Generator | None = None

    def _generator_on(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def decode(self, model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
               num_generations: int, mode: str, temperature: float) -> Any:
        """The decoder's ``Decoded`` (items, scores, completion ids and mask per prompt)."""
        device = prompt_ids.device
        if self.trie.device != device:
            self.trie = self.trie.to(device)
        if mode == "sample":
            return sid_sample_batch(model, self.trie, prompt_ids, prompt_mask, num_generations, self.pad_token_id,
                                    temperature, self.normalization, self._generator_on(device))
        if mode not in ("beam_search", "beam_sample"):
            raise InputError(f"rollout_mode must be one of {', '.join(ROLLOUT_MODES)}, got {mode!r}")
        sample = mode == "beam_sample"
        return sid_beam_search_batch(model, self.trie, prompt_ids, prompt_mask, num_generations, self.pad_token_id,
                                     self.normalization, sample, temperature,
                                     self._generator_on(device) if sample else None)

    def __call__(self, model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                 num_generations: int, mode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        decoded = self.decode(model, prompt_ids, prompt_mask, num_generations, mode, temperature)
        depth = decoded.completion_ids.shape[-1]
        return decoded.completion_ids.reshape(-1, depth), decoded.completion_mask.reshape(-1, depth)

