"""Upstream's ``convert_dataset_gpr.py`` name: ``convert_dataset.py`` with the GPR switch on.

    bash convert_dataset_gpr.sh configs/synthetic_gpr.yaml [--convert.key value | --gpr.key value ...]

The same CSV rows and info file as convert_dataset.py, each split CSV with four more columns
(``user_token``, ``context_token``, ``history_item_type``, ``item_type``) and
``info/<name>.gpr.json`` (the tokenizer's extra tokens, every item's type), all published together.
The features come from our side files (``data/amazon18_data_process_gpr.py``) or, without them,
from upstream's GPR files: 4-column ``.inter`` files (``e_token``), ``item_type``/``final_value`` in
item.json, ``<D>.user.json`` joined through ``<D>.user2id`` (:mod:`minionerec.gpr.sidefiles`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from minionerec import convert as convert_dataset  # the plain convert stage
from minionerec.config import save_resolved_config, to_dict
from minionerec.errors import InputError
from minionerec.gpr import GPRConfig, GPRVariant, run_gpr_stage
from minionerec.io import SPLITS, read_index_json, read_item_json
from minionerec.records import stage_outputs

logger = logging.getLogger("convert_dataset_gpr")


def main(cfg: convert_dataset.ConvertConfig, gcfg: GPRConfig) -> dict[str, Path]:
    if not cfg.dataset:
        raise InputError("convert.dataset is empty: set common.dataset in the config or pass --dataset NAME")
    unknown = [s for s in cfg.splits if s not in SPLITS]
    if unknown:
        raise InputError(f"convert.splits: unknown split(s) {unknown}; choose from {', '.join(SPLITS)}")
    variant, data_dir = GPRVariant(gcfg), Path(cfg.data_dir)
    item_path = Path(cfg.item_path or data_dir / f"{cfg.dataset}.item.json")
    items = read_item_json(item_path)
    index = read_index_json(Path(cfg.index_path or data_dir / f"{cfg.dataset}.index.json"))
    converter = variant.converter(gcfg.data_dir, cfg.dataset, cfg.splits, items, item_path)  # fails before any write
    inter = {split: data_dir / f"{cfg.dataset}.{split}.inter" for split in cfg.splits}
    rows = {split: (converter.read_inter(split, path), path) for split, path in inter.items()}
    limits = {"valid": cfg.max_valid_samples, "test": cfg.max_test_samples}
    output_dir = Path(cfg.output_dir)
    with stage_outputs(cfg, output_dir) as staging:
        staged = convert_dataset.convert(rows, items, index, item_path, staging, cfg.name or cfg.dataset,
                                         cfg.keep_longest_only, limits, cfg.seed)
        for split, (inter_rows, path) in rows.items():
            enriched = converter.rows(split, inter_rows, convert_dataset.split_rows(inter_rows, items, index, path), path)
            if split == "train" and cfg.keep_longest_only:
                enriched = convert_dataset.keep_longest_per_user(enriched)
            enriched = convert_dataset.subsample(enriched, limits.get(split, 0), cfg.seed)
            variant.write_csv(staged[split], enriched)
            logger.info("%s: %d rows with GPR columns", split, len(enriched))
        staged["gpr_info"] = converter.write_info(staged["info"], to_dict(gcfg))
    save_resolved_config(gcfg, output_dir)
    return {key: output_dir / path.relative_to(staging) for key, path in staged.items()}


if __name__ == "__main__":
    run_gpr_stage(convert_dataset.ConvertConfig, main)
