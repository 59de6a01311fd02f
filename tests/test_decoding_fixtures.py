"""Tiny tokenizer/model builders shared by the decoding tests and benchmarks/bench_decoding.py.

A byte-level BPE tokenizer (optionally trained on a few texts) with the SID tokens added through
minionerec.sid.add_sid_tokens, and a random Qwen2 built from Qwen2Config.  No test lives here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from minionerec.sid import add_sid_tokens

EOS = "<|endoftext|>"


def build_tokenizer(sid_tokens: Sequence[str], train_texts: Sequence[str] = (), vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """Byte-level BPE (merges learned from ``train_texts`` when given) plus EOS and the SID tokens."""
    if train_texts:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(train_texts, trainer)
    else:
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        vocab = {EOS: 0} | {ch: i + 1 for i, ch in enumerate(sorted(alphabet))}
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    add_sid_tokens(hf, list(sid_tokens))
    return hf


def build_model(vocab_size: int, seed: int = 0, hidden: int = 48, layers: int = 2) -> Qwen2ForCausalLM:
    """A random tiny Qwen2 in float32, eval mode."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
    )
    config._attn_implementation = "sdpa"
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # sharper distributions than the 0.02-std init make beam order meaningful
        model.model.embed_tokens.weight.normal_(0.0, 1.0)
    return model
