"""RL stage: GRPO on an SFT checkpoint with constrained rollouts (every rollout a catalogue item).

    bash rl.sh configs/ml-100k.yaml [--key value ...]          # see rl.sh for multi-process

Reads ``${common.workdir}/llm/{train,valid,info}/<dataset>*`` (or ``rl.train_file`` /
``valid_file`` / ``info_file``) and the SFT checkpoint, trains with
:class:`minionerec.rl.MiniOneRecGRPOTrainer`, and writes the policy + tokenizer to
``rl.output_dir`` (Trainer checkpoints in ``checkpoint-N``; a rerun of a killed run with the same
config continues the newest, a finished run starts fresh, see sft.py) with ``rl.config.yaml`` and
``rl_summary.json`` beside them.

The stage lives in :mod:`minionerec.rl`: its config (:mod:`minionerec.rl.config`), data and
prompts (:mod:`minionerec.rl.samples`), the run (:mod:`minionerec.rl.stage`), the trainer and the
rewards.  Upstream's rl.py flags are accepted as aliases (``--help`` lists them).  With
``gpr: {enabled: true}`` the stage runs :class:`minionerec.gpr.GPRVariant`'s RL hooks (``rl_gpr.py`` forces it on).
"""

from __future__ import annotations

from minionerec.gpr import run_with_variant
from minionerec.gpr.rl import run_rl_stage
from minionerec.rl import RLConfig, main  # the stage's config and run

__all__ = ["RLConfig", "main"]

if __name__ == "__main__":
    run_with_variant(RLConfig, run_rl_stage)
