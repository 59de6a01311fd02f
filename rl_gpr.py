"""Upstream's ``rl_gpr.py`` name: ``rl.py`` with the GPR switch on (``gpr.enabled`` forced true).

    bash rl_gpr.sh configs/synthetic_gpr.yaml [--rl.key value | --gpr.key value ...]

The variant (:meth:`minionerec.gpr.GPRVariant.rl_variant`) gives the RL stage the GPR next-item prompts
(training and validation: the string SFT trained on and evaluation decodes from), the type-prefixed trie
with ``gpr.target_type_prefix``, and with ``gpr.hepo`` the HEPO trainer (one advantage per SID level,
:mod:`minionerec.gpr.hepo`).  With ``gpr.hepo false`` the trainer is rl.py's own class.
"""

from __future__ import annotations

from minionerec.gpr import run_with_variant
from minionerec.gpr.rl import run_rl_stage
from minionerec.rl import RLConfig

if __name__ == "__main__":
    run_with_variant(RLConfig, run_rl_stage, force_on=True)
