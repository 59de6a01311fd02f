"""SFT: teach a causal LM to generate the SID of the next item (plus the alignment tasks).

    bash sft.sh configs/ml-100k.yaml [--key value ...]          # one process (CPU or one GPU)
    NUM_PROCESSES=8 bash sft.sh CONFIG                           # multi-GPU (accelerate launch)
    NUM_PROCESSES=8 DEEPSPEED=zero2 bash sft.sh CONFIG           # multi-GPU with DeepSpeed ZeRO-2/3
    python sft.py --help [CONFIG]                                # every key of the ``sft:`` section

Inputs: ``{data_dir}/{train,valid}/<dataset>*.csv`` (upstream format), the SID index, and the item texts.
Output: ``output_dir`` holds the best model (by validation loss), the tokenizer with the SID tokens,
``sft.config.yaml`` and ``sft.summary.json``.

This script parses the command line into :class:`SFTConfig` and runs :func:`minionerec.llm.sft.main`
(load the data, build the model, train, save).  The code lives in :mod:`minionerec.llm`: the config and
the stage in ``minionerec/llm/sft.py``, the data in ``sft_data.py``, the model in ``build.py``, the
collator/loss/Trainer in ``training.py``, prompts and tasks in ``prompts.py``/``tasks.py``.
"""

from __future__ import annotations

from minionerec.cli import run_stage
from minionerec.llm import SFTConfig, main  # the stage's config and run (sft_gpr.py calls them as sft.X)

__all__ = ["SFTConfig", "main"]

if __name__ == "__main__":
    run_stage(SFTConfig, main)
