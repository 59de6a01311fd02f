"""Checkpoints and weight files: which checkpoint to resume from, stale ones, and every weight-file read.

Every weight file of the project is read through :func:`load_torch_file`, :func:`load_safetensors_file`
or :func:`from_pretrained_checked`, so a bad file (a pickle, a truncated download, a folder of
another model) is one InputError naming the file and the fix; :func:`resume_errors` does the same
for the files HF Trainer reads itself when it resumes (rng_state, optimizer, scheduler, weights).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minionerec.errors import InputError

logger = logging.getLogger(__name__)


def checkpoints_in(output_dir: str | Path) -> list[Path]:
    """``output_dir/checkpoint-N`` folders, oldest step first."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def resolve_resume(setting: str, output_dir: str | Path, section: str, previous: str = "interrupted") -> str | None:
    """``resume_from_checkpoint``: empty/false/none = start fresh, a folder = that checkpoint, auto/true (the
    default) = the newest checkpoint of an interrupted run of the same config.

    ``previous`` is :func:`minionerec.records.previous_run` of ``output_dir``: auto resumes only an
    ``"interrupted"`` run; a ``"finished"`` one (its done-record is present) is never trained further and
    an ``"other"`` one (another config or other inputs) is not continued: both start fresh.
    """
    value = setting.strip()
    if not value or value.lower() in ("false", "no", "none"):
        return None
    if value.lower() in ("auto", "true", "yes"):
        found = checkpoints_in(output_dir)
        if not found:
            return None
        if previous == "finished":
            logger.info("%s holds a finished run (its done-record is present): training again from scratch, "
                        "not further", output_dir)
            return None
        if previous != "interrupted":
            logger.info("%s: its checkpoints are of a run with another config or other inputs: starting fresh",
                        output_dir)
            return None
        logger.info("resuming the interrupted run in %s from %s", output_dir, found[-1].name)
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
    folder = Path(model_dir)
    fix = f"re-save the model folder {folder} (rerun the stage that wrote it)"
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise InputError(f"shard index {index} is not a safetensors index ({exc}); {fix}") from None
        state: dict[str, Any] = {}
        for shard in shards:
            state.update(load_safetensors_file(folder / shard, "model weights", fix))
        return state
    if (folder / "model.safetensors").is_file():
        return load_safetensors_file(folder / "model.safetensors", "model weights", fix)
    if (folder / "pytorch_model.bin").is_file():
        return load_torch_file(folder / "pytorch_model.bin", "model weights", fix)
    raise InputError(f"{folder}: no model.safetensors, sharded safetensors or pytorch_model.bin to read weights from")


def _short(exc: BaseException) -> str:
    """The exception's type and first line (torch's weights_only message runs for many lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_torch_file(path: str | Path, what: str, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; an unreadable file is an InputError naming it and ``fix``.

    ``weights_only`` refuses pickled code, so a pickle file fails here instead of executing anything.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for a bad file
        raise InputError(f"{what} {path} cannot be read as plain tensors ({_short(exc)}); {fix}") from exc


def load_safetensors_file(path: str | Path, what: str, fix: str) -> dict[str, Any]:
    """``safetensors.torch.load_file(path)``; a truncated or foreign file is an InputError naming it and ``fix``."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}; {fix}")
    try:
        return load_file(path)
    except Exception as exc:  # SafetensorError (truncated/corrupt header), OSError
        raise InputError(f"{what} {path} is not a readable safetensors file ({_short(exc)}); {fix}") from exc


def from_pretrained_checked(loader: Any, path: str | Path, fix: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(path, **kwargs)``; a folder that cannot be loaded is an InputError naming it."""
    try:
        return loader.from_pretrained(path, **kwargs)
    except InputError:
        raise
    except Exception as exc:  # OSError, ValueError, SafetensorError, RuntimeError (size mismatch), ...
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            raise  # the folder is fine; the device is too small
        raise InputError(f"model folder {path} cannot be loaded by {getattr(loader, '__name__', loader)} "
                         f"({_short(exc)}); {fix}") from exc


#: HF Trainer's resume loaders and the files each reads from a checkpoint folder.
_RESUME_LOADERS = {
    "_load_rng_state": "rng_state*.pth",
    "_load_optimizer_and_scheduler": "optimizer.pt / scheduler.pt",
    "_load_scaler": "scaler.pt",
    "_load_from_checkpoint": "the model weights",
    "load_sharded_checkpoint": "the model weight shards",
    "load_from_json": "trainer_state.json",
}


@contextlib.contextmanager
def resume_errors(checkpoint: str | Path | None) -> Iterator[None]:
    """Around ``trainer.train(resume_from_checkpoint=checkpoint)``: a failure inside HF's checkpoint
    loading becomes an InputError naming the checkpoint folder, the file and the fix.

    Only exceptions raised inside those loaders are converted (found by the traceback's frames);
    errors of training itself pass unchanged.
    """
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        if checkpoint is None:
            raise
        tb, loader = exc.__traceback__, None
        while tb is not None:
            loader = tb.tb_frame.f_code.co_name if tb.tb_frame.f_code.co_name in _RESUME_LOADERS else loader
            tb = tb.tb_next
        if loader is None:
            raise
        raise InputError(
            f"checkpoint {checkpoint} cannot be resumed from: {_RESUME_LOADERS[loader]} is unreadable "
            f"({_short(exc)}); delete that checkpoint folder (the next run resumes from an earlier checkpoint or "
            "starts fresh) or point resume_from_checkpoint at another one"
        ) from exc


def without_tied_missing_keys(model: Any, load_result: Any) -> Any:
    """``load_result`` (torch's ``_IncompatibleKeys``) minus missing keys that are tied to a loaded parameter.

    ``save_pretrained`` stores a tied ``lm_head.weight`` once (as the input embedding), so loading
    it back reports the head as missing although it holds the loaded tensor; a key whose
    parameter is not shared with a loaded one stays in the list.
    """
    missing = list(getattr(load_result, "missing_keys", []) or [])
    if not missing:
        return load_result
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = {id(p) for name, p in params.items() if name not in missing}
    real = [key for key in missing if key not in params or id(params[key]) not in loaded]
    return load_result._replace(missing_keys=real) if hasattr(load_result, "_replace") else load_result


class TiedWeightsLoadMixin:
    """For Trainer subclasses: no "missing keys ... lm_head.weight" warning for a tied head when a checkpoint
    is loaded (best model at the end, resume); real missing keys still warn."""

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        super()._issue_warnings_after_load(without_tied_missing_keys(self.model, load_result))  # type: ignore[misc]
