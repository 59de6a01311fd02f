"""MovieLens (ml-100k / ml-1m; GroupLens or RecBole atomic files) -> the MiniOneRec data protocol.

    bash data/fetch_movielens.sh runs/ml-100k/raw/ml-100k    # ml-100k from the recbole==1.2.1 wheel
    bash data/movielens_process.sh configs/ml-100k.yaml
    bash data/movielens_process.sh --input_path runs/ml-100k/raw/ml-100k --dataset ml-100k --output_dir runs/data

Item text is the title with the release year, the genres as description and categories.
Defaults reproduce the reference protocol on ml-100k: no k-core (GroupLens already keeps only
users with >= 20 ratings; any ``item_k > 1`` would drop rare movies) and no time window, giving
99,057 samples = 79,245 / 9,906 / 9,906.
"""

from __future__ import annotations

from minionerec.cli import run_stage
from minionerec.data import MovieLensConfig, run_movielens

#: The stage's entry point (``MovieLensConfig`` is the ``data:`` section; :mod:`minionerec.data.movielens` has the code).
main = run_movielens

if __name__ == "__main__":
    run_stage(MovieLensConfig, main)
