"""convert_dataset.py plus the GPR token columns and the tokenizer's extra special tokens.

    bash convert_dataset_gpr.sh configs/synthetic_gpr.yaml [--convert.key value | --gpr.key value ...]

Runs ``convert_dataset.py`` unchanged (same CSV rows, same info file), then rewrites each split
CSV with four more columns read from the GPR side files of the data stage
(:mod:`minionerec.gpr`): ``user_token`` (U), ``context_token`` (E), ``history_item_type`` (one
``I``/``O`` per history item) and ``item_type`` (the target's).  Plain stages read these CSVs as
before (extra columns are ignored); the ``*_gpr`` stages build the prompt
``{U} {E} ... items [I_TOKEN]<a_1><b_2><c_3>, [O_TOKEN]... `` from them
(:func:`minionerec.gpr.gpr_next_item_prompt`).  ``info/<name>.gpr.json`` lists the extra special
tokens for the tokenizer and every item's type (for a type-prefixed decoding trie).

Missing side files, a context file that does not line up with the ``.inter`` file, an item
without a type, NaN/negative values or unknown tokens are InputErrors naming the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import convert_dataset
from minionerec.config import save_resolved_config, to_dict
from minionerec.errors import InputError, where
from minionerec.gpr import (
    SIDE_FILES_FIX,
    GPRConfig,
    GPRRow,
    SideFiles,
    read_contexts,
    read_item_features,
    read_user_tokens,
    run_gpr_stage,
    write_gpr_csv,
    write_info_side,
)
from minionerec.io import InterRow, read_index_json, read_inter, read_item_json

logger = logging.getLogger("convert_dataset_gpr")


def gpr_rows(rows: list[InterRow], plain: list, contexts: list[tuple[int, int, str]], users: dict[int, str],
             types: dict[int, str], inter_path: Path, context_path: Path) -> list[GPRRow]:
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
        out.append(GPRRow(csv_row, users.get(row.user, "[USER_UNKNOWN]"), context,
                          tuple(types[i] for i in row.history), types[row.target]))
    return out


def main(cfg: convert_dataset.ConvertConfig, gcfg: GPRConfig) -> dict[str, Path]:
    side = SideFiles.of(gcfg.data_dir, cfg.dataset)
    users = read_user_tokens(side.users)          # read first: a missing side file fails before any write
    features = read_item_features(side.items)
    contexts = {split: read_contexts(side.contexts[split]) for split in cfg.splits}
    written = convert_dataset.main(cfg)

    data_dir = Path(cfg.data_dir)
    items = read_item_json(Path(cfg.item_path or data_dir / f"{cfg.dataset}.item.json"))
    index = read_index_json(Path(cfg.index_path or data_dir / f"{cfg.dataset}.index.json"))
    types = {item: f.type for item, f in features.items()}
    limits = {"valid": cfg.max_valid_samples, "test": cfg.max_test_samples}
    for split in cfg.splits:
        inter_path = data_dir / f"{cfg.dataset}.{split}.inter"
        rows = read_inter(inter_path)
        plain = convert_dataset.split_rows(rows, items, index, inter_path)
        enriched = gpr_rows(rows, plain, contexts[split], users, types, inter_path, side.contexts[split])
        if split == "train" and cfg.keep_longest_only:
            enriched = convert_dataset.keep_longest_per_user(enriched)
        enriched = convert_dataset.subsample(enriched, limits.get(split, 0), cfg.seed)
        write_gpr_csv(written[split], enriched)
        logger.info("%s: %d rows with GPR columns -> %s", split, len(enriched), written[split])
    missing = sorted(set(items) - set(types))
    if missing:
        raise InputError(f"{side.items}: item {missing[0]} of the item file has no type; {SIDE_FILES_FIX}")
    written["gpr_info"] = write_info_side(written["info"], types, to_dict(gcfg))
    save_resolved_config(cfg, cfg.output_dir)  # the CSVs changed after convert's done-record: record them again
    save_resolved_config(gcfg, cfg.output_dir)
    return written


if __name__ == "__main__":
    run_gpr_stage(convert_dataset.ConvertConfig, main)
