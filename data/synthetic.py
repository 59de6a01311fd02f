"""Synthetic Amazon 2018-format raw files with a planted sequential structure (tests, CI smoke).

    bash data/synthetic.sh configs/synthetic.yaml          # the `synthetic:` section
    bash data/synthetic.sh --output_dir runs/raw --dataset Synthetic --n_users 300 --seed 1

Writes ``<output_dir>/<dataset>.json`` (reviews) and ``<output_dir>/meta_<dataset>.json``
(JSON lines, ``.gz`` with ``--gzip``), ready for ``data/amazon18_data_process.sh``.
The generator itself lives in :mod:`minionerec.synthetic`.
"""

from __future__ import annotations

from pathlib import Path

from minionerec.cli import run_stage
from minionerec.synthetic import SyntheticConfig, write_synthetic


def main(cfg: SyntheticConfig) -> tuple[Path, Path]:
    return write_synthetic(cfg)


if __name__ == "__main__":
    run_stage(SyntheticConfig, main)
