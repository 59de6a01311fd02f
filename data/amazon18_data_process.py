"""Amazon Reviews 2018 raw files -> the MiniOneRec data protocol (see minionerec/data/).

    bash data/amazon18_data_process.sh --input_path runs/raw --dataset Industrial_and_Scientific \\
        --user_k 5 --item_k 5 --st_year 1996 --st_month 10 --ed_year 2018 --ed_month 10 --output_dir runs/data
    bash data/amazon18_data_process.sh configs/synthetic.yaml [--key value ...]

Reads ``<input_path>/<dataset>_5.json[.gz]`` (else ``<dataset>.json[.gz]``) and
``<input_path>/meta_<dataset>.json[.gz]`` (JSON lines), writes ``<output_dir>/<dataset>/``.
"""

from __future__ import annotations

from minionerec.data import Amazon18Config, run_amazon18
from minionerec.gpr import run_with_variant

#: The stage's entry point (``Amazon18Config`` is the ``data:`` section; :mod:`minionerec.data.amazon18` has the code).
main = run_amazon18

if __name__ == "__main__":
    run_with_variant(Amazon18Config, main)  # gpr.enabled: + the GPR side files
