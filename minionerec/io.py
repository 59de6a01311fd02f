"""Reading and validating every file format of the pipeline, and atomic writes.

Formats (upstream-compatible, see ``../shared/reference/original-minionerec.md`` section 1):

- ``<D>.{train,valid,test}.inter``: TSV with header
  ``user_id:token<TAB>item_id_list:token_seq<TAB>item_id:token``;
- ``<D>.item.json``: ``{"<item_id>": {"title", "description", "brand", "categories", ...}}``;
- ``<D>.user2id`` / ``<D>.item2id``: ``original_id<TAB>index`` lines;
- ``<D>.index.json``: ``{"<item_id>": ["<a_X>", "<b_Y>", "<c_Z>"(, "<d_W>")]}``;
- ``train/valid/test/<name>.csv``: upstream columns, list columns as Python literals;
- ``info/<name>.txt``: ``sid<TAB>title<TAB>item_id`` lines, the item catalogue (read and written by
  :mod:`minionerec.catalogue`);
- ``<D>.inter.json``: ``{"<user>": [item, ...]}`` chronological sequences (also the LC-Rec
  layout, read with its item file by :func:`read_lcrec_dataset`, split by
  :func:`leave_one_out_split`);
- raw JSON-lines files (``.json``/``.jsonl``, optionally ``.gz``): :func:`iter_json_lines`
  yields ``(line number, record)``, raising an InputError naming ``file:line`` or counting the
  malformed line in a :class:`LineSkips`;
- upstream's prepared layout (``{train,valid,test}/*.csv``, ``info/*.txt``, ``index/*.json``):
  :func:`find_upstream_layout`.

Every writer is atomic (temp file in the same folder, then ``os.replace``), so a crash never
leaves a half-written file for the next stage.  Files are data, never code: list columns are
parsed with ``ast.literal_eval`` and nothing is unpickled.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import gzip
import hashlib
import io as _io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minionerec.errors import InputError, where
from minionerec.sid import SID, parse_sid, sid_to_string, validate_sid

INTER_HEADER = ("user_id:token", "item_id_list:token_seq", "item_id:token")
CSV_COLUMNS = (
    "user_id",
    "history_item_title",
    "item_title",
    "history_item_id",
    "item_id",
    "history_item_sid",
    "item_sid",
)
SPLITS = ("train", "valid", "test")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def publish_together(target: str | Path) -> Iterator[tuple[Path, list[Path]]]:
    """Stage a set of files and publish them into ``target`` together, only on success.

    Yields ``(staging, published)``: write every output into ``staging`` (an empty hidden folder
    beside ``target``) with the layout it should have under ``target``.  On success each staged
    file is renamed into place (``os.replace``: no partial file is ever visible) and ``published``
    lists the final paths; on an exception nothing under ``target`` changes and the staging
    folder is removed.  The renames are not one atomic step: a crash between two of them can
    leave new and old files side by side, which is why a stage's done-record is written after
    this block, never inside it.
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    published: list[Path] = []
    try:
        yield staging, published
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        for path in files:
            final = target / path.relative_to(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.is_dir():
                shutil.rmtree(final)
            os.replace(path, final)
            published.append(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def save_npy(path: str | Path, array: Any) -> Path:
    import numpy as np

    buffer = _io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------
# Generic readers
# --------------------------------------------------------------------------------------------

def require_file(path: str | Path, what: str, fix: str = "") -> Path:
    """Return ``path`` if it is a file, else raise InputError naming it and the fix."""
    path = Path(path)
    if not path.is_file():
        hint = f"; {fix}" if fix else ""
        raise InputError(f"{what} not found: {path}{hint}")
    return path


def read_json(path: str | Path, what: str = "JSON file", fix: str = "") -> Any:
    path = require_file(path, what, fix)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {where(path, exc.lineno)} is not valid JSON: {exc.msg}") from None


def read_predictions(result_json: str | Path) -> list[dict[str, Any]]:
    """The records of an evaluate.py predictions file (upstream shape: ``{input, output, predict}``), checked."""
    records = read_json(result_json, "predictions file", "run evaluate.py first")
    if not isinstance(records, list) or not records:
        raise InputError(f"{result_json}: expected a non-empty JSON list of {{input, output, predict}} objects")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "output" not in r or not isinstance(r.get("predict"), list):
            raise InputError(f"{result_json}: record {i} lacks 'output' or a 'predict' list")
    return records


def load_npy(path: str | Path, what: str = "embedding file", fix: str = "") -> Any:
    import numpy as np

    path = require_file(path, what, fix)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{what} {path} is not a plain .npy array: {exc}") from None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# .inter splits
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InterRow:
    """One sample of a ``.inter`` split: a user, their history (oldest first) and the target."""

    user: int
    history: tuple[int, ...]
    target: int


def write_inter(path: str | Path, rows: Iterable[InterRow]) -> Path:
    lines = ["\t".join(INTER_HEADER)]
    lines += [f"{r.user}\t{' '.join(map(str, r.history))}\t{r.target}" for r in rows]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_inter(path: str | Path) -> list[InterRow]:
    path = require_file(path, ".inter split", "run the data stage (data/*_process.sh) first")
    rows: list[InterRow] = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if tuple(header) != INTER_HEADER:
            raise InputError(f"{where(path, 1)}: header must be {'<TAB>'.join(INTER_HEADER)!r}, got {header!r}")
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            try:
                if len(parts) != 3:
                    raise ValueError(f"expected 3 tab-separated fields, got {len(parts)}")
                rows.append(InterRow(int(parts[0]), tuple(int(x) for x in parts[1].split()), int(parts[2])))
            except ValueError as exc:
                raise InputError(f"{where(path, lineno)}: malformed .inter row ({exc})") from None
    return rows


# --------------------------------------------------------------------------------------------
# Items, id maps, SID index
# --------------------------------------------------------------------------------------------

def read_item_json(path: str | Path) -> dict[int, dict[str, Any]]:
    """``{item_id: {"title": ..., ...}}`` with integer keys; every item must have a title."""
    raw = read_json(path, "item file (.item.json)", "run the data stage first")
    if not isinstance(raw, dict):
        raise InputError(f"item file {path} must map item ids to records")
    items: dict[int, dict[str, Any]] = {}
    for key, record in raw.items():
        try:
            item = int(key)
        except ValueError:
            raise InputError(f"item file {path}: key {key!r} is not an integer item id") from None
        if not isinstance(record, dict) or not isinstance(record.get("title"), str):
            raise InputError(f"item file {path}: item {key} has no 'title' string")
        items[item] = record
    return items


def write_id_map(path: str | Path, mapping: Mapping[str, int]) -> Path:
    return atomic_write_text(path, "".join(f"{k}\t{v}\n" for k, v in mapping.items()))


def read_id_map(path: str | Path) -> dict[str, int]:
    path = require_file(path, "id map", "run the data stage first")
    mapping: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            original, sep, index = line.rpartition("\t")
            if not sep or not index.lstrip("-").isdigit():
                raise InputError(f"{where(path, lineno)}: expected 'original_id<TAB>index'")
            mapping[original] = int(index)
    return mapping


def read_index_json(path: str | Path) -> dict[int, SID]:
    """Read a SID index ``{"<item_id>": ["<a_X>", ...]}`` into ``{item_id: (tokens...)}``."""
    raw = read_json(path, "SID index (.index.json)", "build SIDs with one of the rq/ methods first")
    if not isinstance(raw, dict):
        raise InputError(f"SID index {path} must map item ids to token lists")
    index: dict[int, SID] = {}
    for key, tokens in raw.items():
        try:
            item = int(key)
        except ValueError:
            raise InputError(f"SID index {path}: key {key!r} is not an integer item id") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"SID index {path}: item {key} must map to a list of token strings")
        try:
            validate_sid(tokens)
        except ValueError as exc:
            raise InputError(f"SID index {path}: item {key}: {exc}") from None
        index[item] = tuple(tokens)
    return index


def write_index_json(path: str | Path, index: Mapping[int, Sequence[str]]) -> Path:
    return write_json(path, {str(k): list(v) for k, v in sorted(index.items())}, indent=None)


# --------------------------------------------------------------------------------------------
# LLM-stage CSVs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitRow:
    """One row of a train/valid/test CSV (upstream columns)."""

    user_id: str
    history_item_title: tuple[str, ...]
    item_title: str
    history_item_id: tuple[int, ...]
    item_id: int
    history_item_sid: tuple[str, ...]
    item_sid: str


def _literal_list(text: str, path: Path, lineno: int, column: str) -> list[Any]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise InputError(f"{where(path, lineno)}: column {column!r} is not a list literal: {text[:80]!r}") from None
    if not isinstance(value, list):
        raise InputError(f"{where(path, lineno)}: column {column!r} must be a list, got {type(value).__name__}")
    return value


def read_split_csv(path: str | Path, require_history: bool = True) -> list[SplitRow]:
    """Read an upstream-format CSV.  List columns are parsed as literals, never executed.

    Raises InputError (naming the file and line) for missing columns, malformed lists,
    malformed SIDs and, when ``require_history``, rows with an empty history.
    """
    path = require_file(path, "split CSV", "run convert_dataset.py first")
    rows: list[SplitRow] = []
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a BOM (Excel's CSV export) is not part of user_id
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
        for record in reader:
            lineno = reader.line_num
            titles = _literal_list(record["history_item_title"], path, lineno, "history_item_title")
            ids = _literal_list(record["history_item_id"], path, lineno, "history_item_id")
            sids = _literal_list(record["history_item_sid"], path, lineno, "history_item_sid")
            try:
                for s in sids:
                    parse_sid(str(s))
                target_sid = sid_to_string(parse_sid(record["item_sid"]))
                item_id = int(record["item_id"])
                history_ids = tuple(int(i) for i in ids)
            except ValueError as exc:
                raise InputError(f"{where(path, lineno)}: {exc}") from None
            if require_history and not sids:
                raise InputError(f"{where(path, lineno)}: empty history (no item before the target); delete the row, "
                                 "or re-run convert_dataset.py, which drops such rows")
            rows.append(
                SplitRow(
                    user_id=record["user_id"],
                    history_item_title=tuple(str(t) for t in titles),
                    item_title=record["item_title"],
                    history_item_id=history_ids,
                    item_id=item_id,
                    history_item_sid=tuple(str(s).strip() for s in sids),
                    item_sid=target_sid,
                )
            )
    return rows


def write_split_csv(path: str | Path, rows: Iterable[SplitRow]) -> Path:
    """Write rows as upstream's pandas ``to_csv`` would (list columns as ``str(list)``)."""
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.user_id,
                str(list(r.history_item_title)),
                r.item_title,
                str(list(r.history_item_id)),
                r.item_id,
                str(list(r.history_item_sid)),
                r.item_sid,
            ]
        )
    return atomic_write_text(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------
# Upstream MiniOneRec layout discovery
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LLMDataFiles:
    """Paths of one dataset in the upstream ``{train,valid,test,info}/`` layout."""

    train: Path | None
    valid: Path | None
    test: Path | None
    info: Path | None


def find_llm_data_files(data_dir: str | Path, name: str, train_subdir: str = "train") -> LLMDataFiles:
    """Find ``<data_dir>/{train,valid,test}/<name>*.csv`` and ``info/<name>*.txt``.

    Upstream names files ``<category>_5_2016-10-2018-11.csv``; we write ``<name>.csv``.  Both
    are found by prefix.  Missing files are returned as None; callers decide what is required.
    """
    data_dir = Path(data_dir)

    def pick(sub: str, suffix: str) -> Path | None:
        folder = data_dir / sub
        exact = folder / f"{name}{suffix}"
        if exact.is_file():
            return exact
        matches = sorted(folder.glob(f"{name}*{suffix}")) if folder.is_dir() else []
        if len(matches) > 1:
            raise InputError(f"several files match {folder}/{name}*{suffix}: {', '.join(m.name for m in matches)}")
        return matches[0] if matches else None

    return LLMDataFiles(pick(train_subdir, ".csv"), pick("valid", ".csv"), pick("test", ".csv"), pick("info", ".txt"))


# --------------------------------------------------------------------------------------------
# Raw JSON-lines files (Amazon 2018 / 2023 reviews and metadata)
# --------------------------------------------------------------------------------------------


@dataclass
class LineSkips:
    """Counts of skipped lines of one file, by reason, with the first line number of each."""

    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, lineno: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first_line.setdefault(reason, lineno)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def log(self) -> None:
        """One warning per reason: how many lines were skipped and where the first one is."""
        for reason, count in self.counts.items():
            logger.warning(
                "%s: skipped %d line(s) with %s (first at %s)",
                self.path, count, reason, where(self.path, self.first_line[reason]),
            )

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


def open_text(path: str | Path) -> Any:
    """Open a text file for reading, transparently decompressing ``.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_json_lines(
    path: str | Path, skips: LineSkips | None = None, strict: bool = False, what: str = "JSON-lines file"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every JSON object line of a ``.json``/``.jsonl`` (``.gz``) file.

    Blank lines are ignored.  A line that is not a JSON object raises InputError naming
    ``file:line`` when ``strict``; otherwise it is counted in ``skips`` (reason
    ``"malformed JSON"``) and skipped.  A truncated ``.gz`` file is an InputError.
    """
    path = require_file(path, what)
    try:
        with open_text(path) as f:
            yield from json_object_lines(f, 1, path, skips, strict, what)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} cannot be read ({exc}); re-download or decompress it again") from None


