"""Amazon Reviews 2023 raw files -> the MiniOneRec data protocol (see minionerec/preprocess.py).

    bash data/amazon23_data_process.sh --input_path runs/raw --dataset All_Beauty \\
        --user_k 5 --item_k 5 --st_year 2018 --st_month 10 --ed_year 2023 --ed_month 9 --output_path runs/data

Reads ``<input_path>/<dataset>.jsonl[.gz]`` (reviews: ``user_id, parent_asin, rating,
timestamp`` in ms, ``helpful_vote``) and ``<input_path>/meta_<dataset>.jsonl[.gz]``
(``parent_asin, title, description, store, categories, features, details, images``).
Items are ``parent_asin`` (variants collapse); timestamps are ``ms // 1000``; the brand is
``store``; the description is the cleaned paragraphs joined by spaces; categories are joined by
``", "``.  Titles are admitted when non-empty after cleaning (upstream's Amazon 2023 rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minionerec.cli import run_stage
from minionerec.preprocess import (
    ProtocolOptions,
    amazon23_files,
    check_dataset_name,
    check_source,
    process,
    read_amazon23,
)


@dataclass
class Amazon23Config(ProtocolOptions):
    """The ``data:`` section for Amazon 2023 raw files (defaults: upstream's amazon23 .sh)."""

    st_year: int = field(default=2018, metadata={"help": "Window start year (0 = no time window)."})
    st_month: int = field(default=10, metadata={"help": "Window start month; start = 00:00 UTC on its 1st day."})
    ed_year: int = field(default=2023, metadata={"help": "Window end year (0 = no time window)."})
    ed_month: int = field(default=9, metadata={"help": "Window end month; end = 00:00 UTC on its 1st day (inclusive)."})
    source: str = field(default="amazon23", metadata={"help": "Raw format of this config's data (amazon23)."})
    reviews_file: str = field(default="", metadata={"help": "Reviews file; empty: <dataset>.jsonl[.gz] in input_path."})
    metadata_file: str = field(
        default="", metadata={"help": "Meta file; empty: meta_<dataset>.jsonl[.gz] in input_path."}
    )


def main(cfg: Amazon23Config) -> Path:
    check_source(cfg.source, "amazon23")
    check_dataset_name(cfg)
    reviews, meta = amazon23_files(cfg.input_path, cfg.dataset, cfg.reviews_file, cfg.metadata_file)
    return process(read_amazon23(reviews, meta, cfg.strict), cfg)


if __name__ == "__main__":
    run_stage(Amazon23Config, main)
