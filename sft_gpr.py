"""Upstream's ``sft_gpr.py`` name: ``sft.py`` with the GPR switch on (``gpr.enabled``).

    bash sft_gpr.sh configs/synthetic_gpr.yaml [--sft.key value | --gpr.key value ...]

Everything GPR is :class:`minionerec.gpr.GPRVariant`: the next-item samples come from the GPR CSV
columns with the GPR prompt (the same prompt RL and evaluation use), the tokens of
``info/<D>.gpr.json`` are added as special tokens (before the SIDs, trained with them under
``freeze_llm``), and ``gpr.vaft`` weights each next-item sample by its target's value (mean 1;
validation loss stays unweighted).  With ``gpr.use_tokens false``, ``gpr.target_type_prefix false``
and ``gpr.vaft false`` the training data, and hence the model, are exactly sft.py's.
"""

from __future__ import annotations

from typing import Any

import sft
from minionerec.gpr import GPRConfig, GPRVariant, run_gpr_stage
from minionerec.io import find_llm_data_files


def main(cfg: sft.SFTConfig, gcfg: GPRConfig) -> dict[str, Any]:
    variant = GPRVariant(gcfg)
    info = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info
    summary = sft.main(cfg, load_data=variant.load_sft_data, extra_special_tokens=variant.special_tokens(info),
                       extra_template_pieces=variant.template_pieces())
    variant.save_config(cfg.output_dir)
    return summary


if __name__ == "__main__":
    run_gpr_stage(sft.SFTConfig, main)
