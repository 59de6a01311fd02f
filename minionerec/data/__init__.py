"""The data stage: raw files of one source -> the protocol -> the stage's output files.

- :mod:`~minionerec.data.protocol`: the rules (title filter, UTC window, iterative k-core,
  widening, id remapping, sliding windows, global time split), their options and records;
- :mod:`~minionerec.data.build`: the whole protocol on parsed raw data, and the stage run;
- :mod:`~minionerec.data.writers`: every output file, in the current formats;
- one reader per source, each with its ``data:`` config and stage run:
  :mod:`~minionerec.data.amazon18`, :mod:`~minionerec.data.amazon23`,
  :mod:`~minionerec.data.movielens`, :mod:`~minionerec.data.lcrec`
  (:mod:`~minionerec.data.jsonl` holds what the two Amazon readers share).

The entry points are ``data/*.py``; the LLM-stage conversion is :mod:`minionerec.convert`.
"""

from minionerec.data.amazon18 import (
    AMAZON18_HELP,
    Amazon18Config,
    amazon18_files,
    read_amazon18,
    run_amazon18,
)
from minionerec.data.amazon23 import (
    AMAZON23_HELP,
    Amazon23Config,
    amazon23_files,
    read_amazon23,
    run_amazon23,
)
from minionerec.data.build import (
    SOURCE_SCRIPTS,
    build_dataset,
    build_frames,
    check_dataset_name,
    check_source,
    process,
)
from minionerec.data.lcrec import LCRecConfig, run_lcrec
from minionerec.data.movielens import MovieLensConfig, movielens_item, read_movielens, run_movielens
from minionerec.data.protocol import (
    INTERACTION_SCHEMA,
    MAX_HISTORY,
    ColumnarDataset,
    Interaction,
    ProcessedDataset,
    ProtocolOptions,
    RawData,
    Sample,
    TimeWindow,
    chronological_split,
    filter_interactions,
    interaction_frame,
    iso_utc,
    kcore,
    make_window,
    month_start_utc,
    remap_ids,
    sliding_samples,
    split_indices,
)
from minionerec.data.writers import output_dir, write_dataset

__all__ = [
    "AMAZON18_HELP",
    "AMAZON23_HELP",
    "Amazon18Config",
    "Amazon23Config",
    "ColumnarDataset",
    "INTERACTION_SCHEMA",
    "Interaction",
    "LCRecConfig",
    "MAX_HISTORY",
    "MovieLensConfig",
    "ProcessedDataset",
    "ProtocolOptions",
    "RawData",
    "SOURCE_SCRIPTS",
    "Sample",
    "TimeWindow",
    "amazon18_files",
    "amazon23_files",
    "build_dataset",
    "build_frames",
    "check_dataset_name",
    "check_source",
    "chronological_split",
    "filter_interactions",
    "interaction_frame",
    "iso_utc",
    "kcore",
    "make_window",
    "month_start_utc",
    "movielens_item",
    "output_dir",
    "process",
    "read_amazon18",
    "read_amazon23",
    "read_movielens",
    "remap_ids",
    "run_amazon18",
    "run_amazon23",
    "run_lcrec",
    "run_movielens",
    "sliding_samples",
    "split_indices",
    "write_dataset",
]
