"""Done-records: what a finished stage consumed and produced, so a rerun knows whether it is current.

Beside ``<section>.config.yaml`` every stage writes ``<section>.done.json`` as its very last act::

    {"section": "convert",
     "inputs":  {"runs/x/data/X": {"kind": "dir", "files": {"X.train.inter": FINGERPRINT, ...}}, ...},
     "outputs": {"runs/x/llm/train/X.csv": {"kind": "file", **FINGERPRINT}, ...}}

A FINGERPRINT is ``size``, ``mtime_ns`` and a SHA-256: of the whole file up to
:data:`FULL_HASH_LIMIT` bytes, of its first and last MiB (``edges``) above.  A file matches its
fingerprint when size and mtime are unchanged, or (small files) when its content hash is; so
rewriting a file with the same bytes keeps its consumers current, while a big file counts as
changed whenever its mtime moves.

Inputs are found from the config: every value (outside :data:`~minionerec.config.OUTPUT_KEYS`
and :data:`~minionerec.config.NOT_INPUT_KEYS`) that names an existing file or folder.  A folder
is fingerprinted file by file, so a file added to or removed from it counts as a change.
Record files themselves (``*.config.yaml``, ``*.done.json``, ``*.attempt.json``) and hidden files
(temp files) are never inputs or outputs.

:func:`begin_stage` removes the done-record when a stage starts (a crash then can never leave an
old record beside new partial files) and writes ``<section>.attempt.json`` (config + inputs);
a killed SFT/RL run whose attempt record still matches resumes from its newest checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minionerec.config import NON_RESULT_KEYS, NOT_INPUT_KEYS, OUTPUT_KEYS, rename_keys, result_config, to_dict

logger = logging.getLogger(__name__)

FULL_HASH_LIMIT = 64 << 20
EDGE_BYTES = 1 << 20
RECORD_SUFFIXES = (".config.yaml", ".done.json", ".attempt.json")


def done_record_path(folder: str | Path, section: str) -> Path:
    return Path(folder) / f"{section}.done.json"


def attempt_record_path(folder: str | Path, section: str) -> Path:
    return Path(folder) / f"{section}.attempt.json"


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------

def _sha256(path: Path, size: int) -> tuple[str, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
            return "sha256", digest.hexdigest()
        digest.update(f.read(EDGE_BYTES))
        f.seek(size - EDGE_BYTES)
        digest.update(f.read(EDGE_BYTES))
        return "edges_sha256", digest.hexdigest()


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """``{"size", "mtime_ns", "sha256" | "edges_sha256"}`` of one file."""
    path = Path(path)
    stat = path.stat()
    kind, digest = _sha256(path, stat.st_size)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, kind: digest}


def _file_matches(saved: dict[str, Any], path: Path) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != saved.get("size"):
        return False
    if stat.st_mtime_ns == saved.get("mtime_ns"):
        return True
    if "sha256" not in saved:  # a big file: only size + mtime + edges were recorded, and its mtime moved
        return False
    return _sha256(path, stat.st_size) == ("sha256", saved["sha256"])


def _is_record_or_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(RECORD_SUFFIXES) or path.name == "__pycache__"


def _tree_files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _is_record_or_hidden(Path(d)))
        out += [Path(root) / f for f in sorted(files) if not _is_record_or_hidden(Path(f))]
    return out


def describe(path: str | Path) -> dict[str, Any]:
    """The fingerprint entry of a file (``kind: file``) or of every file under a folder (``kind: dir``)."""
    path = Path(path)
    if path.is_dir():
        return {"kind": "dir", "files": {str(p.relative_to(path)): file_fingerprint(p) for p in _tree_files(path)}}
    return {"kind": "file", **file_fingerprint(path)}


def entry_change(path: str, saved: dict[str, Any], added_counts: bool = True) -> str | None:
    """Why ``path`` no longer matches its recorded entry (``None`` when it does); a file added to a recorded
    folder is a change when ``added_counts`` (inputs), not for outputs."""
    folder = Path(path)
    if saved.get("kind") == "dir":
        if not folder.is_dir():
            return f"{path} missing"
        now = {str(p.relative_to(folder)): p for p in _tree_files(folder)}
        recorded = saved.get("files", {})
        for rel, fingerprint in recorded.items():
            if rel not in now:
                return f"{folder / rel} missing"
            if not _file_matches(fingerprint, now[rel]):
                return f"{folder / rel} changed"
        added = sorted(set(now) - set(recorded)) if added_counts else []
        return f"{folder / added[0]} added" if added else None
    if not folder.is_file():
        return f"{path} missing"
    return None if _file_matches(saved, folder) else f"{path} changed"


# --------------------------------------------------------------------------------------------
# What a stage consumed and produced
# --------------------------------------------------------------------------------------------

def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def output_paths(cfg: Any) -> list[Path]:
    """The paths a stage's output keys name (existing or not)."""
    return [Path(v) for f in dataclasses.fields(cfg) if f.name in OUTPUT_KEYS
            for v in _strings(getattr(cfg, f.name)) if v.strip() not in ("", ".")]