def json_object_lines(
    lines: Iterable[str], first_lineno: int, path: Path, skips: LineSkips | None, strict: bool, what: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`iter_json_lines` on lines already read (``first_lineno`` = the number of the first one)."""
    for lineno, line in enumerate(lines, start=first_lineno):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        except ValueError as exc:
            if strict:
                raise InputError(
                    f"{what} {where(path, lineno)} is not a valid JSON object ({exc}); "
                    "fix or delete that line, or drop --strict to skip malformed lines with a warning"
                ) from None
            if skips is not None:
                skips.add("malformed JSON", lineno)
            continue
        yield lineno, record


# --------------------------------------------------------------------------------------------
# Sequences and the LC-Rec layout (<D>.inter.json + <D>.item.json)
# --------------------------------------------------------------------------------------------

def read_inter_json(path: str | Path) -> dict[int, list[int]]:
    """``{user index: [item index, ...]}`` (chronological) from a ``<D>.inter.json`` file."""
    raw = read_json(path, "sequence file (.inter.json)", "run the data stage first")
    if not isinstance(raw, dict):
        raise InputError(f"sequence file {path} must map user ids to item id lists")
    sequences: dict[int, list[int]] = {}
    for key, items in raw.items():
        try:
            user = int(key)
            if not isinstance(items, list):
                raise ValueError("not a list")
            sequences[user] = [int(i) for i in items]
        except (TypeError, ValueError):
            raise InputError(f"sequence file {path}: user {key!r} must map to a list of integer item ids") from None
    return sequences


def write_inter_json(path: str | Path, sequences: Mapping[int, Sequence[int]]) -> Path:
    return write_json(path, {str(u): list(items) for u, items in sequences.items()}, indent=None)


def leave_one_out_split(
    sequences: Mapping[int, Sequence[int]], max_history: int = 10
) -> tuple[list[InterRow], list[InterRow], list[InterRow]]:
    """The usual LC-Rec split: per user, last item = test, second to last = valid, the rest = train.

    Every position ``i >= 1`` gives one sample (history = the previous ``max_history`` items);
    the target at ``n-1`` goes to test, ``n-2`` to valid, earlier ones to train.  Users are taken
    in key order of ``sequences``.  A user with one item yields nothing.
    """
    train: list[InterRow] = []
    valid: list[InterRow] = []
    test: list[InterRow] = []
    for user, items in sequences.items():
        n = len(items)
        for i in range(1, n):
            row = InterRow(user, tuple(items[max(0, i - max_history):i]), items[i])
            (test if i == n - 1 else valid if i == n - 2 else train).append(row)
    return train, valid, test


@dataclass(frozen=True)
class LCRecDataset:
    """An LC-Rec/LETTER layout dataset: sequences without timestamps and item features."""

    sequences: dict[int, list[int]]
    items: dict[int, dict[str, Any]]


def read_lcrec_dataset(data_dir: str | Path, name: str) -> LCRecDataset:
    """Read ``<data_dir>/<name>.inter.json`` and ``<name>.item.json`` and check they agree."""
    data_dir = Path(data_dir)
    sequences = read_inter_json(require_file(
        data_dir / f"{name}.inter.json", "LC-Rec sequence file", f"expected <dir>/{name}.inter.json"))
    items = read_item_json(require_file(
        data_dir / f"{name}.item.json", "LC-Rec item file", f"expected <dir>/{name}.item.json"))
    for user, seq in sequences.items():
        unknown = [i for i in seq if i not in items]
        if unknown:
            raise InputError(
                f"{data_dir / (name + '.inter.json')}: user {user} has item(s) {unknown[:5]} "
                f"missing from {name}.item.json; the two files must come from the same dataset"
            )
    return LCRecDataset(sequences, items)


# --------------------------------------------------------------------------------------------
# Upstream MiniOneRec prepared layout ({train,valid,test}/*.csv, info/*.txt, index/*.json)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UpstreamLayout:
    """Paths of one dataset in upstream's prepared layout (``data/Amazon`` of the original repo)."""

    splits: LLMDataFiles
    index: Path | None
    item: Path | None


def find_upstream_layout(data_dir: str | Path, name: str, train_subdir: str = "train") -> UpstreamLayout:
    """Find the CSVs, the info file and ``index/<name>.index.json`` / ``index/<name>.item.json``.

    Raises InputError when neither the valid nor the test CSV exists (not an upstream layout).
    """
    data_dir = Path(data_dir)
    splits = find_llm_data_files(data_dir, name, train_subdir)
    if splits.valid is None and splits.test is None:
        raise InputError(
            f"{data_dir} is not an upstream MiniOneRec layout for {name!r}: "
            f"expected {data_dir}/valid/{name}*.csv and {data_dir}/test/{name}*.csv"
        )

    def optional(path: Path) -> Path | None:
        return path if path.is_file() else None

    return UpstreamLayout(
        splits=splits,
        index=optional(data_dir / "index" / f"{name}.index.json"),
        item=optional(data_dir / "index" / f"{name}.item.json"),
    )

