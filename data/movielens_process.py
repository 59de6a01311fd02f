"""MovieLens (ml-100k / ml-1m; GroupLens or RecBole atomic files) -> the MiniOneRec data protocol.

    bash data/fetch_movielens.sh runs/ml-100k/raw/ml-100k    # ml-100k from the recbole==1.2.1 wheel
    bash data/movielens_process.sh configs/ml-100k.yaml
    bash data/movielens_process.sh --input_path runs/ml-100k/raw/ml-100k --dataset ml-100k --output_path runs/data

Item text is the title with the release year, the genres as description and categories.
Defaults reproduce the reference protocol on ml-100k: no k-core (GroupLens already keeps only
users with >= 20 ratings; any ``item_k > 1`` would drop rare movies) and no time window, giving
99,057 samples = 79,245 / 9,906 / 9,906.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minionerec.cli import run_stage
from minionerec.preprocess import ProtocolOptions, check_dataset_name, check_source, process, read_movielens


@dataclass
class MovieLensConfig(ProtocolOptions):
    """The ``data:`` section for MovieLens."""

    input_path: str = field(default="${common.workdir}/raw/${common.dataset}",
                            metadata={"help": "Folder with <dataset>.inter/.item (RecBole), u.data/u.item or "
                                      "ratings.dat/movies.dat (GroupLens)."})
    user_k: int = field(default=0, metadata={"help": "k-core: users with fewer interactions are removed (0 = off)."})
    item_k: int = field(default=0, metadata={"help": "k-core: items with fewer interactions are removed (0 = off)."})
    st_year: int = field(default=0, metadata={"help": "Window start year (0 = no time window)."})
    st_month: int = field(default=1, metadata={"help": "Window start month; start = 00:00 UTC on its 1st day."})
    ed_year: int = field(default=0, metadata={"help": "Window end year (0 = no time window)."})
    ed_month: int = field(default=1, metadata={"help": "Window end month; end = 00:00 UTC on its 1st day (inclusive)."})
    source: str = field(default="movielens", metadata={"help": "Raw format of this config's data (movielens)."})


def main(cfg: MovieLensConfig) -> Path:
    check_source(cfg.source, "movielens")
    check_dataset_name(cfg)
    return process(read_movielens(cfg.input_path, cfg.dataset), cfg)


if __name__ == "__main__":
    run_stage(MovieLensConfig, main)
