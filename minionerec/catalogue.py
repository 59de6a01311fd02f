"""The item catalogue: the info file (``sid<TAB>title<TAB>item_id`` lines) and the one type every stage reads it as.

:class:`Catalogue` answers the questions the stages ask of an info file:

- decoding and evaluation: the distinct SIDs in first-appearance order (``sids``, the trie is
  built from them), the info rows carrying each SID (``sid_rows``) and ``sid_to_items()`` (the
  mapping :func:`minionerec.metrics.evaluate_predictions` takes);
- the sequential baselines and the CF reward model: item ids in line order (``item_ids``; row
  ``i`` is embedding row ``i + 1``), ``index_of`` / ``to_rows`` and the fingerprint (number of
  items + sha256 of the file) that a saved model is checked against.

Build it with :meth:`Catalogue.from_info` from the rows of :func:`read_info` or from the info
file's path (which also records the fingerprint); :meth:`Catalogue.read` is the same as
``from_info(path)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from minionerec.errors import InputError, where
from minionerec.io import atomic_write_text, file_sha256, require_file
from minionerec.sid import SID, parse_sid, sid_to_string


@dataclass(frozen=True)
class CatalogueItem:
    """One line of an info file."""

    sid: SID
    title: str
    item_id: int

    @property
    def sid_string(self) -> str:
        return sid_to_string(self.sid)


def read_info(path: str | Path) -> list[CatalogueItem]:
    """Read ``sid<TAB>title<TAB>item_id`` lines.  Titles may not contain tabs."""
    path = require_file(path, "info file (item catalogue)", "run convert_dataset.py first")
    items: list[CatalogueItem] = []
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise InputError(
                    f"{where(path, lineno)}: expected 'sid<TAB>title<TAB>item_id' (3 fields), got {len(parts)}"
                )
            sid_text, title, item_text = parts
            try:
                sid = parse_sid(sid_text)
                item_id = int(item_text)
            except ValueError as exc:
                raise InputError(f"{where(path, lineno)}: {exc}") from None
            items.append(CatalogueItem(sid, title, item_id))
    if not items:
        raise InputError(f"info file {path} is empty")
    return items


def write_info(path: str | Path, items: Iterable[CatalogueItem]) -> Path:
    lines = []
    for item in items:
        # tabs/newlines would corrupt the line; other whitespace is kept (upstream info files keep it)
        title = item.title.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")
        lines.append(f"{item.sid_string}\t{title}\t{item.item_id}")
    return atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass(frozen=True)
class Catalogue:
    """The rows of one info file, by item (line order) and by SID (first-appearance order).

    ``item_ids[i]`` / ``sid_strings[i]`` describe info row ``i``; ``sids[s]`` is a distinct SID and
    ``sid_rows[s]`` the rows carrying it (several when items share a SID).  ``info_path`` and
    ``info_sha256`` are empty when the catalogue was built from rows without a file.
    """

    items: tuple[CatalogueItem, ...]
    info_path: str = ""
    info_sha256: str = ""
    item_ids: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    sid_strings: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)
    sids: list[str] = dataclasses.field(init=False, repr=False, compare=False)
    sid_rows: list[list[int]] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "item_ids", tuple(int(item.item_id) for item in self.items))
        object.__setattr__(self, "sid_strings", tuple(item.sid_string for item in self.items))
        group: dict[str, int] = {}
        rows: list[list[int]] = []
        for row, sid in enumerate(self.sid_strings):
            if sid not in group:
                group[sid] = len(rows)
                rows.append([])
            rows[group[sid]].append(row)
        object.__setattr__(self, "sids", list(group))
        object.__setattr__(self, "sid_rows", rows)

    @classmethod
    def from_info(cls, source: str | Path | Sequence[CatalogueItem]) -> Catalogue:
        """From an info file's path (reads it, records its fingerprint and requires unique item ids)
        or from :func:`read_info` rows already read (``CatalogueItem``)."""
        if isinstance(source, (str, Path)):
            return cls.read(source)
        return cls(tuple(source))

    @classmethod
    def read(cls, info_path: str | Path) -> Catalogue:
        """Read an info file; InputError when an item id appears on several lines."""
        catalogue = cls(tuple(read_info(info_path)), str(info_path), file_sha256(info_path))
        catalogue.require_unique_ids()
        return catalogue

    def require_unique_ids(self) -> None:
        """InputError naming the first item id that appears on several lines (ids index the embedding rows)."""
        seen: set[int] = set()
        for line, item_id in enumerate(self.item_ids, start=1):
            if item_id in seen:
                raise InputError(f"info file {self.info_path or '(rows)'}: item id {item_id} appears on several lines "
                                 f"(again on item line {line}); item ids must be unique")
            seen.add(item_id)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def index_of(self) -> dict[int, int]:
        """``{item id: info row}`` (the last row when an id repeats; :meth:`read` refuses repeats)."""
        return {item: i for i, item in enumerate(self.item_ids)}

    def sid_to_items(self) -> dict[str, list[int]]:
        """``{sid: [item ids]}`` in catalogue order (the mapping metrics.evaluate_predictions takes)."""
        return {s: [self.item_ids[r] for r in rows] for s, rows in zip(self.sids, self.sid_rows)}

    def fingerprint(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "info_sha256": self.info_sha256, "info_path": self.info_path}

    def check_fingerprint(self, fingerprint: dict[str, Any], model_dir: str | Path) -> None:
        """Raise InputError when a model trained on ``fingerprint`` does not fit this catalogue."""
        if fingerprint.get("n_items") != self.n_items or fingerprint.get("info_sha256") != self.info_sha256:
            raise InputError(
                f"CF model {model_dir} was trained on another catalogue: {fingerprint.get('n_items')} items, "
                f"info file {fingerprint.get('info_path')} (sha256 {str(fingerprint.get('info_sha256'))[:12]}...), "
                f"but {self.info_path} has {self.n_items} items (sha256 {self.info_sha256[:12]}...); retrain it on "
                f"this catalogue with: bash baselines.sh CONFIG.yaml --model sasrec"
            )

    def to_rows(self, item_ids: Sequence[int], where_: str) -> list[int]:
        """Embedding rows (1-based) of ``item_ids``; InputError naming ``where_`` for unknown ids."""
        index = self.index_of
        try:
            return [index[int(i)] + 1 for i in item_ids]
        except KeyError as exc:
            raise InputError(
                f"{where_}: item id {exc.args[0]} is not in the catalogue {self.info_path}; "
                f"use the info file the split CSVs were converted with"
            ) from None


__all__ = ["Catalogue", "CatalogueItem", "read_info", "write_info"]
