"""Data-stage outputs + item file + SID index -> the LLM-stage files, in upstream's format.

    bash convert_dataset.sh configs/ml-100k.yaml [--convert.key value ...]

Writes ``<output_dir>/{train,valid,test}/<name>.csv`` and ``<output_dir>/info/<name>.txt``; the
code and the format notes are in :mod:`minionerec.convert` (``ConvertConfig`` is the ``convert:``
section).
"""

from __future__ import annotations

from minionerec.cli import run_stage
from minionerec.convert import ConvertConfig, main

__all__ = ["ConvertConfig", "main"]

if __name__ == "__main__":
    run_stage(ConvertConfig, main)
