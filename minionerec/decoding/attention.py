"""Shared-prefix ("cascade") attention: the prompt KV is stored once per user, never per beam.

Each decode step attends to [the user's prompt KV ; the row's own few generated tokens] through an
attention function registered with transformers' ``AttentionInterface``; the two parts are merged
by log-sum-exp, which equals softmax attention over their concatenation.  Models with
sliding-window layers (or soft-capped logits) are not supported (:func:`supports_shared_prefix`);
the decoders then expand the prompt cache to every beam instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

SHARED_PREFIX_ATTENTION = "minionerec_shared_prefix"
_PREFIX_STACK: list[PrefixContext] = []


@dataclass
class PrefixContext:
    """The prompt KV of one batch (per layer), read by the attention function during a decode step."""

    keys: list[torch.Tensor]      # per layer (users, kv_heads, prompt_len, head_dim)
    values: list[torch.Tensor]
    mask: torch.Tensor            # (users, prompt_len) bool, False on left padding


def _shared_prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: Any, scaling: float | None = None, dropout: float = 0.0,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of one new token per row over [its user's prompt KV ; the row's own generated KV].

    Rows are grouped by user (``rows // users`` consecutive rows per user).  The two parts are
    computed separately and merged with their log-sum-exps, which equals softmax attention over the
    concatenation, so the prompt KV never has to be copied to every beam.
    """
    ctx = _PREFIX_STACK[-1]
    prompt_k, prompt_v = ctx.keys[module.layer_idx], ctx.values[module.layer_idx]
    users, kv_heads, _, dim = prompt_k.shape
    rows, heads, q_len, _ = query.shape
    if q_len != 1 or rows % users:
        raise RuntimeError("shared-prefix attention expects one new token per row and whole users")
    per_user, groups = rows // users, heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    # prompt part, batched per user: (users, kv_heads, per_user * groups, prompt_len)
    q_user = query.view(users, per_user, kv_heads, groups, dim).permute(0, 2, 1, 3, 4).reshape(users, kv_heads, -1, dim)
    s_prompt = torch.matmul(q_user, prompt_k.transpose(-1, -2)).float() * scale
    s_prompt = s_prompt.masked_fill(~ctx.mask[:, None, None, :], float("-inf"))
    lse_prompt = torch.logsumexp(s_prompt, dim=-1, keepdim=True)
    out_prompt = torch.matmul(torch.exp(s_prompt - lse_prompt).to(prompt_v.dtype), prompt_v)
    out_prompt = out_prompt.view(users, kv_heads, per_user, groups, dim).permute(0, 2, 1, 3, 4).reshape(rows, kv_heads, groups, dim)
    lse_prompt = lse_prompt.view(users, kv_heads, per_user, groups, 1).permute(0, 2, 1, 3, 4).reshape(rows, kv_heads, groups, 1)
    # generated part, per row: (rows, kv_heads, groups, generated)
    q_row = query.view(rows, kv_heads, groups, dim)
    s_gen = torch.matmul(q_row, key.transpose(-1, -2)).float() * scale
    lse_gen = torch.logsumexp(s_gen, dim=-1, keepdim=True)
    out_gen = torch.matmul(torch.exp(s_gen - lse_gen).to(value.dtype), value)
    lse = torch.logaddexp(lse_prompt, lse_gen)
    out = torch.exp(lse_prompt - lse) * out_prompt.float() + torch.exp(lse_gen - lse) * out_gen.float()
    return out.to(query.dtype).reshape(rows, 1, heads, dim), None


def supports_shared_prefix(model: Any) -> bool:
    """True for decoder-only models that use transformers' attention interface with full attention only."""
    config = model.config
    if getattr(config, "use_sliding_window", False) or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "attn_logit_softcapping", None) or getattr(config, "sliding_window_pattern", None):
        return False
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return all(t == "full_attention" for t in layer_types) and hasattr(config, "_attn_implementation")


class use_shared_prefix:
    """Context manager: route the model's attention through :func:`_shared_prefix_attention`."""

    def __init__(self, model: Any, ctx: PrefixContext) -> None:
        self.config, self.ctx = model.config, ctx

    def __enter__(self) -> None:
        from transformers import AttentionInterface

        AttentionInterface.register(SHARED_PREFIX_ATTENTION, _shared_prefix_attention)
        self.saved = self.config._attn_implementation
        self.config._attn_implementation = SHARED_PREFIX_ATTENTION
        _PREFIX_STACK.append(self.ctx)

    def __exit__(self, *exc: object) -> None:
        _PREFIX_STACK.pop()
        self.config._attn_implementation = self.saved
