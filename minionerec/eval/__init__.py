"""The evaluation stage: constrained beam-search evaluation of a checkpoint, its result files and metrics.

- :mod:`.evaluate`: ``EvaluateConfig`` and :func:`run_evaluation` (what ``evaluate.py CONFIG`` runs);
- :mod:`.testset`: prompts and targets from the test CSV;
- :mod:`.decode`: sharded, resumable decoding (partial files);
- :mod:`.results`: predictions/metrics files, upstream's result json, metrics of a predictions file;
- :mod:`.commands`: the ``metrics`` and ``compare`` subcommands.
"""

from minionerec.eval.commands import compare_command, metrics_command, parse_ks
from minionerec.eval.decode import decode_shard, run_fingerprint, shard_bounds
from minionerec.eval.evaluate import (
    EvaluateConfig,
    load_checkpoint,
    output_dir_of,
    resolve_device_and_dtype,
    run_evaluation,
)
from minionerec.eval.results import metrics_from_files, predictions_records, write_results
from minionerec.eval.testset import TestSet, load_test_set

__all__ = [
    "EvaluateConfig", "TestSet", "compare_command", "decode_shard", "load_checkpoint", "load_test_set",
    "metrics_command", "metrics_from_files", "output_dir_of", "parse_ks", "predictions_records",
    "resolve_device_and_dtype", "run_evaluation", "run_fingerprint", "shard_bounds", "write_results",
]
