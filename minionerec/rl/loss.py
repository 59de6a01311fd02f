"""GRPO's pure pieces: group advantages, the k3 KL, the clipped policy loss and completion log-probs.

One update, per token: ``-min(rho * A, clip(rho, 1-eps, 1+eps_high) * A) + beta * k3`` with
``rho = pi / pi_rollout`` (exactly 1 with one update per rollout, where the gradient equals
upstream's ``exp(logp - sg(logp)) * A``), ``k3 = exp(ref - logp) - (ref - logp) - 1``, aggregated
as ``grpo`` (mean per sequence, then over sequences), ``dapo`` (sum over all tokens / number of
tokens) or ``gspo`` (sequence-level ratio ``exp(mean_t(logp - logp_old))`` and sequence-mean KL).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from trl.trainer.utils import selective_log_softmax


def group_advantages(rewards: torch.Tensor, group_size: int, epsilon: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """``(r - mean_g) / (std_g + epsilon)`` per group of ``group_size`` consecutive rewards (unbiased std)."""
    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred[:, :1])
        centred = centred / (std + epsilon)
    return centred.reshape(-1)


def nonzero_groups(advantages: torch.Tensor, group_size: int) -> torch.Tensor:
    """(n_groups,) bool: groups with at least one non-zero advantage (the ones that carry signal).

    ``advantages`` is (N,) or (N, K) (per-level advantages, rl_gpr.py); rows are grouped by prompt.
    """
    return advantages.reshape(advantages.shape[0] // group_size, -1).abs().amax(dim=1) > 0


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1`` (>= 0)."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    loss_type: str = "grpo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped policy loss plus ``beta`` times the k3 KL; returns ``(loss, stats)``.

    Shapes: ``logps``/``old_logps``/``ref_logps``/``mask`` are (N, L) over completion tokens,
    ``advantages`` is (N,) (one per sequence) or (N, L) (one per token, e.g. rl_gpr.py's HEPO levels).
    """
    mask = mask.to(logps.dtype)
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    kl = k3_kl(logps, ref_logps) if ref_logps is not None else torch.zeros_like(logps)
    if loss_type == "gspo":
        ratio = torch.exp(masked_mean(logps - old_logps, mask, dim=1)).unsqueeze(1)
    else:
        ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    policy = torch.min(ratio * adv, clipped * adv)
    clip_frac = ((ratio * adv) > (clipped * adv)).float()
    if loss_type == "gspo":
        seq_kl = masked_mean(kl, mask, dim=1)
        loss = -(policy.squeeze(1) - beta * seq_kl).mean()
        clip_frac_value = clip_frac.mean()
    else:
        per_token = -(policy - beta * kl)
        if loss_type == "dapo":
            loss = masked_mean(per_token, mask)
        else:
            loss = masked_mean(per_token, mask, dim=1).mean()
        clip_frac_value = masked_mean(clip_frac, mask)
    stats = {"kl": masked_mean(kl, mask).detach(), "clip_frac": clip_frac_value.detach()}
    return loss, stats


def full_sequence_logps(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                        completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Completion-token log-probs from one forward over ``prompt + completion`` per rollout, (N, L).

    ``prompt_ids``/``prompt_mask`` hold one left-padded row per group; completions are (N, L)
    with N a multiple of the number of prompts, grouped by prompt.
    """
    group = completion_ids.shape[0] // prompt_ids.shape[0]
    input_ids = torch.cat([prompt_ids.repeat_interleave(group, 0), completion_ids], dim=1)
    attention = torch.cat([prompt_mask.repeat_interleave(group, 0), completion_mask], dim=1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    n_completion = completion_ids.shape[1]
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                   logits_to_keep=n_completion + 1).logits
    return selective_log_softmax(logits[:, :-1, :].float(), completion_ids)


def shared_prefix_logps(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                        completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Same values as :func:`full_sequence_logps`, running each prompt once instead of G times.

    The prompt is encoded once per group; its KV cache (still attached to the autograd graph)
    is repeated to the G completions, which then run on their own few tokens.  Gradients reach
    the prompt positions through the cache, so the update equals the full-sequence one.
    """
    group = completion_ids.shape[0] // prompt_ids.shape[0]
    positions = (prompt_mask.cumsum(dim=1) - 1).clamp(min=0)
    cache = DynamicCache(config=getattr(model, "module", model).config)  # unwrap DDP / DeepSpeed for the config
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)
    first = out.logits[:, -1:, :].repeat_interleave(group, 0)
    n_completion = completion_ids.shape[1]
    if n_completion == 1:
        return selective_log_softmax(first.float(), completion_ids)
    cache.batch_repeat_interleave(group)
    prompt_len = prompt_mask.sum(dim=1).repeat_interleave(group)
    steps = torch.arange(n_completion - 1, device=completion_ids.device)
    attention = torch.cat([prompt_mask.repeat_interleave(group, 0), completion_mask[:, :-1]], dim=1)
    rest = model(input_ids=completion_ids[:, :-1], attention_mask=attention,
                 position_ids=prompt_len.unsqueeze(1) + steps.unsqueeze(0), cache=cache, use_cache=True).logits
    logits = torch.cat([first, rest], dim=1)
    return selective_log_softmax(logits.float(), completion_ids)

