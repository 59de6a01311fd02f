"""Full state dicts of the policy and the reference model, also under DeepSpeed ZeRO-3."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from minionerec.errors import InputError


def zero3_enabled() -> bool:
    """True inside a DeepSpeed ZeRO-3 run (parameters are partitioned across ranks)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


def gathered_parameters(module: torch.nn.Module, modifier_rank: int | None = None) -> Any:
    """Context in which ``module``'s full parameters are present on every rank (ZeRO-3); a no-op otherwise.

    With ``modifier_rank=0`` what rank 0 writes into them is broadcast to the others on exit.
    """
    if not zero3_enabled():
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=modifier_rank)


def full_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` on CPU with its full tensors, also under ZeRO-3."""
    with gathered_parameters(module):
        return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def load_full_state_dict(module: torch.nn.Module, state: dict[str, torch.Tensor],
                         source: str | Path = "weights") -> None:
    """Load a full state dict into ``module`` in place, also when ZeRO-3 partitions it.

    A tied weight may be absent from ``state`` (``save_pretrained`` stores it once).
    """
    with gathered_parameters(module, modifier_rank=0):
        result = module.load_state_dict(state, strict=False)
        params = dict(module.named_parameters(remove_duplicate=False))
        loaded = {id(params[k]) for k in state if k in params}
        missing = [k for k in result.missing_keys if k not in params or id(params[k]) not in loaded]
        if missing or result.unexpected_keys:
            raise InputError(f"{source}: its weights do not fit the model (missing {missing[:5]}, unexpected "
                             f"{result.unexpected_keys[:5]}); point it at a checkpoint of the same architecture")

