"""evaluate.py with the GPR next-item prompt and, with ``gpr.target_type_prefix``, a type-prefixed trie.

    bash evaluate_gpr.sh configs/synthetic_gpr.yaml [--evaluate.key value | --gpr.key value ...]

The test CSV must come from ``convert_dataset_gpr.py``.  Prompts are
:func:`minionerec.gpr.gpr_next_item_prompt` (the string SFT and RL trained on); decoding,
metrics, outputs, sharding and resuming are evaluate.py's.  With ``target_type_prefix`` every
catalogue SID is reachable only behind its item's type token (``info/<D>.gpr.json``); the trie's
leaves are still the plain SIDs, so predictions and metrics have the plain format.
"""

from __future__ import annotations

import os
from typing import Any

import torch

import evaluate
from LogitProcessor import Catalogue, SIDTrie
from minionerec.config import save_resolved_config
from minionerec.gpr import (
    GPRConfig,
    check_checkpoint_prompt,
    gpr_next_item_prompt,
    read_gpr_csv,
    read_info_side,
    run_gpr_stage,
    sid_types,
    type_prefixed_trie,
)


def gpr_test_set(cfg: evaluate.EvaluateConfig, catalogue: Catalogue, gcfg: GPRConfig) -> evaluate.TestSet:
    """evaluate.load_test_set's targets and checks, with GPR prompts."""
    test = evaluate.load_test_set(cfg.test_file, catalogue, cfg.max_samples)
    rows = read_gpr_csv(cfg.test_file)[: len(test.prompts)]
    test.prompts = [gpr_next_item_prompt(g, gcfg.use_tokens) for g in rows]
    return test


def catalogue_trie(catalogue: Catalogue, tokenizer: Any, device: torch.device, cfg: evaluate.EvaluateConfig,
                   gcfg: GPRConfig) -> SIDTrie:
    if not gcfg.target_type_prefix:
        return SIDTrie.from_sids(catalogue.sids, tokenizer, device)
    _, item_types = read_info_side(cfg.info_file)
    pairs = [(sid, catalogue.item_ids[r]) for sid, rows in zip(catalogue.sids, catalogue.sid_rows) for r in rows]
    return type_prefixed_trie(catalogue.sids, sid_types(pairs, item_types, cfg.info_file), tokenizer, device)


def main(cfg: evaluate.EvaluateConfig, gcfg: GPRConfig) -> dict[str, Any]:
    check_checkpoint_prompt(cfg.model_path, gcfg)
    metrics = evaluate.main(cfg, load_test=lambda c, cat: gpr_test_set(c, cat, gcfg),
                            build_trie=lambda cat, tok, dev: catalogue_trie(cat, tok, dev, cfg, gcfg))
    if metrics and int(os.environ.get("RANK", "0") or 0) == 0:
        save_resolved_config(gcfg, evaluate.output_dir_of(cfg))
    return metrics


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_gpr_stage(evaluate.EvaluateConfig, main)
