"""Data-stage outputs + item file + SID index -> the LLM-stage files, in upstream's format.

Reads ``<data_dir>/<dataset>.{train,valid,test}.inter``, ``<dataset>.item.json`` and the SID
index, and writes ``<output_dir>/{train,valid,test}/<name>.csv`` (columns
``user_id,history_item_title,item_title,history_item_id,item_id,history_item_sid,item_sid``, list
columns as Python ``str(list)``, user ids ``A<int>``) and ``<output_dir>/info/<name>.txt``
(``sid<TAB>title<TAB>item_id``, one line per item in item-id order).

Unlike upstream, an item of a split without a SID or a title is an error (upstream silently
dropped history SIDs and rows).  The entry point is ``convert_dataset.py``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minionerec.catalogue import CatalogueItem, write_info
from minionerec.errors import InputError, where
from minionerec.io import SPLITS, InterRow, SplitRow, read_index_json, read_inter, read_item_json, write_split_csv
from minionerec.records import stage_outputs
from minionerec.sid import SID, find_collisions, sid_to_string

logger = logging.getLogger("convert_dataset")  # the name users see in the log
_DATA_DIR = "${common.workdir}/data/${common.dataset}"


@dataclass
class ConvertConfig:
    """Build the LLM-stage CSVs and the info file."""

    section: ClassVar[str] = "convert"

    dataset: str = field(default="", metadata={"help": "Dataset name (file prefix of the data-stage outputs)."})
    data_dir: str = field(default=_DATA_DIR, metadata={"help": "Folder with <dataset>.{train,valid,test}.inter and .item.json."})
    item_json_path: str = field(default="", metadata={"help": "Item file; empty: <data_dir>/<dataset>.item.json."})
    index_path: str = field(default="", metadata={"help": "SID index; empty: <data_dir>/<dataset>.index.json."})
    output_dir: str = field(default="${common.workdir}/llm", metadata={"help": "Root of train/ valid/ test/ info/."})
    name: str = field(default="", metadata={"help": "Output file name (without .csv/.txt); empty: the dataset name."})
    splits: list[str] = field(default_factory=lambda: list(SPLITS), metadata={"help": "Splits to convert."})
    keep_longest_only: bool = field(default=False, metadata={"help": "Train only: keep each user's longest history row."})
    max_valid_samples: int = field(default=0, metadata={"help": "Random subsample of valid rows (0 = all), seeded."})
    max_test_samples: int = field(default=0, metadata={"help": "Random subsample of test rows (0 = all), seeded."})
    seed: int = field(default=42, metadata={"help": "Seed of the subsampling."})


def item_title(items: Mapping[int, Mapping[str, Any]], item: int, source: str) -> str:
    record = items.get(item)
    if record is None:
        raise InputError(f"{source}: item {item} is not in the item file; re-run the data stage so they match")
    title = record["title"]
    if not title.strip():
        raise InputError(f"{source}: item {item} has an empty title in the item file; fix or drop it in the data stage")
    return title


def item_sid(index: Mapping[int, SID], item: int, source: str) -> SID:
    sid = index.get(item)
    if sid is None:
        raise InputError(f"{source}: item {item} has no SID in the index; rebuild the index on the same item file")
    return sid


def split_rows(
    rows: Sequence[InterRow], items: Mapping[int, Mapping[str, Any]], index: Mapping[int, SID], path: Path
) -> list[SplitRow]:
    """Upstream CSV rows of one ``.inter`` split; row i comes from line i + 2 of ``path``.

    A row with an empty history (a user's first item) is no next-item sample: it is dropped here, with one
    warning counting them, so no stage downstream ever reads one.
    """
    out = []
    empty: list[int] = []
    for lineno, row in enumerate(rows, start=2):
        source = where(path, lineno)
        if not row.history:
            empty.append(lineno)
            continue
        out.append(
            SplitRow(
                user_id=f"A{row.user}",
                history_item_title=tuple(item_title(items, i, source) for i in row.history),
                item_title=item_title(items, row.target, source),
                history_item_id=tuple(row.history),
                item_id=row.target,
                history_item_sid=tuple(sid_to_string(item_sid(index, i, source)) for i in row.history),
                item_sid=sid_to_string(item_sid(index, row.target, source)),
            )
        )
    if empty:
        logger.warning("%s: dropped %d row(s) with an empty history (first at %s); a next-item sample needs at "
                       "least one earlier item", path, len(empty), where(path, empty[0]))
    return out


def keep_longest_per_user(rows: Sequence[SplitRow]) -> list[SplitRow]:
    """Each user's row with the longest history (the first such row), in the original order."""
    best: dict[str, int] = {}
    for i, row in enumerate(rows):
        j = best.get(row.user_id)
        if j is None or len(row.history_item_id) > len(rows[j].history_item_id):
            best[row.user_id] = i
    keep = set(best.values())
    return [row for i, row in enumerate(rows) if i in keep]


def subsample(rows: list[SplitRow], limit: int, seed: int) -> list[SplitRow]:
    """At most ``limit`` rows, chosen with ``seed``, kept in their original order."""
    if limit <= 0 or len(rows) <= limit:
        return rows
    chosen = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


def catalogue(items: Mapping[int, Mapping[str, Any]], index: Mapping[int, SID], item_path: Path) -> list[CatalogueItem]:
    """One info line per item in item-id order; every item needs a SID and a title."""
    source = f"item file {item_path}"
    return [CatalogueItem(item_sid(index, i, source), item_title(items, i, source), i) for i in sorted(items)]


def convert(
    rows_by_split: Mapping[str, tuple[Sequence[InterRow], Path]],
    items: Mapping[int, Mapping[str, Any]],
    index: Mapping[int, SID],
    item_path: Path,
    output_dir: Path,
    name: str,
    keep_longest_only: bool = False,
    max_samples: Mapping[str, int] | None = None,
    seed: int = 42,
    variant: Any = None,
    converter: Any = None,
) -> dict[str, Path]:
    """Write every split CSV and the info file; return their paths.

    With a switched-on ``variant`` (``minionerec.gpr.GPRVariant``) and its ``converter`` every row gets the
    variant's extra columns (same rows, same order) and the converter writes its info side file.
    """
    written: dict[str, Path] = {}
    for split, (rows, path) in rows_by_split.items():
        csv_rows: list[Any] = split_rows(rows, items, index, path)
        if converter is not None:
            csv_rows = converter.rows(split, rows, csv_rows, path)
        if split == "train" and keep_longest_only:
            csv_rows = keep_longest_per_user(csv_rows)
        csv_rows = subsample(csv_rows, (max_samples or {}).get(split, 0), seed)
        target = output_dir / split / f"{name}.csv"
        written[split] = write_split_csv(target, csv_rows) if converter is None else variant.write_csv(target, csv_rows)
        logger.info("%s: %d rows -> %s", split, len(csv_rows), written[split])
    written["info"] = write_info(output_dir / "info" / f"{name}.txt", catalogue(items, index, item_path))
    if converter is not None:
        written["gpr_info"] = converter.write_info(written["info"], variant.config_dict())
    return written


def main(cfg: ConvertConfig, variant: Any = None) -> dict[str, Path]:
    """Write every split CSV and the info file together (all or none), then the done-record.

    ``variant``: the ``gpr:`` section's ``GPRVariant`` (None or switched off: the plain files).  Its converter
    reads every side file before the stage starts, so a missing one leaves the output folder untouched.
    """
    variant = variant if variant is not None and variant.enabled else None
    output_dir = Path(cfg.output_dir)
    inputs = converter = None
    if variant is not None:
        inputs = read_inputs(cfg)
        converter = variant.converter(variant.cfg.data_dir, cfg.dataset, cfg.splits, inputs.items, inputs.item_path)
    with stage_outputs(cfg, output_dir) as staging:
        staged = write_outputs(cfg, staging, variant, inputs, converter)
    if variant is not None:
        variant.save_config(output_dir)
    return {split: output_dir / path.relative_to(staging) for split, path in staged.items()}


@dataclass
class ConvertInputs:
    """The item file and the SID index a convert run reads."""

    data_dir: Path
    item_path: Path
    items: dict[int, dict[str, Any]]
    index: dict[int, SID]


def read_inputs(cfg: ConvertConfig) -> ConvertInputs:
    """Check the section and read the item file and the SID index (warning about shared SIDs)."""
    if not cfg.dataset:
        raise InputError("convert.dataset is empty: set common.dataset in the config or pass --dataset NAME")
    data_dir = Path(cfg.data_dir)
    item_path = Path(cfg.item_json_path or data_dir / f"{cfg.dataset}.item.json")
    index_path = Path(cfg.index_path or data_dir / f"{cfg.dataset}.index.json")
    unknown = [s for s in cfg.splits if s not in SPLITS]
    if unknown:
        raise InputError(f"convert.splits: unknown split(s) {unknown}; choose from {', '.join(SPLITS)}")
    items = read_item_json(item_path)
    index = read_index_json(index_path)
    collisions = find_collisions(index)
    if collisions:
        logger.warning("%s: %d SIDs are shared by several items (e.g. %s); SFT, RL and evaluation refuse them unless "
                       "allow_shared_sids: true; build SIDs with an rq/ method (collision step) to get unique ones",
                       index_path, len(collisions), next(iter(collisions)))
    return ConvertInputs(data_dir, item_path, items, index)


def write_outputs(cfg: ConvertConfig, output_dir: Path, variant: Any = None, inputs: ConvertInputs | None = None,
                  converter: Any = None) -> dict[str, Path]:
    """Read the inputs (unless given) and write every output under ``output_dir``; with a variant, its
    ``converter`` (built here unless given) reads the ``.inter`` files and adds the variant's columns."""
    variant = variant if variant is not None and variant.enabled else None
    inputs = inputs or read_inputs(cfg)
    if variant is not None and converter is None:
        converter = variant.converter(variant.cfg.data_dir, cfg.dataset, cfg.splits, inputs.items, inputs.item_path)
    rows = {}
    for split in cfg.splits:
        path = inputs.data_dir / f"{cfg.dataset}.{split}.inter"
        rows[split] = (read_inter(path) if converter is None else converter.read_inter(split, path), path)
    return convert(rows, inputs.items, inputs.index, inputs.item_path, output_dir, cfg.name or cfg.dataset,
                   cfg.keep_longest_only, {"valid": cfg.max_valid_samples, "test": cfg.max_test_samples}, cfg.seed,
                   variant, converter)
