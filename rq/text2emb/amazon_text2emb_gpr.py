"""Upstream's ``rq/text2emb/amazon_text2emb_gpr.py`` name: ``amazon_text2emb.py`` with the GPR switch on.

    bash rq/text2emb/amazon_text2emb_gpr.sh configs/synthetic_gpr.yaml [--text2emb.key value ...]

The same stage as ``bash rq/text2emb/amazon_text2emb.sh CONFIG`` with ``gpr: {enabled: true}``: an item whose
every embedded field is empty is embedded as the literal ``[EMPTY]`` (upstream's GPR marker,
:meth:`minionerec.gpr.GPRVariant.embedding_texts`) instead of the plain ``unknown item``.  As upstream, the
text is title + description: the U/E/I/O tokens are prompt tokens, not item text.  The output is
``text2emb.output_path`` (upstream's GPR name ``<D>.emb-<encoder>-td.npy``: ``--text2emb.output_path``).
"""

from __future__ import annotations

from minionerec.gpr import run_with_variant
from minionerec.sid.text2emb import Text2EmbConfig, main

if __name__ == "__main__":
    run_with_variant(Text2EmbConfig, main, force_on=True)
