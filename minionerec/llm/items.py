"""The catalogue as the prompts see it: one :class:`ItemText` (id, SID string, title, description) per item."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minionerec.catalogue import read_info
from minionerec.errors import InputError
from minionerec.io import SplitRow, read_index_json, read_item_json
from minionerec.sid import sid_to_string

__all__ = ["ItemText", "check_rows_against_index", "clean_description", "load_items"]


@dataclass(frozen=True)
class ItemText:
    """One catalogue item: id, full SID string, title and (possibly empty) description."""

    item_id: int
    sid: str
    title: str
    description: str = ""


def clean_description(raw: Any, max_chars: int = 300) -> str:
    """Item description as plain text: list reprs joined, whitespace collapsed, cut to ``max_chars``."""
    if isinstance(raw, list):
        parts = [str(p) for p in raw]
    else:
        text = str(raw or "").strip()
        parts = [text]
        if text.startswith("[") and text.endswith("]"):
            try:
                value = ast.literal_eval(text)
                if isinstance(value, list):
                    parts = [str(p) for p in value]
            except (ValueError, SyntaxError):
                pass
    text = " ".join(" ".join(parts).split())
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


def load_items(index_path: str | Path, item_json_path: str | Path | None = None,
               info_path: str | Path | None = None, description_chars: int = 300) -> list[ItemText]:
    """Items with SIDs, titles and descriptions, in item-id order.

    SIDs come from the index; titles and descriptions from ``item_json_path`` when given, else
    titles from the info file.  Items without a SID are skipped (they cannot be a target).
    """
    index = read_index_json(index_path)
    if item_json_path:
        records = read_item_json(item_json_path)
        texts = {item: (rec["title"], clean_description(rec.get("description", ""), description_chars))
                 for item, rec in records.items()}
    elif info_path:
        texts = {entry.item_id: (entry.title, "") for entry in read_info(info_path)}
    else:
        raise InputError("load_items needs item_json_path or info_path for item titles")
    missing = [item for item in index if item not in texts]
    if missing:
        source = item_json_path or info_path
        raise InputError(f"{source}: no title for {len(missing)} item(s) of the SID index {index_path} "
                         f"(e.g. item {missing[0]}); pass the item file that matches the index")
    return [ItemText(item, sid_to_string(sid), " ".join(texts[item][0].split()), texts[item][1])
            for item, sid in sorted(index.items())]


def check_rows_against_index(rows: Sequence[SplitRow], items: Sequence[ItemText], path: str | Path) -> None:
    """Raise InputError naming the first CSV row whose history or target SID is not in the index."""
    known = {item.sid for item in items}
    for number, row in enumerate(rows, start=1):
        for sid in (*row.history_item_sid, row.item_sid):
            if sid not in known:
                raise InputError(
                    f"{path}: data row {number} (user {row.user_id}) has SID {sid} that is not in the SID index; "
                    "the CSV and index.json must come from the same convert_dataset.py run"
                )
