"""An LC-Rec/LETTER prepared dataset (``<D>.inter.json`` + ``<D>.item.json``) -> this stage's outputs.

    bash data/lcrec_process.sh --input_path ../shared/data/amazon18_scientific_lcrec --dataset Scientific \\
        --output_dir runs/scientific/data

LC-Rec files have no timestamps, so the global chronological 8:1:1 split is impossible; the
split is LC-Rec's leave-one-out (per user: last item = test, second to last = valid, earlier
positions = train), with the same 10-item history windows.  Item ids are kept as they are, so
``.user2id``/``.item2id`` are identity maps.  Later stages (text2emb, SIDs, convert) then run
unchanged on ``<output_dir>/<dataset>/``.
"""

from __future__ import annotations

from minionerec.cli import run_stage
from minionerec.data import LCRecConfig, run_lcrec

#: The stage's entry point (``LCRecConfig`` is the ``data:`` section; :mod:`minionerec.data.lcrec` has the code).
main = run_lcrec

if __name__ == "__main__":
    run_stage(LCRecConfig, main)
