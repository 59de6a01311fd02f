"""Tiny tokenizer/model builders shared by the decoding tests and benchmarks/bench_decoding.py.

Thin wrappers over the official builders in :mod:`minionerec.modeling` (byte-level BPE trained
on a few texts, SID tokens added through minionerec.sid.add_sid_tokens, random Qwen2).  No test
lives here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from minionerec.modeling import TinyModelSpec, build_tiny_qwen2, train_bpe_tokenizer
from minionerec.sid import add_sid_tokens

DEFAULT_TEXTS = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "The user has interacted with items in chronological order. Can you predict the next possible item?",
)


def build_tokenizer(sid_tokens: Sequence[str], train_texts: Sequence[str] = DEFAULT_TEXTS, vocab_size: int = 400):
    """A byte-level BPE tokenizer with EOS/pad ``<|endoftext|>`` and the SID tokens added."""
    tokenizer = train_bpe_tokenizer(train_texts, vocab_size)
    add_sid_tokens(tokenizer, list(sid_tokens))
    return tokenizer


def build_model(vocab_size: int, seed: int = 0, hidden: int = 48, layers: int = 2, eos_token_id: int = 0):
    """A random tiny Qwen2 (fp32, SDPA, eval mode) with N(0, 1) embeddings.

    The 0.02-std default init makes every next-token distribution nearly uniform; unit-variance
    embeddings give distinct, well-separated beam scores, so orders are meaningful in tests.
    """
    spec = TinyModelSpec(hidden_size=hidden, num_layers=layers, num_heads=4, num_kv_heads=2,
                         intermediate_size=hidden * 2, max_position_embeddings=2048)
    model = build_tiny_qwen2(vocab_size, spec, eos_token_id, seed).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed))
    return model
