"""Item file -> item embeddings ``.npy`` (float32, row i = item i) + sidecar JSON.

    bash rq/text2emb/amazon_text2emb.sh configs/ml-100k.yaml [--text2emb.key value ...]
    accelerate launch --num_processes 2 rq/text2emb/amazon_text2emb.py CONFIG.yaml  (no GPU: 2 CPU ranks)

The stage (config, texts, batching, sharding, sidecar) is :mod:`minionerec.sid.text2emb`; the names
below stay importable from here.  With ``gpr: {enabled: true}`` an item without text is embedded as
``[EMPTY]`` (``amazon_text2emb_gpr.py`` forces the switch on).
"""

from minionerec.gpr import run_with_variant
from minionerec.sid.text2emb import Text2EmbConfig, build_texts, drop_words, main, sidecar

__all__ = ["Text2EmbConfig", "build_texts", "drop_words", "main", "sidecar"]

if __name__ == "__main__":
    run_with_variant(Text2EmbConfig, main)
