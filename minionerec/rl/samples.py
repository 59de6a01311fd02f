"""The RL stage's data: its input files, the rows it trains on, the validation users and the RL prompts.

RL data (``rl.tasks``): the next-SID prompt (the same string SFT and evaluation use), title ->
SID over all items, description -> SID, and title history -> SID (a seeded sample of
``title_history_samples`` rows, as upstream's 10k), all built by :mod:`minionerec.llm` and none
containing its answer.  The auxiliary tasks use upstream rl.py's wording (``rl=True``: no header or
instruction, and the title-history task's own sentence); the next-SID prompt stays the evaluated one.
Each rollout's reward reads its own row (:mod:`minionerec.rl.rewards`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from minionerec.catalogue import CatalogueItem
from minionerec.errors import InputError
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import LLMDataFiles, SplitRow, find_llm_data_files, require_file
from minionerec.llm import ItemText, TaskSample, build_task_samples, category_phrase, load_items
from minionerec.rl.config import SID_TASKS, RLConfig
from minionerec.sid import try_parse_sid

logger = logging.getLogger("minionerec.rl")

Row = TypeVar("Row")


def rl_data_files(cfg: RLConfig) -> LLMDataFiles:
    """The train / valid / info files: ``rl.train_file`` / ``valid_file`` / ``info_file`` where given (each must
    exist), else ``<data_dir>/{train_subdir,valid,info}/<dataset>*``."""
    explicit = {"train": cfg.train_file, "valid": cfg.valid_file, "info": cfg.info_file}
    for kind, path in explicit.items():
        if path:
            require_file(path, f"RL {kind} file (rl.{kind}_file)", f"fix rl.{kind}_file or leave it empty to look "
                         f"under {cfg.data_dir}")
    if all(explicit.values()):
        found = LLMDataFiles(None, None, None, None)
    else:
        found = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir)

    def pick(kind: str, default: Path | None) -> Path | None:
        return Path(explicit[kind]) if explicit[kind] else default

    return LLMDataFiles(pick("train", found.train), pick("valid", found.valid), found.test, pick("info", found.info))


def catalogue_items(catalogue: list[CatalogueItem], cfg: RLConfig) -> list[ItemText]:
    """Items for the item tasks: the info file's SIDs and titles, or ``item_json_path`` + the SID index."""
    if cfg.item_json_path:
        return load_items(cfg.index_path, cfg.item_json_path)
    return [ItemText(c.item_id, c.sid_string, c.title) for c in catalogue]


def build_rl_samples(cfg: RLConfig, rows: list[Any], items: list[ItemText],
                     replace: dict[str, list[TaskSample]] | None = None) -> list[TaskSample]:
    """The RL prompts of ``cfg.tasks`` (SID answers only), subsampled as configured.

    ``replace`` swaps a task's samples (rl_gpr.py: the GPR next-item prompts) before subsampling.
    """
    bad = [t for t in cfg.tasks if t not in SID_TASKS]
    if bad:
        raise InputError(f"rl.tasks {bad} do not answer with a SID; RL tasks: {', '.join(SID_TASKS)}")
    rng = random.Random(cfg.seed)
    category = category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
    per_task = build_task_samples(cfg.tasks, rows, items, category, rl=True)
    per_task.update({task: chunk for task, chunk in (replace or {}).items() if task in per_task})
    samples: list[TaskSample] = []
    for task in cfg.tasks:
        chunk = per_task[task]
        if task == "title_history2sid" and 0 < cfg.title_history_samples < len(chunk):
            chunk = rng.sample(chunk, cfg.title_history_samples)
        for s in chunk:
            if try_parse_sid(s.target) is None or s.target_item is None:
                raise InputError(f"rl task {task}: sample target {s.target!r} is not a SID of a catalogue item")
        samples += chunk
        logger.info("rl task %s: %d prompts", task, len(chunk))
    if cfg.train_subset >= 0 and cfg.train_subset < len(samples):
        samples = rng.sample(samples, cfg.train_subset)
        logger.info("train_subset: kept %d prompts", len(samples))
    if not samples:
        raise InputError("the RL training set is empty: check rl.tasks, rl.train_subset and the train CSV")
    return samples


def rows_to_train_on(cfg: RLConfig, train_rows: list[Row], valid_rows: list[Row] | None,
                     plain: Callable[[Row], SplitRow] = lambda r: r) -> list[Row]:
    """The train rows, plus the valid rows outside the validation users (``train_on_valid``), cut to ``recent_rows``.

    Rows stay in file order (time order), train first.  ``plain`` maps a variant's row to its SplitRow.
    """
    rows = list(train_rows)
    if cfg.train_on_valid:
        if valid_rows is None:
            raise InputError(f"rl.train_on_valid is set but there is no valid CSV under {cfg.data_dir}/valid")
        if not 0 < cfg.eval_samples < len(valid_rows):
            raise InputError(f"rl.train_on_valid needs 0 < rl.eval_samples < {len(valid_rows)} (the valid rows): "
                             "set it to sft.eval_samples so that RL holds out the users SFT held out")
        _, rest = split_validation_users(cfg, valid_rows, plain)
        rows += rest
        logger.info("train_on_valid: %d train rows + %d valid rows outside the validation users", len(train_rows), len(rest))
    if 0 < cfg.recent_rows < len(rows):
        rows = rows[-cfg.recent_rows:]
        logger.info("recent_rows: kept the %d most recent rows", len(rows))
    return rows


def split_validation_users(cfg: RLConfig, valid_rows: list[Row],
                           plain: Callable[[Row], SplitRow] = lambda r: r) -> tuple[list[Row], list[Row]]:
    """The valid rows of the validation users (SFT's held-out users when ``eval_samples`` equals
    ``sft.eval_samples``) and the other valid rows, both in file order."""
    held_out, _ = split_valid_by_user([plain(r) for r in valid_rows], cfg.eval_samples, holdout_seed_of(cfg))
    held = {id(r) for r in held_out}
    return [r for r in valid_rows if id(plain(r)) in held], [r for r in valid_rows if id(plain(r)) not in held]

