"""SFT with the switch on: the plain SFT data with the GPR next-item samples and VAFT weights.

Reconciled with ``llm``'s ``load_sft_data`` (the old ``sft_gpr.py`` copy had drifted): the train rows are
subsampled by ``sft.train_samples`` as plain SFT does (the copy ignored it); every task, the GPR next-item
task included, is replicated by its weight in the plain task order with one seeded RNG, so fractional
weights draw the same samples as plain SFT (the copy drew next_sid with its own RNG and put it first).
Phase 2 of issue 18 folds this into the plain ``load_sft_data`` (a ``variant`` argument); until then
this function mirrors it.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from minionerec.errors import InputError
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import find_llm_data_files

if TYPE_CHECKING:
    from minionerec.gpr.variant import GPRVariant

logger = logging.getLogger(__name__)


def gpr_task_mixture(cfg: Any, rows: list[Any], items: list[Any], variant: GPRVariant) -> list[Any]:
    """The plain task mixture (``llm.build_task_mixture``'s order and RNG) with the GPR next-item samples."""
    from minionerec.llm import TASK_NAMES, build_task_samples, category_phrase, replicate_by_weight

    unknown = sorted(set(cfg.task_weights) - set(TASK_NAMES))
    if unknown:
        raise InputError(f"sft.task_weights: unknown task(s) {', '.join(unknown)}; known tasks: {', '.join(TASK_NAMES)}")
    active = [task for task in TASK_NAMES if float(cfg.task_weights.get(task, 0.0)) > 0]
    category = category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
    plain_rows = [g.row for g in rows]
    per_task = build_task_samples([t for t in active if t != "next_sid"], plain_rows, items, category)
    if "next_sid" in active:
        per_task["next_sid"] = variant.next_sid_samples(rows)
    rng = random.Random(cfg.seed)
    mixture: list[Any] = []
    for task in active:
        chosen = replicate_by_weight(per_task[task], float(cfg.task_weights[task]), rng)
        logger.info("task %-20s %7d samples (weight %g)", task, len(chosen), float(cfg.task_weights[task]))
        mixture += chosen
    return mixture


def load_gpr_sft_data(cfg: Any, variant: GPRVariant) -> Any:
    """``llm.load_sft_data`` with GPR rows, prompts and (with VAFT) per-sample weights."""
    from minionerec.llm import SFTData, check_rows_against_index, load_index_items, resolve_csvs, sample_rows

    train_path, valid_path = resolve_csvs(cfg)
    items = load_index_items(cfg)
    info = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info

    def checked(path: Any, rows: list[Any]) -> list[Any]:
        check_rows_against_index([g.row for g in rows], items, path)
        return rows

    train_rows = sample_rows(variant.read_rows(train_path, info, cfg.item_json_path), cfg.train_samples, cfg.seed)
    checked(train_path, train_rows)
    eval_rows: list[Any] = []
    if valid_path is not None:
        valid_rows = checked(valid_path, variant.read_rows(valid_path, info, cfg.item_json_path))
        eval_rows, rest = split_valid_by_user(valid_rows, cfg.eval_samples, holdout_seed_of(cfg))
        if cfg.train_on_valid:
            if not rest:
                raise InputError("sft.train_on_valid needs sft.eval_samples smaller than the valid CSV "
                                 f"({len(valid_rows)} rows) so that a held-out slice remains")
            train_rows = train_rows + rest
    elif cfg.train_on_valid:
        raise InputError(f"sft.train_on_valid is set but there is no valid CSV under {cfg.data_dir}/valid")
    train = gpr_task_mixture(cfg, train_rows, items, variant)
    if not train:
        raise InputError(f"the training set is empty ({len(train_rows)} rows in {train_path}, task weights "
                         f"{cfg.task_weights}): give at least one task a positive weight and a non-empty CSV")
    logger.info("GPR prompt: tokens=%s, type prefix=%s, VAFT=%s", variant.cfg.use_tokens,
                variant.cfg.target_type_prefix, variant.cfg.vaft)
    weights = variant.sample_weights(train, cfg.dataset, cfg.item_json_path)
    return SFTData(train, variant.next_sid_samples(eval_rows), items, weights)
