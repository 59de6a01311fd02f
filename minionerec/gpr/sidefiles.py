"""The GPR side files: paths, readers and checks (ours, and upstream's GPR files).

Ours (written by the data stage beside its plain outputs, :mod:`minionerec.gpr.features`):
``<D>.gpr.users.json`` ``{user: U token}``, ``<D>.gpr.items.json`` ``{item: {type, value, price,
train_count}}``, ``<D>.{train,valid,test}.gpr.tsv`` (``user, target, E token`` aligned line by line
with the ``.inter`` files) and ``<D>.gpr.json`` (rules, thresholds, counts; written last).

Upstream's (``data/amazon18_data_process_gpr.py``, reference ``gpr-and-amazon23.md`` §2.2):
4-column ``.inter`` files (``e_token:token`` last), ``item_type``/``final_value`` fields in
``<D>.item.json`` and ``<D>.user.json`` keyed by the original reviewer id.
:func:`read_inter_with_contexts`, :func:`upstream_item_features` and :func:`upstream_user_tokens`
read them; :func:`load_side_features` prefers ours and falls back to upstream's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from minionerec.errors import InputError, where
from minionerec.gpr.tokens import (
    CONTEXT_SET,
    ITEM_TYPE_TOKENS,
    UPSTREAM_DEFAULT_CONTEXT,
    USER_TOKENS,
    check_token,
)
from minionerec.io import INTER_HEADER, InterRow, read_id_map, read_inter, require_file

SPLITS = ("train", "valid", "test")
CONTEXT_HEADER = ["user_id:token", "item_id:token", "context:token"]
#: The header of upstream's GPR ``.inter`` files (reference §2.2 b).
UPSTREAM_INTER_HEADER = (*INTER_HEADER, "e_token:token")


@dataclass(frozen=True)
class SideFiles:
    """Paths of our side files for one dataset folder."""

    users: Path
    items: Path
    summary: Path
    contexts: dict[str, Path]

    @classmethod
    def of(cls, data_dir: str | Path, dataset: str) -> SideFiles:
        prefix = Path(data_dir) / dataset
        return cls(Path(f"{prefix}.gpr.users.json"), Path(f"{prefix}.gpr.items.json"), Path(f"{prefix}.gpr.json"),
                   {split: Path(f"{prefix}.{split}.gpr.tsv") for split in SPLITS})


class ItemFeature(NamedTuple):
    """What VAFT and the type tokens need of one item."""

    type: str              # "I" or "O"
    value: float           # VAFT value in [0, 1]
    price: float | None
    train_count: int


SIDE_FILES_FIX = "run data/amazon18_data_process_gpr.py (or --source amazon23) with this config first"


def _read_json_file(path: Path, what: str) -> Any:
    require_file(path, what, SIDE_FILES_FIX)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); {SIDE_FILES_FIX}") from None



def read_user_tokens(path: str | Path) -> dict[int, str]:
    raw = _read_json_file(Path(path), "GPR user-token file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected {{user id: U token}}")
    out = {}
    for key, token in raw.items():
        try:
            user = int(key)
        except ValueError:
            raise InputError(f"{path}: user key {key!r} is not an integer user id") from None
        out[user] = check_token(str(token), USER_TOKENS, f"{path} (user {key})")
    return out


def read_item_features(path: str | Path) -> dict[int, ItemFeature]:
    """``{item: ItemFeature}``; InputError for unknown types and NaN, infinite, negative or > 1 values."""
    raw = _read_json_file(Path(path), "GPR item-feature file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected {{item id: {{type, value, price, train_count}}}}")
    out = {}
    for key, rec in raw.items():
        source = f"{path} (item {key})"
        if not isinstance(rec, dict) or "type" not in rec or "value" not in rec:
            raise InputError(f"{source}: each item needs 'type' (I or O) and 'value'")
        if rec["type"] not in ITEM_TYPE_TOKENS:
            raise InputError(f"{source}: unknown item type {rec['type']!r}; expected I or O")
        value = _finite_fraction(rec["value"], source, "value")
        price = rec.get("price")
        if price is not None:
            price = _finite_nonnegative(price, source, "price")
        try:
            item = int(key)
        except ValueError:
            raise InputError(f"{path}: item key {key!r} is not an integer item id") from None
        out[item] = ItemFeature(rec["type"], value, price, int(rec.get("train_count", 0)))
    return out


def _finite_nonnegative(value: Any, source: str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {name} {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise InputError(f"{source}: {name} {value!r} must be a finite number >= 0 (NaN/inf/negative values "
                         "are not allowed); fix the item file or re-run the GPR data stage")
    return number


def _finite_fraction(value: Any, source: str, name: str) -> float:
    number = _finite_nonnegative(value, source, name)
    if number > 1:
        raise InputError(f"{source}: {name} {number} must be in [0, 1] (values are min-max normalised)")
    return number


def read_contexts(path: str | Path) -> list[tuple[int, int, str]]:
    path = require_file(path, "GPR context file", SIDE_FILES_FIX)
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != CONTEXT_HEADER:
            raise InputError(f"{where(path, 1)}: expected the header user_id:token<TAB>item_id:token<TAB>context:token")
        for lineno, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise InputError(f"{where(path, lineno)}: expected 3 tab-separated columns, got {len(parts)}")
            try:
                user, item = int(parts[0]), int(parts[1])
            except ValueError:
                raise InputError(f"{where(path, lineno)}: user and item must be integers") from None
            rows.append((user, item, check_token(parts[2], CONTEXT_SET, where(path, lineno))))
    return rows


# --------------------------------------------------------------------------------------------
# Upstream's GPR files
# --------------------------------------------------------------------------------------------

def read_inter_with_contexts(path: str | Path) -> tuple[list[InterRow], list[str] | None]:
    """The rows of a ``.inter`` split and, for upstream's 4-column GPR files, each row's E token.

    A plain 3-column file gives ``(rows, None)`` (io.read_inter).  Under upstream's 4-column header a
    3-column line gets ``[CTX_HOMEPAGE]``, as upstream's converter does (reference §2.3).
    """
    path = require_file(path, ".inter split", "run the data stage (data/*_process.sh) first")
    with open(path, encoding="utf-8") as f:
        header = tuple(f.readline().rstrip("\n").split("\t"))
        if header != UPSTREAM_INTER_HEADER:
            return read_inter(path), None  # the plain reader (it names a wrong header)
        rows: list[InterRow] = []
        contexts: list[str] = []
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) not in (3, 4):
                raise InputError(f"{where(path, lineno)}: malformed GPR .inter row (expected 3 or 4 tab-separated "
                                 f"fields, got {len(parts)})")
            try:
                rows.append(InterRow(int(parts[0]), tuple(int(x) for x in parts[1].split()), int(parts[2])))
            except ValueError as exc:
                raise InputError(f"{where(path, lineno)}: malformed GPR .inter row ({exc})") from None
            token = parts[3].strip() if len(parts) == 4 else UPSTREAM_DEFAULT_CONTEXT
            contexts.append(check_token(token, CONTEXT_SET, where(path, lineno)))
    return rows, contexts


def upstream_item_features(records: dict[int, dict[str, Any]], source: str) -> dict[int, ItemFeature] | None:
    """``{item: ItemFeature}`` from upstream's ``item_type``/``final_value`` item.json fields; None without them.

    An item without the fields is ``O`` with value 0, as upstream's prompt and VAFT treat it (§2.4, §5.2).
    """
    if not any("item_type" in rec for rec in records.values()):
        return None
    out = {}
    for item, rec in records.items():
        where_ = f"{source} (item {item})"
        kind = rec.get("item_type", "O")
        if kind not in ITEM_TYPE_TOKENS:
            raise InputError(f"{where_}: unknown item_type {kind!r}; expected I or O")
        value = _finite_fraction(rec.get("final_value", 0.0), where_, "final_value")
        out[item] = ItemFeature(kind, value, None, 0)
    return out


def upstream_user_tokens(data_dir: str | Path, dataset: str) -> dict[int, str]:
    """``{user index: U token}`` from upstream's ``<D>.user.json`` (keyed by reviewer id) and ``<D>.user2id``.

    Upstream looks the token up by the integer index and so never finds it (§2.5 item 3); the join
    through ``user2id`` is the fix.  Without the files every user is ``[USER_UNKNOWN]`` (an empty map).
    """
    prefix = Path(data_dir) / dataset
    users_path, ids_path = Path(f"{prefix}.user.json"), Path(f"{prefix}.user2id")
    if not (users_path.is_file() and ids_path.is_file()):
        return {}
    raw = _read_json_file(users_path, "upstream GPR user file")
    if not isinstance(raw, dict):
        raise InputError(f"{users_path}: expected {{reviewer id: U token}}")
    index = read_id_map(ids_path)
    return {index[original]: check_token(str(token), USER_TOKENS, f"{users_path} (user {original})")
            for original, token in raw.items() if original in index}


@dataclass
class SideFeatures:
    """The per-user, per-item and per-sample GPR features the converter attaches to the CSV rows."""

    users: dict[int, str]
    items: dict[int, ItemFeature]
    #: split -> [(user, target, E)] aligned with the .inter rows; None: the E tokens are the .inter's 4th column
    contexts: dict[str, list[tuple[int, int, str]]] | None
    origin: str  # "gpr" (our side files) or "upstream"


def load_side_features(data_dir: str | Path, dataset: str, splits: tuple[str, ...] | list[str],
                       item_records: dict[int, dict[str, Any]], item_source: str) -> SideFeatures:
    """Our side files when the data stage wrote them, else upstream's GPR fields; read before any write."""
    side = SideFiles.of(data_dir, dataset)
    if not (side.users.is_file() or side.items.is_file()):
        upstream = upstream_item_features(item_records, item_source)
        if upstream is not None:
            return SideFeatures(upstream_user_tokens(data_dir, dataset), upstream, None, "upstream")
    users = read_user_tokens(side.users)
    items = read_item_features(side.items)
    contexts = {split: read_contexts(side.contexts[split]) for split in splits}
    return SideFeatures(users, items, contexts, "gpr")
