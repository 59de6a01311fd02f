"""Amazon Reviews 2018 raw files -> the plain data-stage outputs + the GPR side files.

    bash data/amazon18_data_process_gpr.sh configs/synthetic_gpr.yaml [--key value | --gpr.key value ...]

Exactly the outputs of ``data/amazon18_data_process.py`` (same ``data:`` section), plus the
U/E/I-O/value side files of :mod:`minionerec.gpr` (rules in the ``gpr:`` section) written
beside them: ``<D>.gpr.users.json``, ``<D>.gpr.items.json``, ``<D>.{train,valid,test}.gpr.tsv``,
``<D>.gpr.json``.  Every feature comes from training-period interactions only.
The Amazon 2023 path is ``data/amazon23_data_process_gpr.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minionerec.data import ProtocolOptions, amazon18_files, check_dataset_name, check_source, read_amazon18
from minionerec.gpr import GPRConfig, process_with_features, run_gpr_stage


@dataclass
class Amazon18Config(ProtocolOptions):
    """The ``data:`` section for Amazon 2018 raw files (the keys of data/amazon18_data_process.py)."""

    source: str = field(default="amazon18", metadata={"help": "Raw format of this config's data (amazon18)."})
    reviews_file: str = field(default="", metadata={"help": "Reviews file; empty: found in input_path."})
    metadata_file: str = field(default="", metadata={"help": "Meta file; empty: meta_<dataset>.json[.gz] in input_path."})


def main(cfg: Amazon18Config, gcfg: GPRConfig) -> Path:
    check_source(cfg.source, "amazon18")
    check_dataset_name(cfg)
    reviews, meta = amazon18_files(cfg.input_path, cfg.dataset, cfg.reviews_file, cfg.metadata_file)
    return process_with_features(read_amazon18(reviews, meta, cfg.strict), cfg, gcfg)


if __name__ == "__main__":
    run_gpr_stage(Amazon18Config, main)
