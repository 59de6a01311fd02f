"""HEPO: level-wise rewards and advantages over the SID levels inside GRPO (reference §6.4, prefix form).

:func:`level_rewards`: ``alpha_l * 1[first l levels right]`` for the levels before the candidate's
last, the terminal reward of the configured reward functions at its last level;
:func:`level_returns`: ``R_l = sum_{m>=l} gamma^(m-l) r_m``; :func:`level_advantages`: z-score
within each group, per level; :func:`token_level_advantages`: the level-l advantage, times ``c_l``,
on the level-l SID token (a type token before the SID gets level 1's, ``\\n``/EOS the last level's).
torch is imported inside the functions, so the data stages that import :mod:`minionerec.gpr` stay light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minionerec.gpr.config import GPRConfig
from minionerec.sid import try_parse_sid

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class HEPOSettings:
    """The HEPO constants of the ``gpr`` section."""

    alphas: tuple[float, ...]
    gamma: float
    coefs: tuple[float, ...]

    @classmethod
    def from_config(cls, gcfg: GPRConfig) -> HEPOSettings:
        return cls(tuple(gcfg.hepo_alphas), gcfg.hepo_gamma, tuple(gcfg.hepo_coefs))


def sid_levels(text: str) -> tuple[str, ...]:
    """The level tokens of a decoded SID (``<a_1><b_2>`` -> ``("<a_1>", "<b_2>")``); () when unparsable."""
    parsed = try_parse_sid(text.strip())
    return tuple(parsed) if parsed else ()


def level_rewards(completions: Sequence[str], targets: Sequence[str], terminal: Sequence[float],
                  alphas: Sequence[float], num_levels: int) -> torch.Tensor:
    """(N, num_levels) rewards: ``alpha_l * 1[first l levels equal the target's]`` for the levels before
    the candidate's last one, the terminal reward at its last level, 0 beyond it."""
    import torch

    out = torch.zeros((len(completions), num_levels), dtype=torch.float32)
    for i, (completion, target) in enumerate(zip(completions, targets)):
        cand, gold = sid_levels(completion), sid_levels(target)
        depth = min(max(1, len(cand)), num_levels)
        for level in range(depth - 1):
            if len(gold) > level and cand[: level + 1] == gold[: level + 1]:
                out[i, level] = alphas[min(level, len(alphas) - 1)]
        out[i, depth - 1] = float(terminal[i])
    return out


def level_returns(rewards: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``R_l = sum_{m >= l} gamma^(m - l) r_m`` per row."""
    import torch

    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for level in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, level] + gamma * running
        returns[:, level] = running
    return returns


def level_advantages(returns: torch.Tensor, group_size: int, epsilon: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """Group z-score of each level's return: ``(R - mean_g) / (std_g + eps)`` per level (unbiased std)."""
    import torch

    grouped = returns.view(-1, group_size, returns.shape[1])
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred[:, :1])
        centred = centred / (std + epsilon)
    return centred.reshape(returns.shape)


def token_level_advantages(level_adv: torch.Tensor, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                           sid_token_ids: torch.Tensor, coefs: Sequence[float]) -> torch.Tensor:
    """(N, L) per-token advantages: the k-th SID token of a completion gets ``c_k * A_k``; tokens before
    the first SID token (a type marker) get level 1's, tokens after the last SID token its level's."""
    import torch

    is_sid = torch.isin(completion_ids, sid_token_ids.to(completion_ids.device)) & completion_mask.bool()
    level = (is_sid.long().cumsum(dim=1) - 1).clamp(min=0, max=level_adv.shape[1] - 1)
    coef = torch.tensor([coefs[min(k, len(coefs) - 1)] for k in range(level_adv.shape[1])],
                        dtype=level_adv.dtype, device=level_adv.device)
    scaled = level_adv * coef
    return scaled.to(completion_ids.device).gather(1, level) * completion_mask.to(scaled.dtype)
