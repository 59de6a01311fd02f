"""SFT: teach a causal LM to generate the SID of the next item (plus the alignment tasks).

    bash sft.sh configs/ml-100k.yaml [--key value ...]          # one process (CPU or one GPU)
    NUM_PROCESSES=8 bash sft.sh CONFIG                           # multi-GPU (accelerate launch)
    NUM_PROCESSES=8 DEEPSPEED=zero2 bash sft.sh CONFIG           # multi-GPU with DeepSpeed ZeRO-2/3
    python sft.py --help [CONFIG]                                # every key of the ``sft:`` section

Inputs: ``{data_dir}/{train,valid}/<dataset>*.csv`` (upstream format), the SID index, and the item texts.
Output: ``output_dir`` holds the best model (by validation loss), the tokenizer with the SID tokens,
``sft.config.yaml`` and ``sft.summary.json``.

With ``gpr: {enabled: true}`` in the config the stage runs the GPR variant (:class:`minionerec.gpr.GPRVariant`:
GPR prompt and tokens, VAFT weights); ``sft_gpr.py`` is this script with the switch forced on.

This script parses the command line into :class:`SFTConfig` and runs :func:`minionerec.llm.sft.main`
(load the data, build the model, train, save).  The code lives in :mod:`minionerec.llm`: the config and
the stage in ``minionerec/llm/sft.py``, the data in ``sft_data.py``, the model in ``build.py``, the
collator/loss/Trainer in ``training.py``, prompts and tasks in ``prompts.py``/``tasks.py``.
"""

from __future__ import annotations

from minionerec.gpr import run_with_variant
from minionerec.llm import SFTConfig, main  # the stage's config and run

__all__ = ["SFTConfig", "main"]

if __name__ == "__main__":
    run_with_variant(SFTConfig, main)
