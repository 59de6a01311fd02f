"""Amazon Reviews 2023 raw files -> the MiniOneRec data protocol (see minionerec/data/).

    bash data/amazon23_data_process.sh --input_path runs/raw --dataset All_Beauty \\
        --user_k 5 --item_k 5 --st_year 2018 --st_month 10 --ed_year 2023 --ed_month 9 --output_dir runs/data

Reads ``<input_path>/<dataset>.jsonl[.gz]`` (reviews: ``user_id, parent_asin, rating,
timestamp`` in ms, ``helpful_vote``) and ``<input_path>/meta_<dataset>.jsonl[.gz]``
(``parent_asin, title, description, store, categories, features, details, images``).
Items are ``parent_asin`` (variants collapse); timestamps are ``ms // 1000``; the brand is
``store``; the description is the cleaned paragraphs joined by spaces; categories are joined by
``", "``.  Titles are admitted when non-empty after cleaning (upstream's Amazon 2023 rule).
"""

from __future__ import annotations

from minionerec.data import Amazon23Config, run_amazon23
from minionerec.gpr import run_with_variant

#: The stage's entry point (``Amazon23Config`` is the ``data:`` section; :mod:`minionerec.data.amazon23` has the code).
main = run_amazon23

if __name__ == "__main__":
    run_with_variant(Amazon23Config, main)  # gpr.enabled: + the GPR side files
