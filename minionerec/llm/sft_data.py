"""SFT data: the train/valid CSVs, the catalogue's item texts and the task mixture the model is trained on."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minionerec.errors import InputError
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import SplitRow, find_llm_data_files, read_split_csv, require_file
from minionerec.llm.items import ItemText, check_rows_against_index, load_items
from minionerec.llm.prompts import category_phrase
from minionerec.llm.tasks import TaskSample, build_task_mixture, next_sid_samples
from minionerec.sid import check_shared_sids

if TYPE_CHECKING:
    from minionerec.llm.sft import SFTConfig

__all__ = ["SFTData", "load_index_items", "load_sft_data", "resolve_csvs", "sample_rows"]

logger = logging.getLogger("minionerec.sft")


@dataclass
class SFTData:
    """What SFT trains and validates on: the mixture, the next-item validation samples and the items."""

    train: list[TaskSample]
    valid: list[TaskSample]
    items: list[ItemText]
    train_weights: list[float] | None = None  # per-sample loss weights (VAFT, sft_gpr.py); None = all 1


def resolve_csvs(cfg: SFTConfig) -> tuple[Path, Path | None]:
    """``(train CSV, valid CSV or None)``: the explicit files when set, else found under ``data_dir``."""
    found = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir)
    train = Path(cfg.train_file) if cfg.train_file else found.train
    valid = Path(cfg.valid_file) if cfg.valid_file else found.valid
    if train is None:
        raise InputError(f"no train CSV {cfg.data_dir}/{cfg.train_subdir}/{cfg.dataset}*.csv: run convert_dataset.py "
                         "or set sft.train_file")
    require_file(train, "train CSV", "run convert_dataset.py or set sft.train_file")
    return train, valid


def load_index_items(cfg: SFTConfig) -> list[ItemText]:
    """The SID index's items with their texts; InputError for shared SIDs unless ``allow_shared_sids``."""
    items = load_items(cfg.index_path, cfg.item_json_path or None, cfg.info_file or None, cfg.description_chars)
    check_shared_sids({item.item_id: item.sid for item in items}, cfg.index_path, cfg.allow_shared_sids)
    return items


def sample_rows(rows: list[SplitRow], n: int, seed: int) -> list[SplitRow]:
    """A seeded random ``n`` of ``rows`` in their file order (all of them when ``n`` < 0 or >= len)."""
    if n < 0 or n >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    logger.info("train_samples=%d: training on %d of %d train rows", n, n, len(rows))
    return [rows[i] for i in keep]


def load_sft_data(cfg: SFTConfig, variant: Any = None) -> SFTData:
    """The training mixture (train rows, plus the valid rows outside the eval slice with ``train_on_valid``)
    and the next-item validation samples of a seeded set of valid users.

    ``variant`` (``minionerec.gpr.GPRVariant``, switched on by the ``gpr:`` section) reads the CSVs' extra
    columns, gives the next-item samples their prompt and the training samples their weights (VAFT);
    None or a switched-off variant is plain SFT.
    """
    variant = variant if variant is not None and variant.enabled else None
    train_path, valid_path = resolve_csvs(cfg)
    items = load_index_items(cfg)
    info = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info if variant else None

    def read(path: Path) -> list[Any]:  # SplitRows, or the variant's rows (each with its SplitRow as ``.row``)
        return read_split_csv(path) if variant is None else variant.read_rows(path, info, cfg.item_json_path)

    def checked(path: Path, rows: list[Any]) -> list[Any]:
        check_rows_against_index(rows if variant is None else [r.row for r in rows], items, path)
        return rows

    train_rows = checked(train_path, sample_rows(read(train_path), cfg.train_samples, cfg.seed))
    eval_rows: list[Any] = []
    if valid_path is not None:
        valid_rows = checked(valid_path, read(valid_path))
        eval_rows, rest = split_valid_by_user(valid_rows, cfg.eval_samples, holdout_seed_of(cfg))
        if cfg.train_on_valid:
            if not rest:
                raise InputError("sft.train_on_valid needs sft.eval_samples smaller than the valid CSV "
                                 f"({len(valid_rows)} rows) so that a held-out slice remains")
            train_rows = train_rows + rest
            logger.info("training also on %d valid rows; %d valid rows held out for early stopping",
                        len(rest), len(eval_rows))
    elif cfg.train_on_valid:
        raise InputError(f"sft.train_on_valid is set but there is no valid CSV under {cfg.data_dir}/valid")
    category = category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
    if variant is None:
        train = build_task_mixture(cfg.task_weights, train_rows, items, category, cfg.seed)
    else:
        train = build_task_mixture(cfg.task_weights, [r.row for r in train_rows], items, category, cfg.seed,
                                   replace={"next_sid": variant.next_sid_samples(train_rows)})
    if not train:
        raise InputError(f"the training set is empty ({len(train_rows)} rows in {train_path}, task weights "
                         f"{cfg.task_weights}): give at least one task a positive weight and a non-empty CSV")
    if variant is None:
        return SFTData(train, next_sid_samples(eval_rows), items)
    return SFTData(train, variant.next_sid_samples(eval_rows), items,
                   variant.sample_weights(train, cfg.dataset, cfg.item_json_path))
