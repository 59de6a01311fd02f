"""Semantic IDs: the vocabulary (core) and how SIDs are built (the ``text2emb`` and ``sid`` stages).

Submodules, in pipeline order:

- :mod:`minionerec.sid.vocab`      - SID tokens ``<a_12><b_3>``: strings, parsing, collisions, tokenizer extension
- :mod:`minionerec.sid.item_text`  - the text of an item that text2emb embeds
- :mod:`minionerec.sid.text_embed` - frozen HF encoder, pooling, length-sorted batches shared across ranks
- :mod:`minionerec.sid.text2emb`   - the ``text2emb:`` stage (``Text2EmbConfig``, ``main``)
- :mod:`minionerec.sid.quantize`   - residual k-means (faiss, balanced, Sinkhorn uniform mapping)
- :mod:`minionerec.sid.rqvae`      - RQ-VAE / RQ-Kmeans+ model, training, checkpoints, index generation
- :mod:`minionerec.sid.index`      - embeddings loading, unique SIDs (collision step), quality report, writing
- :mod:`minionerec.sid.build`      - the ``sid:`` stage (``SidConfig``) and one entry point per method

The vocabulary names are imported here eagerly (``minionerec.io`` and everything downstream need them,
and they import nothing heavy).  The stage names are resolved lazily on first access, so
``from minionerec.sid import parse_sid`` never pulls in numpy/torch/faiss, and
``minionerec.io`` (which the build modules import) can import this package without a cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

from minionerec.sid.vocab import (
    LEVEL_LETTERS,
    SID,
    TOKEN_RE,
    add_sid_tokens,
    check_shared_sids,
    check_sid_tokens,
    codes_to_sid,
    find_collisions,
    item_token,
    item_token_sid,
    level_token,
    parse_sid,
    parse_token,
    sid_to_string,
    sid_vocabulary,
    try_parse_sid,
    validate_sid,
)

#: public name -> submodule that defines it (loaded on first access)
_LAZY: dict[str, str] = {
    **dict.fromkeys(("METHODS", "SidConfig", "build_sids", "run_kmeans_method", "train_rq_model", "generate_index",
                     "codebook_file", "ckpt_folder", "level_sizes"), "build"),
    **dict.fromkeys(("COLLISION_MODES", "load_embeddings", "resolve_collisions", "collision_rate",
                     "colliding_fraction", "code_keys", "level_statistics", "path_average_similarity",
                     "quality_report", "report_paths", "write_sid_outputs"), "index"),
    **dict.fromkeys(("ResidualCodebooks", "balanced_assign", "faiss_kmeans", "load_codebooks_npz",
                     "rq_kmeans_faiss", "rq_kmeans_constrained", "rq_kmeans_balanced_scalable",
                     "sinkhorn_uniform_assign", "squared_distances"), "quantize"),
    **dict.fromkeys(("RQVAE", "RQVAEArch", "TrainSettings", "sinkhorn_assign", "model_from_checkpoint"), "rqvae"),
    **dict.fromkeys(("clean_text", "item_text", "truncate", "UNKNOWN_ITEM"), "item_text"),
    **dict.fromkeys(("POOLINGS", "default_encoder_path", "embed_batches", "load_encoder", "merge_in_order",
                     "plan_batches", "pool"), "text_embed"),
    **dict.fromkeys(("Text2EmbConfig", "build_texts", "drop_words"), "text2emb"),
}

__all__ = [
    "LEVEL_LETTERS", "SID", "TOKEN_RE", "add_sid_tokens", "check_shared_sids", "check_sid_tokens", "codes_to_sid",
    "find_collisions", "item_token", "item_token_sid", "level_token", "parse_sid", "parse_token", "sid_to_string", "sid_vocabulary",
    "try_parse_sid", "validate_sid", *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'minionerec.sid' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"minionerec.sid.{module}"), name)
    globals()[name] = value
    return value
