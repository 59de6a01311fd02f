"""MiniOneRec: generative recommendation with semantic IDs.

The package holds the concepts every stage shares, each in one module:

- :mod:`minionerec.config`  - YAML configs, CLI overrides, the resolved config beside outputs
- :mod:`minionerec.cli`     - the runner every stage script uses (logging, seeding, errors)
- :mod:`minionerec.io`      - reading/validating every file format, atomic writes
- :mod:`minionerec.sid`     - the SID vocabulary: token strings, parsing, tokenizer extension
- :mod:`minionerec.metrics` - HR@K / NDCG@K / CC

Stage scripts (``data/*.py``, ``rq/*.py``, ``convert_dataset.py``, ``sft.py``, ``rl.py``,
``evaluate.py``) live at the repository root as the upstream layout has them.
"""

__version__ = "0.1.0"