def input_paths(cfg: Any, record_folder: str | Path) -> list[Path]:
    """Existing files/folders the config names: not inside an output, and no folder holding the stage's outputs."""
    outputs = [p.absolute() for p in output_paths(cfg)]
    own = [*outputs, Path(record_folder).absolute()]
    found: dict[str, Path] = {}
    for f in dataclasses.fields(cfg):
        if f.name in OUTPUT_KEYS | NOT_INPUT_KEYS | NON_RESULT_KEYS:
            continue
        for value in _strings(getattr(cfg, f.name)):
            if value.strip() in ("", ".") or "\n" in value or len(value) > 4096:
                continue
            path = Path(value)
            try:
                if not path.exists():
                    continue
            except OSError:
                continue
            full = path.absolute()
            if any(_inside(full, out) for out in outputs):
                continue
            if path.is_dir() and any(_inside(out, full) for out in own):
                continue  # a folder that holds this stage's outputs (e.g. the workdir)
            found[str(path)] = path
    return list(found.values())


def _default_outputs(cfg: Any) -> list[Path]:
    return [p for p in output_paths(cfg) if p.exists()]


def write_done_record(cfg: Any, folder: str | Path, outputs: list[Path] | None = None) -> Path:
    """``<folder>/<section>.done.json``: fingerprints of the stage's inputs and outputs (written last)."""
    from minionerec.io import write_json

    section = type(cfg).section
    produced = _default_outputs(cfg) if outputs is None else list(outputs)
    record = {
        "section": section,
        "inputs": {str(p): describe(p) for p in input_paths(cfg, folder)},
        "outputs": {str(p): describe(p) for p in produced if p.exists() and not _is_record_or_hidden(p)},
    }
    path = done_record_path(folder, section)
    write_json(path, record)
    attempt_record_path(folder, section).unlink(missing_ok=True)
    return path


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record_change(record: dict[str, Any]) -> str | None:
    """Why a done-record no longer describes the files on disk: ``"input F changed"``, ``"output G missing"``."""
    for kind in ("inputs", "outputs"):
        for path, saved in (record.get(kind) or {}).items():
            change = entry_change(path, saved, added_counts=kind == "inputs")
            if change:
                return f"{kind[:-1]} {change}"
    return None


def recorded_inputs(folder: str | Path, section: str) -> list[Path]:
    record = read_record(done_record_path(folder, section)) or {}
    return [Path(p) for p in record.get("inputs") or {}]


def recorded_outputs(folder: str | Path, section: str) -> list[Path]:
    record = read_record(done_record_path(folder, section)) or {}
    return [Path(p) for p in record.get("outputs") or {}]


def overlaps(paths: list[Path], others: list[Path]) -> Path | None:
    """The first of ``paths`` that is, contains or lies inside one of ``others``."""
    full = [o.absolute() for o in others]
    for path in paths:
        p = path.absolute()
        if any(_inside(p, o) or _inside(o, p) for o in full):
            return path
    return None


# --------------------------------------------------------------------------------------------
# Stage lifecycle
# --------------------------------------------------------------------------------------------

def _attempt(cfg: Any, folder: str | Path) -> dict[str, Any]:
    return {"section": type(cfg).section, "config": result_config(to_dict(cfg)),
            "inputs": {str(p): describe(p) for p in input_paths(cfg, folder)}}


def previous_run(cfg: Any, folder: str | Path) -> str:
    """What ``folder`` holds from an earlier run of this stage (read-only; call before :func:`begin_stage`).

    ``"finished"``: a done-record is present; ``"interrupted"``: no done-record, and the attempt record
    of the run that stopped has the same config (resume, logging and thread keys aside) and inputs;
    ``"other"``: anything else (nothing, a different config, changed inputs, or an older version's files).
    """
    section = type(cfg).section
    if done_record_path(folder, section).is_file():
        return "finished"
    saved = read_record(attempt_record_path(folder, section))
    if saved is None or not isinstance(saved.get("config"), dict):
        return "other"
    before = rename_keys(section, saved["config"], "attempt record", announce=False)  # saved before a key rename
    if before != result_config(to_dict(cfg)):
        return "other"
    return "other" if record_change({"inputs": saved.get("inputs")}) else "interrupted"


def begin_stage(cfg: Any, folder: str | Path) -> None:
    """A stage starts: drop its done-record first, then record the attempt (config + inputs)."""
    from minionerec.io import write_json

    section = type(cfg).section
    done_record_path(folder, section).unlink(missing_ok=True)
    write_json(attempt_record_path(folder, section), _attempt(cfg, folder))


@contextlib.contextmanager
def stage_outputs(cfg: Any, folder: str | Path, extra_outputs: list[Path] | None = None) -> Iterator[Path]:
    """A multi-file stage from start to done-record: ``with stage_outputs(cfg, folder) as staging: ...``.

    On entry the stage's done-record is removed (:func:`begin_stage`); the body writes every output
    under ``staging`` laid out as under ``folder``; on success they are published together
    (:func:`minionerec.io.publish_together`), then the config and done-record are written, listing
    the published files (plus ``extra_outputs``).  On failure ``folder`` keeps its previous files
    and has no done-record.
    """
    from minionerec.config import save_resolved_config
    from minionerec.io import publish_together

    begin_stage(cfg, folder)
    with publish_together(folder) as (staging, published):
        yield staging
    save_resolved_config(cfg, folder, outputs=published + list(extra_outputs or []))
