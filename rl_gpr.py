"""Upstream's ``rl_gpr.py`` name: ``rl.py`` with the GPR switch on (``gpr.enabled``).

    bash rl_gpr.sh configs/synthetic_gpr.yaml [--rl.key value | --gpr.key value ...]

The variant (:meth:`minionerec.gpr.GPRVariant.rl_variant`) gives rl.py the GPR next-item prompts
(training and validation: the string SFT trained on and evaluation decodes from), the
type-prefixed trie with ``gpr.target_type_prefix``, and with ``gpr.hepo`` the HEPO trainer
(one advantage per SID level, :mod:`minionerec.gpr.hepo`).  With ``gpr.hepo false`` the trainer is
rl.py's own class, so the update is identical to rl.py's.
"""

from __future__ import annotations

from typing import Any

import rl
from minionerec.gpr import GPRConfig, GPRVariant, run_gpr_stage


def main(cfg: rl.RLConfig, gcfg: GPRConfig) -> dict[str, Any]:
    variant = GPRVariant(gcfg)
    variant.check_checkpoint(cfg.model_path)
    summary = rl.main(cfg, variant.rl_variant(cfg))
    variant.save_config(cfg.output_dir)
    return summary


if __name__ == "__main__":
    run_gpr_stage(rl.RLConfig, main)
