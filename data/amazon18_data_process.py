"""Amazon Reviews 2018 raw files -> the MiniOneRec data protocol (see minionerec/preprocess.py).

    bash data/amazon18_data_process.sh --input_path runs/raw --dataset Industrial_and_Scientific \\
        --user_k 5 --item_k 5 --st_year 1996 --st_month 10 --ed_year 2018 --ed_month 10 --output_path runs/data
    bash data/amazon18_data_process.sh configs/synthetic.yaml [--key value ...]

Reads ``<input_path>/<dataset>_5.json[.gz]`` (else ``<dataset>.json[.gz]``) and
``<input_path>/meta_<dataset>.json[.gz]`` (JSON lines), writes ``<output_path>/<dataset>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minionerec.cli import run_stage
from minionerec.preprocess import (
    ProtocolOptions,
    amazon18_files,
    check_dataset_name,
    check_source,
    process,
    read_amazon18,
)


@dataclass
class Amazon18Config(ProtocolOptions):
    """The ``data:`` section for Amazon 2018 raw files."""

    source: str = field(default="amazon18", metadata={"help": "Raw format of this config's data (amazon18)."})
    reviews_file: str = field(default="", metadata={"help": "Reviews file; empty: found in input_path."})
    metadata_file: str = field(
        default="", metadata={"help": "Meta file; empty: meta_<dataset>.json[.gz] in input_path."}
    )


def main(cfg: Amazon18Config) -> Path:
    check_source(cfg.source, "amazon18")
    check_dataset_name(cfg)
    reviews, meta = amazon18_files(cfg.input_path, cfg.dataset, cfg.reviews_file, cfg.metadata_file)
    return process(read_amazon18(reviews, meta, cfg.strict), cfg)


if __name__ == "__main__":
    run_stage(Amazon18Config, main)
