"""Recommendation baselines on the LLM-stage splits: popularity, Markov, SASRec, GRU4Rec.

    python baselines.py configs/ml-100k.yaml --model all          (or: bash baselines.sh ...)

Every model trains on the train split, picks its settings on the VALID split only, and is scored
once on the test split; per model ``<output_dir>/<model>.metrics.json`` (evaluate.py's shape) and a
``summary.json``.  The SASRec model saved in ``<output_dir>/sasrec/`` is the ``sasrec`` CF reward
model of rl.py.  The code is :mod:`minionerec.baselines` (``stage.py`` for this entry point).
"""

from minionerec.baselines import BaselinesConfig, run_baselines
from minionerec.cli import run_stage

__all__ = ["BaselinesConfig", "run_baselines"]

if __name__ == "__main__":
    run_stage(BaselinesConfig, run_baselines)
