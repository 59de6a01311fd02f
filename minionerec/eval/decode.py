"""Decoding a test set: contiguous shards per rank, resumable through partial files.

Each rank appends finished batches to ``<output_dir>/partial/rank<i>-of-<n>-<fingerprint>.jsonl``
and skips them on restart; the fingerprint covers the checkpoint files, test/info contents and
decoding settings, so partial results of another run are ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minionerec.decoding import SIDTrie, encode_prompts, pad_token_id_of, sid_beam_search
from minionerec.io import file_sha256

if TYPE_CHECKING:
    from minionerec.eval.evaluate import EvaluateConfig

logger = logging.getLogger("minionerec.evaluate")


def run_fingerprint(cfg: EvaluateConfig) -> str:
    """A short hash of everything that determines the predictions (partial results of another run are ignored)."""
    model_files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(cfg.model_path).iterdir() if p.is_file())
    key = {"model": model_files, "test": file_sha256(cfg.test_file), "info": file_sha256(cfg.info_file),
           "num_beams": cfg.num_beams, "normalization": cfg.normalization, "max_samples": cfg.max_samples,
           "dtype": cfg.dtype, **({"length_penalty": cfg.length_penalty} if cfg.length_penalty else {})}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def shard_bounds(n: int, num_shards: int, index: int) -> tuple[int, int]:
    """Contiguous ``[start, end)`` of shard ``index`` (sizes differ by at most one)."""
    return index * n // num_shards, (index + 1) * n // num_shards


def _read_partial(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    done = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from an interrupted run: redo from here
    return done


def decode_shard(model: Any, tokenizer: Any, trie: SIDTrie, prompts: Sequence[str], cfg: EvaluateConfig,
                 partial_path: Path | None) -> list[list[str]]:
    """Predictions (SID strings, best first) for ``prompts``; finished batches are kept on disk."""
    from tqdm.auto import tqdm

    done = _read_partial(partial_path) if partial_path is not None and cfg.resume else []
    if done:
        logger.info("resuming: %d of %d users already decoded in %s", len(done), len(prompts), partial_path)
    done = done[: len(prompts)]
    pad = pad_token_id_of(tokenizer)
    handle = None
    if partial_path is not None:
        partial_path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial_path, "w", encoding="utf-8") as f:  # rewrite without a possibly torn tail
            f.writelines(json.dumps(p) + "\n" for p in done)
        handle = open(partial_path, "a", encoding="utf-8")
    try:
        starts = range(len(done), len(prompts), cfg.batch_size)
        for start in tqdm(starts, desc="evaluate", disable=not starts):
            chunk = prompts[start:start + cfg.batch_size]
            result = sid_beam_search(model, trie, encode_prompts(tokenizer, chunk), cfg.num_beams, pad,
                                     batch_size=cfg.batch_size, normalization=cfg.normalization,
                                     shared_prefix=cfg.shared_prefix, length_penalty=cfg.length_penalty)
            for preds in result.sid_strings(trie):
                done.append(preds)
                if handle is not None:
                    handle.write(json.dumps(preds) + "\n")
            if handle is not None:
                handle.flush()
    finally:
        if handle is not None:
            handle.close()
    return done
