"""Data-stage outputs + item file + SID index -> the LLM-stage files, in upstream's format.

    bash convert_dataset.sh configs/ml-100k.yaml [--convert.key value ...]

Writes ``<output_dir>/{train,valid,test}/<name>.csv`` and ``<output_dir>/info/<name>.txt``; the
code and the format notes are in :mod:`minionerec.convert` (``ConvertConfig`` is the ``convert:``
section).  With ``gpr: {enabled: true}`` each CSV gets the GPR columns and ``info/<name>.gpr.json`` is written
(:class:`minionerec.gpr.GPRVariant`; ``convert_dataset_gpr.py`` forces the switch on).
"""

from __future__ import annotations

from minionerec.convert import ConvertConfig, main
from minionerec.gpr import run_with_variant

__all__ = ["ConvertConfig", "main"]

if __name__ == "__main__":
    run_with_variant(ConvertConfig, main)
