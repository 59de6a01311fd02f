"""Item file -> item embeddings ``.npy`` (float32, row i = item i) + sidecar JSON.

    bash rq/text2emb/amazon_text2emb.sh configs/ml-100k.yaml [--text2emb.key value ...]
    accelerate launch --num_processes 2 rq/text2emb/amazon_text2emb.py CONFIG.yaml  (no GPU: 2 CPU ranks)

The stage (config, texts, batching, sharding, sidecar) is :mod:`minionerec.sid.text2emb`; the names
below stay importable from here for the GPR alias ``amazon_text2emb_gpr.py``.
"""

from minionerec.cli import run_stage
from minionerec.sid.text2emb import Text2EmbConfig, build_texts, drop_words, main, sidecar

__all__ = ["Text2EmbConfig", "build_texts", "drop_words", "main", "sidecar"]

if __name__ == "__main__":
    run_stage(Text2EmbConfig, main)
