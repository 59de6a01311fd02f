"""Upstream's ``data/amazon18_data_process_gpr.py`` name: ``data/amazon18_data_process.py`` with the GPR
switch on (``gpr.enabled`` forced true).

    bash data/amazon18_data_process_gpr.sh CONFIG.yaml [--key value | --gpr.key value ...]

Amazon Reviews 2018: exactly the plain outputs (same ``data:`` section), plus the U/E/I-O/value side files of
:mod:`minionerec.gpr` (rules in the ``gpr:`` section) written beside them: ``<D>.gpr.users.json``,
``<D>.gpr.items.json``, ``<D>.{train,valid,test}.gpr.tsv``, ``<D>.gpr.json``.  Every feature comes from
training-period interactions only.
"""

from __future__ import annotations

from minionerec.data import Amazon18Config, run_amazon18
from minionerec.gpr import run_with_variant

if __name__ == "__main__":
    run_with_variant(Amazon18Config, run_amazon18, force_on=True)
