"""VAFT (value-aware fine-tuning): per-sample loss weights of the SFT next-item samples.

``(floor + v) / mean(floor + v)`` over the training next-item samples (mean exactly 1, so the
effective learning rate does not shrink); other tasks weigh 1.  The SFT loss multiplies each
response token's cross-entropy by its sample's weight before the usual token mean.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from minionerec.errors import InputError
from minionerec.gpr.sidefiles import ItemFeature

logger = logging.getLogger(__name__)


def vaft_weights(values: Sequence[float], floor: float) -> list[float]:
    """Per-sample weights ``(floor + v) / mean(floor + v)``: mean exactly 1, all equal when the values are."""
    if not values:
        return []
    raw = []
    for v in values:
        if not (math.isfinite(v) and v >= 0):
            raise InputError(f"VAFT: item value {v!r} must be a finite number >= 0")
        raw.append(floor + v)
    mean = sum(raw) / len(raw)
    if mean <= 0:
        raise InputError("VAFT: every weight is 0 (vaft_floor 0 and all values 0); set gpr.vaft_floor > 0")
    return [w / mean for w in raw]


# --------------------------------------------------------------------------------------------
# HEPO


def sample_weights(samples: Sequence[Any], values: Mapping[int, ItemFeature], floor: float, source: str) -> list[float]:
    """One weight per training sample: VAFT weights for the ``next_sid`` samples (by their target's value), 1 else."""
    next_values = []
    for s in samples:
        if s.task != "next_sid":
            continue
        if s.target_item not in values:
            raise InputError(f"{source}: target item {s.target_item} has no value; re-run the GPR data stage on this "
                             "dataset")
        next_values.append(values[s.target_item].value)
    weights = iter(vaft_weights(next_values, floor))
    out = [next(weights) if s.task == "next_sid" else 1.0 for s in samples]
    if next_values:
        chosen = [w for s, w in zip(samples, out) if s.task == "next_sid"]
        logger.info("VAFT: %d next-item weights, min %.3f max %.3f (mean 1)", len(chosen), min(chosen), max(chosen))
    return out
