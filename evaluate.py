"""Evaluate a checkpoint on next-item prediction with constrained SID beam search.

Usage::

    python evaluate.py CONFIG.yaml [--model_path DIR --test_file CSV --info_file TXT --num_beams 50
                                    --batch_size 8 --output_dir DIR --normalization full|trie]
    python evaluate.py metrics --result_json predictions.json --info_file info.txt [--ks 1,5,10]
    python evaluate.py compare --a sft/predictions.json --b rl/predictions.json [--ks 10]   # paired bootstrap
    accelerate launch --num_processes 2 evaluate.py CONFIG.yaml ...   # each rank decodes a shard

Writes ``<output_dir>/predictions.json`` (upstream shape: ``[{"input", "output", "predict"}]``
plus the target ``item_id``), ``<output_dir>/metrics.json`` (``Evaluation.as_dict()`` plus
timing) and ``<output_dir>/evaluate.config.yaml``.  Long runs are resumable: each rank appends
finished batches to ``<output_dir>/partial/`` and skips them on restart.  With ``gpr: {enabled: true}``
the prompts are GPR's and, with ``gpr.target_type_prefix``, the trie is type-prefixed (``evaluate_gpr.py``
forces the switch on).  The code is
:mod:`minionerec.eval`; the names below are re-exported for scripts that ``import evaluate``.
"""

import os
import sys

from minionerec.cli import setup_logging
from minionerec.eval import EvaluateConfig, compare_command, metrics_command, run_evaluation

main = run_evaluation  # the stage's run under the name the other entry scripts use

__all__ = ["EvaluateConfig", "main"]

if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if len(sys.argv) > 1 and sys.argv[1] in ("metrics", "compare"):
        setup_logging()
        (metrics_command if sys.argv[1] == "metrics" else compare_command)(sys.argv[2:])
    else:
        from minionerec.gpr import run_with_variant  # the gpr: section (gpr.enabled) switches the GPR prompt on

        run_with_variant(EvaluateConfig, run_evaluation)
