"""Trainer checkpoints in a stage's output folder: which one to resume from, and stale ones."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from minionerec.errors import InputError

logger = logging.getLogger(__name__)


def checkpoints_in(output_dir: str | Path) -> list[Path]:
    """``output_dir/checkpoint-N`` folders, oldest step first."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def resolve_resume(setting: str, output_dir: str | Path, section: str) -> str | None:
    """``resume_from_checkpoint``: empty/false = start fresh, auto/true = the newest checkpoint (if any), else a folder."""
    value = setting.strip()
    if not value or value.lower() in ("false", "no", "none"):
        return None
    if value.lower() in ("auto", "true", "yes"):
        found = checkpoints_in(output_dir)
        if not found:
            logger.info("resume_from_checkpoint=%s but %s has no checkpoint: starting fresh", value, output_dir)
            return None
        return str(found[-1])
    if not Path(value).is_dir():
        raise InputError(f"{section}.resume_from_checkpoint {value} is not a checkpoint folder")
    return value


def remove_stale_checkpoints(output_dir: str | Path) -> None:
    """A fresh run owns its output folder: drop an earlier run's checkpoints.

    Left in place they would mix with the new run's (checkpoint rotation and ``resume auto``
    sort by step number, so an old run's higher steps would win).
    """
    stale = checkpoints_in(output_dir)
    if stale:
        logger.warning("fresh run: removing %d checkpoint(s) of an earlier run in %s (%s)", len(stale), output_dir,
                       ", ".join(p.name for p in stale))
    for path in stale:
        shutil.rmtree(path)


def read_model_weights(model_dir: str | Path) -> dict[str, Any]:
    """The tensors of a saved HF model folder (``model.safetensors``, sharded safetensors or ``pytorch_model.bin``).

    Read from the files, not through ``from_pretrained``: under DeepSpeed ZeRO-3 a model built by
    ``from_pretrained`` is partitioned and its ``state_dict()`` holds empty tensors.
    """
    import torch
    from safetensors.torch import load_file

    folder = Path(model_dir)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        state: dict[str, Any] = {}
        for shard in shards:
            state.update(load_file(folder / shard))
        return state
    if (folder / "model.safetensors").is_file():
        return load_file(folder / "model.safetensors")
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise InputError(f"{folder}: no model.safetensors, sharded safetensors or pytorch_model.bin to read weights from")
