"""GPR CSV rows: the upstream columns plus the heterogeneous tokens, in our columns or upstream's.

Ours (:data:`GPR_COLUMNS`, written by the converter with the switch on): ``user_token``,
``context_token``, ``history_item_type`` (one ``I``/``O`` per history item) and ``item_type``.
Upstream's ``convert_dataset_gpr.py`` (reference ``gpr-and-amazon23.md`` §2.3) writes
``user_id_original_str`` (the integer user index, despite its name) after ``user_id`` and
``e_token`` last, and no types: :func:`read_gpr_csv` accepts both; upstream rows take their types
from the item map it is given (items without one are ``O``, as upstream's prompt) and their U token
from the user map (``[USER_UNKNOWN]`` when absent).  Plain readers see the plain columns of either.
"""

from __future__ import annotations

import ast
import csv
import io as _io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from minionerec.errors import InputError, where
from minionerec.gpr.tokens import CONTEXT_SET, ITEM_TYPE_TOKENS, USER_TOKENS, USER_UNKNOWN, check_token
from minionerec.io import CSV_COLUMNS, SplitRow, atomic_write_text, read_split_csv

GPR_COLUMNS = ("user_token", "context_token", "history_item_type", "item_type")
UPSTREAM_GPR_COLUMNS = ("user_id_original_str", "e_token")


class GPRRow(NamedTuple):
    """An upstream CSV row plus its heterogeneous tokens (``history_types``/``target_type``: I or O)."""

    row: SplitRow
    user_token: str
    context_token: str
    history_types: tuple[str, ...]
    target_type: str

    # The duck-typed attributes that convert_dataset.keep_longest_per_user reads.
    @property
    def user_id(self) -> str:
        return self.row.user_id

    @property
    def history_item_id(self) -> tuple[int, ...]:
        return self.row.history_item_id


def write_gpr_csv(path: str | Path, rows: Sequence[GPRRow]) -> Path:
    """The upstream columns (as ``write_split_csv``) followed by :data:`GPR_COLUMNS`."""
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + GPR_COLUMNS)
    for g in rows:
        r = g.row
        writer.writerow([r.user_id, str(list(r.history_item_title)), r.item_title, str(list(r.history_item_id)),
                         r.item_id, str(list(r.history_item_sid)), r.item_sid, g.user_token, g.context_token,
                         str(list(g.history_types)), g.target_type])
    return atomic_write_text(path, buffer.getvalue())


def read_gpr_csv(path: str | Path, item_types: Mapping[int, str] | None = None,
                 user_tokens: Mapping[int, str] | None = None) -> list[GPRRow]:
    """Rows of a GPR CSV (ours or upstream's, see the module docstring); InputError names the line of a bad token.

    ``item_types``/``user_tokens`` serve upstream's CSVs only (ours carry their tokens).
    """
    rows = read_split_csv(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if all(c in columns for c in GPR_COLUMNS):
            return [_our_row(row, record, where(path, reader.line_num)) for row, record in zip(rows, reader)]
        if "e_token" in columns:
            return [_upstream_row(row, record, where(path, reader.line_num), item_types or {}, user_tokens or {})
                    for row, record in zip(rows, reader)]
    missing = [c for c in GPR_COLUMNS if c not in columns]
    raise InputError(f"{path}: missing GPR column(s) {', '.join(missing)} (or upstream's e_token); this is not a GPR "
                     "CSV: run bash convert_dataset_gpr.sh with the GPR config")


def _our_row(row: SplitRow, record: dict[str, str], source: str) -> GPRRow:
    try:
        types = ast.literal_eval(record["history_item_type"])
    except (ValueError, SyntaxError):
        raise InputError(f"{source}: history_item_type is not a list literal") from None
    if not isinstance(types, list) or len(types) != len(row.history_item_id):
        raise InputError(f"{source}: history_item_type must list one type per history item")
    for t in [*types, record["item_type"]]:
        if t not in ITEM_TYPE_TOKENS:
            raise InputError(f"{source}: unknown item type {t!r}; expected I or O")
    return GPRRow(row, check_token(record["user_token"], USER_TOKENS, source),
                  check_token(record["context_token"], CONTEXT_SET, source), tuple(types), record["item_type"])


def _upstream_row(row: SplitRow, record: dict[str, str], source: str, item_types: Mapping[int, str],
                  user_tokens: Mapping[int, str]) -> GPRRow:
    context = check_token((record["e_token"] or "").strip(), CONTEXT_SET, source)
    raw_user = (record.get("user_id_original_str") or "").strip()
    user = USER_UNKNOWN
    if raw_user:
        try:
            user = user_tokens.get(int(raw_user), USER_UNKNOWN)
        except ValueError:
            raise InputError(f"{source}: user_id_original_str {raw_user!r} is not an integer user index") from None
    return GPRRow(row, user, context, tuple(item_types.get(i, "O") for i in row.history_item_id),
                  item_types.get(row.item_id, "O"))
