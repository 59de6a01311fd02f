"""``evaluate.py`` with the GPR switch on: the GPR next-item prompt and, with ``gpr.target_type_prefix``,
a type-prefixed trie.

    bash evaluate_gpr.sh configs/synthetic_gpr.yaml [--evaluate.key value | --gpr.key value ...]

The test CSV (ours or upstream's GPR columns) is parsed once, by :meth:`minionerec.gpr.GPRVariant.test_set`;
decoding, metrics, outputs, sharding and resuming are evaluate.py's.  The trie's leaves are the plain
SIDs, so predictions and metrics have the plain format.
"""

from __future__ import annotations

import os
from typing import Any

import evaluate
from minionerec.gpr import GPRConfig, GPRVariant, run_gpr_stage


def main(cfg: evaluate.EvaluateConfig, gcfg: GPRConfig) -> dict[str, Any]:
    variant = GPRVariant(gcfg)
    variant.check_checkpoint(cfg.model_path)
    metrics = evaluate.main(cfg, load_test=lambda c, cat: variant.test_set(c.test_file, cat, c.max_samples, c.info_file),
                            build_trie=lambda cat, tok, dev: variant.build_trie(cat, tok, dev, cfg.info_file))
    if metrics:
        variant.save_config(evaluate.output_dir_of(cfg))
    return metrics


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_gpr_stage(evaluate.EvaluateConfig, main)
