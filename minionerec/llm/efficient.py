"""Cheaper SFT of a pretrained LM on a small machine: LoRA adapters (``sft.lora_r``) and frozen lower
layers (``sft.freeze_layers``).  Both keep the SID token rows trainable, since the SIDs are new
vocabulary the base model has never seen.

LoRA goes through ``peft`` (imported only when ``lora_r > 0``): low-rank adapters on
``lora_target_modules`` plus peft's trainable token rows (``trainable_token_indices``) for the SID
tokens, so only ``len(SID tokens) x hidden`` embedding values train instead of the whole matrix
(a tied LM head shares them).  :func:`merge_lora` folds adapters and rows back into the base
model before the final save, so the saved checkpoint is a plain model in the base dtype that the
evaluate and RL stages load as before.  Trainer checkpoints of a LoRA run hold the adapter only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from minionerec.errors import InputError

__all__ = ["apply_efficiency_keys", "apply_lora", "freeze_lower_layers", "is_peft_model", "lora_target_modules", "merge_lora"]

logger = logging.getLogger("minionerec.sft")


def lora_target_modules(setting: str) -> str | list[str]:
    """``all-linear`` (every linear layer but the LM head, peft's shorthand) or a comma-separated list of names."""
    value = setting.strip()
    if value == "all-linear":
        return value
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise InputError("sft.lora_target_modules must be all-linear or module names such as q_proj,v_proj")
    return names


def apply_lora(model: Any, sid_ids: Sequence[int], r: int, alpha: float, dropout: float,
               target_modules: str) -> Any:
    """Wrap ``model`` in a peft LoRA model whose trainable parameters are the adapters and the SID rows."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise InputError("sft.lora_r > 0 needs peft: pip install peft") from None
    if r < 0 or dropout < 0 or dropout >= 1:
        raise InputError(f"sft.lora_r must be >= 0 and sft.lora_dropout in [0, 1), got {r} and {dropout}")
    if not sid_ids:
        raise InputError("sft.lora_r: the catalogue has no SID tokens to train")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none", task_type="CAUSAL_LM",
                        target_modules=lora_target_modules(target_modules),
                        trainable_token_indices=sorted({int(i) for i in sid_ids}))
    peft_model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA r=%d alpha=%g dropout=%g on %s, %d SID rows: %d of %d parameters train (%.2f%%)", r, alpha,
                dropout, target_modules, len(sid_ids), trainable, total, 100.0 * trainable / max(total, 1))
    return peft_model


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a peft wrapper (without importing peft when it is not installed)."""
    return type(model).__module__.startswith("peft.")


def merge_lora(trainer: Any) -> None:
    """Replace the trainer's peft model by the base model with adapters and SID rows merged in (before saving)."""
    if not is_peft_model(trainer.model):
        return
    merged = trainer.model.merge_and_unload()
    trainer.model = merged
    trainer.model_wrapped = merged
    logger.info("LoRA adapters merged into %s for the final save", type(merged).__name__)


def _row_mask_hook(mask: torch.Tensor):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * mask.to(device=grad.device, dtype=grad.dtype)

    return hook


def decoder_layers(model: Any) -> Any:
    """The decoder's layer list (``model.model.layers`` for Llama/Qwen2-style models)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise InputError(f"sft.freeze_layers: cannot find the decoder layers of {type(model).__name__}")
    return layers


def freeze_lower_layers(model: Any, n: int, sid_ids: Sequence[int]) -> int:
    """Freeze the first ``n`` decoder layers and the input embeddings except the SID rows; returns frozen values.

    The embedding matrix keeps ``requires_grad`` with a gradient hook that zeroes its non-SID rows
    (as ``freeze_llm``; sft forces weight decay 0 so that AdamW leaves those rows unchanged).  A
    tied LM head is the same matrix; an untied head and the layers above ``n`` train as usual.
    """
    layers = decoder_layers(model)
    if n < 0 or n > len(layers):
        raise InputError(f"sft.freeze_layers must be in [0, {len(layers)}] for this model, got {n}")
    if not sid_ids:
        raise InputError("sft.freeze_layers: the catalogue has no SID tokens to train")
    frozen = 0
    for layer in list(layers)[:n]:
        for parameter in layer.parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    embedding = model.get_input_embeddings().weight
    mask = torch.zeros(embedding.shape[0], 1)
    mask[torch.tensor(sorted({int(i) for i in sid_ids}), dtype=torch.long)] = 1.0
    embedding.requires_grad_(True)
    embedding.register_hook(_row_mask_hook(mask))
    frozen += embedding.numel() - embedding.shape[1] * int(mask.sum())
    logger.info("freeze_layers: first %d of %d decoder layers and the non-SID embedding rows frozen (%d values)",
                n, len(layers), frozen)
    return frozen


def apply_efficiency_keys(cfg: Any, model: Any, sid_ids: Sequence[int]) -> Any:
    """``sft.freeze_layers`` / ``sft.lora_r`` applied to the built model (both 0: the model unchanged)."""
    chosen = [name for name, on in (("freeze_llm", cfg.freeze_llm), ("freeze_layers", cfg.freeze_layers),
                                    ("lora_r", cfg.lora_r)) if on]
    if len(chosen) > 1:
        raise InputError(f"sft: choose one of freeze_llm, freeze_layers and lora_r, got {', '.join(chosen)}")
    if cfg.freeze_layers:
        freeze_lower_layers(model, cfg.freeze_layers, sid_ids)
    if cfg.lora_r:
        return apply_lora(model, sid_ids, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)
    return model
