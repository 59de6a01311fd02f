"""SFT with the GPR prompt (U/E/type tokens) and VAFT (value-aware loss weights); the rest is sft.py.

    bash sft_gpr.sh configs/synthetic_gpr.yaml [--sft.key value | --gpr.key value ...]

Differences from ``sft.py`` (reference ``gpr-and-amazon23.md`` §2.4, §5.4), each fixing a reason
upstream's version had no effect:

- the next-item samples are built from the GPR CSV columns (``convert_dataset_gpr.py``) with
  :func:`minionerec.gpr.gpr_next_item_prompt`, the same prompt RL and evaluation use; the other
  tasks are sft.py's;
- the tokens listed in ``info/<D>.gpr.json`` are added as special tokens (before the SIDs,
  initialised like them, trained with them under ``freeze_llm``);
- ``gpr.vaft``: each next-item sample is weighted by its target's value (``<D>.gpr.items.json``)
  with :func:`minionerec.gpr.vaft_weights` (mean 1 over the training next-item samples, other
  tasks 1); the weights travel through the collator into ``sft.response_loss``.  Validation
  loss (early stopping) stays unweighted.

With ``gpr.use_tokens false``, ``gpr.target_type_prefix false`` and ``gpr.vaft false`` (and
integer task weights) the training data, and hence the model, are exactly sft.py's.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import data
import sft
from minionerec.config import save_resolved_config
from minionerec.errors import InputError
from minionerec.gpr import (
    GPRConfig,
    GPRRow,
    SideFiles,
    gpr_next_sid_samples,
    gpr_template_pieces,
    read_gpr_csv,
    read_info_side,
    read_item_features,
    run_gpr_stage,
    vaft_weights,
)
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import find_llm_data_files

logger = logging.getLogger("minionerec.sft_gpr")


def read_checked_rows(path: Any, items: list[data.ItemText]) -> list[GPRRow]:
    rows = read_gpr_csv(path)
    data.check_rows_against_index([g.row for g in rows], items, path)
    return rows


def next_item_weights(rows: list[GPRRow], chosen: list[int], cfg: sft.SFTConfig, gcfg: GPRConfig) -> list[float]:
    """VAFT weights of the chosen next-item samples, from their targets' values."""
    path = SideFiles.of(gcfg.data_dir, cfg.dataset).items
    features = read_item_features(path)
    values = []
    for i in chosen:
        item = rows[i].row.item_id
        if item not in features:
            raise InputError(f"{path}: target item {item} has no value; re-run the GPR data stage on this dataset")
        values.append(features[item].value)
    weights = vaft_weights(values, gcfg.vaft_floor)
    logger.info("VAFT: %d next-item weights, min %.3f max %.3f (mean 1)", len(weights), min(weights), max(weights))
    return weights


def load_gpr_sft_data(cfg: sft.SFTConfig, gcfg: GPRConfig) -> sft.SFTData:
    """sft.load_sft_data with the GPR next-item samples and (with VAFT) per-sample weights."""
    train_path, valid_path = sft.resolve_csvs(cfg)
    items = sft.load_index_items(cfg)
    train_rows = read_checked_rows(train_path, items)
    eval_rows: list[GPRRow] = []
    if valid_path is not None:
        eval_rows, rest = split_valid_by_user(read_checked_rows(valid_path, items), cfg.eval_samples, holdout_seed_of(cfg))
        if cfg.train_on_valid:
            if not rest:
                raise InputError("sft.train_on_valid needs sft.eval_samples smaller than the valid CSV")
            train_rows = train_rows + rest
    elif cfg.train_on_valid:
        raise InputError(f"sft.train_on_valid is set but there is no valid CSV under {cfg.data_dir}/valid")
    category = data.category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
    next_weight = float(cfg.task_weights.get("next_sid", 0.0))
    chosen = data.replicate_by_weight(list(range(len(train_rows))), next_weight, random.Random(cfg.seed))
    samples = gpr_next_sid_samples(train_rows, gcfg.use_tokens, gcfg.target_type_prefix)
    train = [samples[i] for i in chosen]
    logger.info("task %-20s %7d samples (weight %g, GPR prompt: tokens=%s, type prefix=%s)", "next_sid", len(train),
                next_weight, gcfg.use_tokens, gcfg.target_type_prefix)
    others = data.build_task_mixture({**cfg.task_weights, "next_sid": 0.0}, [g.row for g in train_rows], items,
                                     category, cfg.seed)
    weights = None
    if gcfg.vaft:
        weights = next_item_weights(train_rows, chosen, cfg, gcfg) + [1.0] * len(others)
    if not train and not others:
        raise InputError(f"the training set is empty ({len(train_rows)} rows in {train_path}): give a task a positive weight")
    valid = gpr_next_sid_samples(eval_rows, gcfg.use_tokens, gcfg.target_type_prefix)
    return sft.SFTData(train + others, valid, items, weights)


def special_tokens(cfg: sft.SFTConfig, gcfg: GPRConfig) -> list[str]:
    """The converter's token list (info/<D>.gpr.json) when the prompt or response uses GPR tokens."""
    if not (gcfg.use_tokens or gcfg.target_type_prefix):
        return []
    info = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info
    if info is None:
        raise InputError(f"no info file {cfg.data_dir}/info/{cfg.dataset}*.txt: run convert_dataset_gpr.py")
    tokens, _ = read_info_side(info)
    return tokens


def main(cfg: sft.SFTConfig, gcfg: GPRConfig) -> dict[str, Any]:
    summary = sft.main(cfg, load_data=lambda c: load_gpr_sft_data(c, gcfg),
                       extra_special_tokens=special_tokens(cfg, gcfg),
                       extra_template_pieces=gpr_template_pieces() if gcfg.use_tokens else ())
    if int(os.environ.get("RANK", "0") or 0) == 0:
        save_resolved_config(gcfg, cfg.output_dir)
    return summary


if __name__ == "__main__":
    run_gpr_stage(sft.SFTConfig, main)
