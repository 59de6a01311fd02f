"""The trainer's arguments: HF ``TrainingArguments`` plus :class:`~minionerec.rl.config.GRPOSettings`.

:func:`grpo_arguments` builds them from the stage's :class:`~minionerec.rl.config.RLConfig`
without a hand-copied field list: every GRPO setting and every ``RLConfig`` key named like a
``TrainingArguments`` field passes through as is; the few keys the stage resolves itself
(:data:`DERIVED`) are computed in :func:`derived_arguments`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TrainingArguments
from transformers.training_args import OptimizerNames

from minionerec.device import use_bf16
from minionerec.errors import InputError
from minionerec.metrics import DEFAULT_KS
from minionerec.rl.config import LOSS_TYPES, ROLLOUT_MODES, GRPOSettings, RLConfig

logger = logging.getLogger("minionerec.rl")

#: RLConfig keys named like a TrainingArguments field whose value the stage resolves (derived_arguments).
DERIVED = frozenset({"bf16", "report_to", "eval_steps", "save_steps", "optim"})
#: RLConfig keys named like a TrainingArguments field that the stage handles itself and never passes.
STAGE_ONLY = frozenset({"resume_from_checkpoint"})

#: bitsandbytes optimizers (need the package and a CUDA device).
BNB_OPTIMS = frozenset({
    "adamw_bnb_8bit", "adamw_8bit", "ademamix", "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit",
    "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit",
    "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit",
})
#: bitsandbytes optimizers whose update is plain AdamW with fp32 states (paging only moves memory):
#: without bitsandbytes they run as this torch optimizer.
BNB_FALLBACKS = {"paged_adamw_32bit": "adamw_torch"}


@dataclass
class MiniOneRecGRPOConfig(GRPOSettings, TrainingArguments):
    """Training arguments plus the GRPO settings (:class:`GRPOSettings`, defaults: the paper's rl.sh)."""

    def __post_init__(self) -> None:
        # Rows are Python objects, not tensors: never let Trainer drop "unused columns".
        self.remove_unused_columns = False
        super().__post_init__()
        if self.rollout_mode not in ROLLOUT_MODES:
            raise InputError(f"rollout_mode must be one of {', '.join(ROLLOUT_MODES)}, got {self.rollout_mode!r}")
        if self.loss_type not in LOSS_TYPES:
            raise InputError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        if self.num_generations < 1:
            raise InputError(f"num_generations must be >= 1, got {self.num_generations}")
        if self.per_device_train_batch_size % self.num_generations:
            raise InputError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) counts completions and must be a "
                f"multiple of num_generations ({self.num_generations}); e.g. use "
                f"{max(1, self.per_device_train_batch_size // self.num_generations) * self.num_generations}"
            )
        if self.num_iterations < 1:
            raise InputError(f"num_iterations must be >= 1, got {self.num_iterations}")
        if self.beta == 0.0:
            self.sync_ref_model = False  # no reference model to sync

    @property
    def prompts_per_device(self) -> int:
        return self.per_device_train_batch_size // self.num_generations


def selection_metric(validation_beams: int) -> str:
    """``NDCG@10``, or NDCG at the largest reported K that ``validation_beams`` beams can fill."""
    return f"NDCG@{max(k for k in DEFAULT_KS if k <= max(validation_beams, 1) and k <= 10)}"


def bitsandbytes_usable() -> bool:
    """bitsandbytes is installed and a CUDA device is present (its optimizers need both)."""
    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def resolve_optim(name: str, key: str = "rl.optim") -> str:
    """A known HF optimizer name; upstream's ``paged_adamw_32bit`` becomes ``adamw_torch`` without bitsandbytes."""
    known = [o.value for o in OptimizerNames]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f"; known: {', '.join(known)}"
        raise InputError(f"{key} {name!r} is not an HF optimizer{hint}")
    if name not in BNB_OPTIMS or bitsandbytes_usable():
        return name
    if name in BNB_FALLBACKS:
        fallback = BNB_FALLBACKS[name]
        logger.info("%s %s needs bitsandbytes on a CUDA device (not here): using %s, the same AdamW update with its "
                    "fp32 states kept in device memory", key, name, fallback)
        return fallback
    raise InputError(f"{key} {name!r} needs bitsandbytes on a CUDA device: install bitsandbytes on a GPU machine or "
                     f"set {key} adamw_torch")


def passed_through_keys() -> frozenset[str]:
    """RLConfig keys that reach the trainer's arguments unchanged: the GRPO settings and same-named HF fields."""
    ours = {f.name for f in dataclasses.fields(RLConfig)}
    theirs = {f.name for f in dataclasses.fields(MiniOneRecGRPOConfig) if f.init}
    return frozenset((ours & theirs) - DERIVED - STAGE_ONLY)


def derived_arguments(cfg: RLConfig, has_validation: bool) -> dict[str, Any]:
    """The arguments the stage resolves: precision, reporting, schedules of validation / checkpoints / selection."""
    select_best = cfg.select_best
    return {
        "warmup_steps": cfg.warmup_ratio,  # HF reads a value < 1 as a fraction of all steps
        "bf16": use_bf16(cfg.bf16, "rl.bf16"),
        "optim": resolve_optim(cfg.optim),
        "report_to": [] if cfg.report_to in ("", "none") else [cfg.report_to],
        "eval_strategy": "steps" if has_validation else "no",
        "eval_steps": cfg.eval_steps if has_validation else None,
        "save_strategy": "steps",
        "save_steps": cfg.eval_steps if select_best else cfg.save_steps,
        "load_best_model_at_end": select_best,
        "metric_for_best_model": selection_metric(cfg.validation_beams) if select_best else None,
        "greater_is_better": True if select_best else None,
        "eval_on_start": select_best,
        "use_cpu": not torch.cuda.is_available(),
        "ddp_find_unused_parameters": False,
    }


def grpo_arguments(cfg: RLConfig, has_validation: bool) -> MiniOneRecGRPOConfig:
    """The trainer's arguments for the stage's config (``has_validation``: the run has validation rows)."""
    if cfg.select_best and not has_validation:
        raise InputError("rl.select_best needs validation: set rl.eval_samples > 0 (and a valid CSV)")
    values = {name: getattr(cfg, name) for name in passed_through_keys()}
    values.update(derived_arguments(cfg, has_validation))
    return MiniOneRecGRPOConfig(**values)
