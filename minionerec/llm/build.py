"""Model building for SFT: the base model and tokenizer (embedded tiny Qwen2 + BPE, or a pretrained model),
the catalogue's SID tokens added and initialised, the decoding ``generation_config``, ``freeze_llm``."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minionerec.errors import InputError
from minionerec.io import SplitRow, load_npy
from minionerec.llm.items import ItemText
from minionerec.llm.modeling import (
    TINY_QWEN2,
    add_item_tokens,
    TinyModelSpec,
    build_tiny_qwen2,
    decoding_generation_config,
    extend_with_sid_tokens,
    freeze_llm,
    init_sid_rows_from_text,
    load_pretrained,
    qwen_tokenizer,
    sid_tokens_of,
    train_bpe_tokenizer,
)
from minionerec.llm.prompts import category_phrase
from minionerec.llm.tasks import TASK_NAMES, build_task_samples, prompt_template_pieces
from minionerec.sid.vocab import item_token

if TYPE_CHECKING:
    from minionerec.llm.sft import SFTConfig

__all__ = ["SID_STRING", "build_model", "tiny_spec", "tokenizer_corpus"]

logger = logging.getLogger("minionerec.sft")
SID_STRING = re.compile(r"(?:<[a-h]_\d+>)+")


def text_vectors(path: str) -> Any:
    """text2emb's item embeddings (row i = item i), with the fix named when the file is missing."""
    return load_npy(path, "text embedding file", "run the text2emb stage or set sft.text_embedding_path")


def tokenizer_corpus(items: list[ItemText]) -> list[str]:
    """Texts the embedded BPE is trained on: every prompt template once, then the item texts."""
    sid = items[0].sid
    row = SplitRow("A0", (items[0].title,), items[0].title, (items[0].item_id,), items[0].item_id, (sid,), sid)
    templates = [s.prompt for samples in build_task_samples(TASK_NAMES, [row], items[:1], "items").values()
                 for s in samples]
    texts = templates * 50 + [i.title for i in items] + [i.description for i in items if i.description]
    return [SID_STRING.sub("", text) for text in texts]  # SIDs become added tokens; no merges wasted on them


def tiny_spec(cfg: SFTConfig) -> TinyModelSpec:
    """The embedded tiny-qwen2 shape from the ``sft`` keys (positions cover ``max_len``)."""
    return TinyModelSpec(cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.intermediate_size,
                         max(1024, cfg.max_len), cfg.tie_word_embeddings, cfg.bpe_vocab_size)


def build_model(cfg: SFTConfig, items: list[ItemText], extra_special_tokens: Sequence[str] = (),
                extra_template_pieces: Sequence[str] = ()) -> tuple[Any, Any, list[int]]:
    """``(model, tokenizer, catalogue token ids)`` with the catalogue's SID tokens added: the SID token ids,
    then (``item_tokens``) the item token ids.

    ``extra_special_tokens`` (e.g. the GPR U/E/I/O tokens) are added before the SIDs, initialised
    like them, trained with them under ``freeze_llm``, and marked special (skipped when decoding).
    ``extra_template_pieces`` are a variant's own constant prompt pieces (with ``template_tokens``).
    """
    if cfg.base_model == TINY_QWEN2:
        if cfg.tokenizer == "bpe":
            category = category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
            pieces = prompt_template_pieces(category) if cfg.template_tokens else []
            pieces += list(extra_template_pieces) if cfg.template_tokens else []
            tokenizer = train_bpe_tokenizer(tokenizer_corpus(items), cfg.bpe_vocab_size, pieces)
        elif cfg.tokenizer == "qwen":
            tokenizer = qwen_tokenizer()
        else:
            raise InputError(f"sft.tokenizer must be bpe or qwen, got {cfg.tokenizer!r}")
        model = build_tiny_qwen2(len(tokenizer), tiny_spec(cfg), tokenizer.eos_token_id, cfg.seed)
    else:
        model, tokenizer = load_pretrained(cfg.base_model, cfg.gguf_file, cfg.train_from_scratch, cfg.seed)
    sid_tokens = sid_tokens_of(item.sid for item in items)
    if extra_special_tokens:
        extend_with_sid_tokens(model, tokenizer, list(extra_special_tokens), cfg.seed)
        tokenizer.add_tokens(list(extra_special_tokens), special_tokens=True)
    known = set(tokenizer.get_vocab())
    sid_ids = extend_with_sid_tokens(model, tokenizer, sid_tokens, cfg.seed)
    item_sids = {item.item_id: item.sid for item in items}
    if cfg.sid_init == "text" and not known.issuperset(sid_tokens):  # a checkpoint's trained rows are kept
        init_sid_rows_from_text(model, tokenizer, item_sids, text_vectors(cfg.text_embedding_path))
    if cfg.item_tokens:
        vectors = text_vectors(cfg.text_embedding_path) if Path(cfg.text_embedding_path).is_file() else None
        if vectors is None:
            logger.info("item_tokens: no text embeddings at %s; item rows start from their SID rows only",
                        cfg.text_embedding_path)
        sid_ids += add_item_tokens(model, tokenizer, item_sids, vectors)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    decoding_generation_config(model, tokenizer)
    if cfg.freeze_llm:
        item_tokens = sorted({item_token(item.sid) for item in items}) if cfg.item_tokens else []
        freeze_llm(model, tokenizer, [*extra_special_tokens, *sid_tokens, *item_tokens])
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("model %s: %.2fM parameters, vocabulary %d (%d SID tokens%s)", type(model).__name__,
                n_params / 1e6, len(tokenizer), len(sid_tokens),
                f", {len(sid_ids) - len(sid_tokens)} item tokens" if cfg.item_tokens else "")
    return model, tokenizer, sid_ids
