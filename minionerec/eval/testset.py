"""The test set of an evaluation: next-item prompts and targets from an upstream-format CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minionerec.catalogue import Catalogue
from minionerec.errors import InputError, where
from minionerec.io import read_split_csv
from minionerec.llm import next_item_prompt


@dataclass
class TestSet:
    prompts: list[str]
    target_sids: list[str]
    target_items: list[int]


def load_test_set(test_file: str | Path, catalogue: Catalogue, max_samples: int = 0, variant: Any = None,
                  info_file: str | Path | None = None) -> TestSet:
    """Prompts and targets from the test CSV (read once); InputError for a target not in the catalogue.

    ``variant`` (``minionerec.gpr.GPRVariant``, switched on) reads the CSV's extra columns (types from
    ``info_file``'s side file) and gives each row its prompt; None or switched off: the plain prompt.
    """
    variant = variant if variant is not None and variant.enabled else None
    read = read_split_csv(test_file) if variant is None else variant.read_rows(test_file, info_file)
    if max_samples > 0:
        read = read[:max_samples]
    if not read:
        raise InputError(f"{test_file} has no rows")
    rows = read if variant is None else [g.row for g in read]
    sid_items = catalogue.sid_to_items()
    for i, row in enumerate(rows):
        if row.item_sid not in sid_items:
            raise InputError(
                f"{where(test_file, i + 2)}: target SID {row.item_sid} (item {row.item_id}) is not in the info file; "
                "the test CSV and the info file must come from the same convert_dataset.py run"
            )
    if variant is not None:
        return TestSet(prompts=[variant.prompt(g) for g in read], target_sids=[r.item_sid for r in rows],
                       target_items=[r.item_id for r in rows])
    return TestSet(
        prompts=[next_item_prompt(list(r.history_item_sid)) for r in rows],
        target_sids=[r.item_sid for r in rows],
        target_items=[r.item_id for r in rows],
    )
