"""Upstream's ``convert_dataset_gpr.py`` name: ``convert_dataset.py`` with the GPR switch on (``gpr.enabled``).

    bash convert_dataset_gpr.sh configs/synthetic_gpr.yaml [--convert.key value | --gpr.key value ...]

The same CSV rows and info file as convert_dataset.py, each split CSV with four more columns
(``user_token``, ``context_token``, ``history_item_type``, ``item_type``) and
``info/<name>.gpr.json`` (the tokenizer's extra tokens, every item's type), all published together.
The features come from our side files (``data/amazon18_data_process_gpr.py``) or, without them,
from upstream's GPR files: 4-column ``.inter`` files (``e_token``), ``item_type``/``final_value`` in
item.json, ``<D>.user.json`` joined through ``<D>.user2id`` (:mod:`minionerec.gpr.sidefiles`).
"""

from __future__ import annotations

from minionerec.convert import ConvertConfig, main
from minionerec.gpr import run_with_variant

if __name__ == "__main__":
    run_with_variant(ConvertConfig, main, force_on=True)
