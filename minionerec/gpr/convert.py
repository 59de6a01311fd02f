"""Convert-stage hook: attach U/E/type tokens to the CSV rows of each ``.inter`` split.

:class:`GPRConverter` reads every side file first (a missing one fails before anything is written),
reads ``.inter`` files in the plain 3-column form or upstream's 4-column GPR form, and turns the
plain CSV rows of a split into :class:`GPRRow` s (line i of the ``.inter`` file and of our context
file is the same sample).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minionerec.errors import InputError, where
from minionerec.gpr.prompts import write_info_side
from minionerec.gpr.rows import GPRRow
from minionerec.gpr.sidefiles import SIDE_FILES_FIX, SideFeatures, SideFiles, load_side_features, read_inter_with_contexts
from minionerec.gpr.tokens import USER_UNKNOWN
from minionerec.io import InterRow, SplitRow


def gpr_rows(rows: Sequence[InterRow], plain: Sequence[SplitRow], contexts: Sequence[tuple[int, int, str]],
             users: Mapping[int, str], types: Mapping[int, str], inter_path: Path, context_path: Path) -> list[GPRRow]:
    """Attach U/E/types to the CSV rows of one ``.inter`` split (line i of both files is the same sample)."""
    if len(contexts) != len(rows):
        raise InputError(f"{context_path} has {len(contexts)} rows but {inter_path} has {len(rows)}: the side files "
                         f"are from another data-stage run; {SIDE_FILES_FIX}")
    out = []
    kept = [(lineno, row, ctx) for lineno, (row, ctx) in enumerate(zip(rows, contexts), start=2) if row.history]
    if len(kept) != len(plain):  # split_rows drops exactly the empty-history rows
        raise RuntimeError(f"{inter_path}: {len(plain)} CSV rows for {len(kept)} rows with a history")
    for (lineno, row, (user, target, context)), csv_row in zip(kept, plain):
        if (user, target) != (row.user, row.target):
            raise InputError(f"{where(context_path, lineno)}: (user {user}, item {target}) does not match "
                             f"{where(inter_path, lineno)} (user {row.user}, item {row.target}); {SIDE_FILES_FIX}")
        missing = [i for i in (*row.history, row.target) if i not in types]
        if missing:
            raise InputError(f"{where(inter_path, lineno)}: item {missing[0]} has no entry in the GPR item file; "
                             f"{SIDE_FILES_FIX}")
        out.append(GPRRow(csv_row, users.get(row.user, USER_UNKNOWN), context,
                          tuple(types[i] for i in row.history), types[row.target]))
    return out


@dataclass
class GPRConverter:
    """The convert stage's GPR state for one dataset: the side features and the E tokens of the ``.inter`` files."""

    features: SideFeatures
    side: SideFiles
    item_path: Path
    inter_contexts: dict[str, list[str] | None] = field(default_factory=dict)

    @classmethod
    def load(cls, data_dir: str | Path, dataset: str, splits: Sequence[str], items: Mapping[int, Mapping[str, Any]],
             item_path: Path) -> GPRConverter:
        features = load_side_features(data_dir, dataset, list(splits), dict(items), str(item_path))
        unknown = sorted(set(items) - set(features.items))
        if unknown and features.origin == "gpr":
            raise InputError(f"{SideFiles.of(data_dir, dataset).items}: item {unknown[0]} of the item file has no type; "
                             f"{SIDE_FILES_FIX}")
        return cls(features, SideFiles.of(data_dir, dataset), item_path)

    @property
    def types(self) -> dict[int, str]:
        return {item: f.type for item, f in self.features.items.items()}

    def read_inter(self, split: str, path: Path) -> list[InterRow]:
        """A split's ``.inter`` rows; 3 or 4 columns (upstream's E token column is kept for :meth:`rows`)."""
        rows, contexts = read_inter_with_contexts(path)
        self.inter_contexts[split] = contexts
        return rows

    def rows(self, split: str, inter_rows: Sequence[InterRow], plain: Sequence[SplitRow], inter_path: Path) -> list[GPRRow]:
        """The GPR rows of a split, aligned with the plain CSV rows built from the same ``.inter`` rows."""
        from_inter = self.inter_contexts.get(split)
        if self.features.contexts is not None and split in self.features.contexts:
            contexts, source = self.features.contexts[split], self.side.contexts[split]
        elif from_inter is not None:
            contexts, source = [(r.user, r.target, e) for r, e in zip(inter_rows, from_inter)], inter_path
        else:
            raise InputError(f"{inter_path}: no E tokens for this split (neither {self.side.contexts[split]} nor a "
                             f"4th e_token column); {SIDE_FILES_FIX}")
        return gpr_rows(inter_rows, plain, contexts, self.features.users, self.types, inter_path, Path(source))

    def write_info(self, info_path: Path, config: Mapping[str, Any]) -> Path:
        """``info/<name>.gpr.json`` beside the info file: the tokenizer's extra tokens and every item's type."""
        return write_info_side(info_path, self.types, config)
