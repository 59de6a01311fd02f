"""Amazon Reviews 2023 raw files -> the plain data-stage outputs + the GPR side files.

    bash data/amazon23_data_process_gpr.sh CONFIG.yaml [--key value | --gpr.key value ...]

Exactly the outputs of ``data/amazon23_data_process.py`` plus the side files of
:mod:`minionerec.gpr` (see ``data/amazon18_data_process_gpr.py``).  Amazon 2023 prices are
numbers (``price``), timestamps have second resolution, so the ``gap`` context rule separates
same-day sessions well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minionerec.data import ProtocolOptions, amazon23_files, check_dataset_name, check_source, read_amazon23
from minionerec.gpr import GPRConfig, process_with_features, run_gpr_stage


@dataclass
class Amazon23Config(ProtocolOptions):
    """The ``data:`` section for Amazon 2023 raw files (the keys and defaults of data/amazon23_data_process.py)."""

    st_year: int = field(default=2018, metadata={"help": "Window start year (0 = no time window)."})
    st_month: int = field(default=10, metadata={"help": "Window start month; start = 00:00 UTC on its 1st day."})
    ed_year: int = field(default=2023, metadata={"help": "Window end year (0 = no time window)."})
    ed_month: int = field(default=9, metadata={"help": "Window end month; end = 00:00 UTC on its 1st day (inclusive)."})
    source: str = field(default="amazon23", metadata={"help": "Raw format of this config's data (amazon23)."})
    reviews_file: str = field(default="", metadata={"help": "Reviews file; empty: <dataset>.jsonl[.gz] in input_path."})
    metadata_file: str = field(default="", metadata={"help": "Meta file; empty: meta_<dataset>.jsonl[.gz] in input_path."})


def main(cfg: Amazon23Config, gcfg: GPRConfig) -> Path:
    check_source(cfg.source, "amazon23")
    check_dataset_name(cfg)
    reviews, meta = amazon23_files(cfg.input_path, cfg.dataset, cfg.reviews_file, cfg.metadata_file)
    return process_with_features(read_amazon23(reviews, meta, cfg.strict), cfg, gcfg)


if __name__ == "__main__":
    run_gpr_stage(Amazon23Config, main)
