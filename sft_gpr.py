"""Upstream's ``sft_gpr.py`` name: ``sft.py`` with the GPR switch on (``gpr.enabled`` forced true).

    bash sft_gpr.sh configs/synthetic_gpr.yaml [--sft.key value | --gpr.key value ...]

The same stage as ``bash sft.sh CONFIG`` with ``gpr: {enabled: true}``: :class:`minionerec.gpr.GPRVariant`
gives the next-item samples the GPR prompt (the one RL and evaluation use), adds the tokens of
``info/<D>.gpr.json`` before the SIDs, and with ``gpr.vaft`` weights each next-item sample by its
target's value (mean 1; the validation loss stays unweighted).
"""

from __future__ import annotations

from minionerec.gpr import run_with_variant
from minionerec.llm import SFTConfig, main

if __name__ == "__main__":
    run_with_variant(SFTConfig, main, force_on=True)
