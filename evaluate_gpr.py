"""``evaluate.py`` with the GPR switch on (``gpr.enabled`` forced true): the GPR next-item prompt and, with
``gpr.target_type_prefix``, a type-prefixed trie.

    bash evaluate_gpr.sh configs/synthetic_gpr.yaml [--evaluate.key value | --gpr.key value ...]

The same stage as ``bash evaluate.sh CONFIG`` with ``gpr: {enabled: true}`` (:class:`minionerec.gpr.GPRVariant`);
the trie's leaves are the plain SIDs, so predictions and metrics have the plain format.
"""

from __future__ import annotations

import os

from minionerec.eval import EvaluateConfig, run_evaluation
from minionerec.gpr import run_with_variant

if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_with_variant(EvaluateConfig, run_evaluation, force_on=True)
