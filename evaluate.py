"""Evaluate a checkpoint on next-item prediction with constrained SID beam search.

Usage::

    python evaluate.py CONFIG.yaml [--model_path DIR --test_file CSV --info_file TXT --num_beams 50
                                    --batch_size 8 --output_dir DIR --normalization full|trie]
    python evaluate.py metrics --result_json predictions.json --info_file info.txt [--ks 1,5,10]
    python evaluate.py compare --a sft/predictions.json --b rl/predictions.json [--ks 10]   # paired bootstrap
    accelerate launch --num_processes 2 evaluate.py CONFIG.yaml ...   # each rank decodes a shard

Writes ``<output_dir>/predictions.json`` (upstream shape: ``[{"input", "output", "predict"}]``
plus the target ``item_id``), ``<output_dir>/metrics.json`` (``Evaluation.as_dict()`` plus
timing) and ``<output_dir>/evaluate.config.yaml``.  Prompts come from
:func:`data.next_item_prompt`; decoding is :func:`LogitProcessor.sid_beam_search` with every
generation setting pinned.  Long runs are resumable: each rank appends finished batches to
``<output_dir>/partial/rank<i>-of-<n>-<fingerprint>.jsonl`` and skips them on restart (the
fingerprint covers the checkpoint files, test/info contents and decoding settings).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from data import next_item_prompt
from LogitProcessor import (
    NORMALIZATIONS,
    Catalogue,
    SIDTrie,
    check_num_beams,
    encode_prompts,
    pad_token_id_of,
    sid_beam_search,
)
from minionerec.checkpoints import from_pretrained_checked
from minionerec.cli import exit_on_input_error, process_state, run_stage, seed_everything, setup_logging
from minionerec.config import CommonConfig, save_resolved_config
from minionerec.errors import InputError, where
from minionerec.io import (
    file_sha256,
    publish_together,
    read_info,
    read_predictions,
    read_split_csv,
    require_file,
    write_json,
)
from minionerec.metrics import DEFAULT_KS, compare_predictions, evaluate_predictions, normalise_prediction
from minionerec.modeling import bf16_available
from minionerec.records import begin_stage
from minionerec.sid import check_shared_sids, check_sid_tokens, parse_sid, sid_vocabulary

logger = logging.getLogger("minionerec.evaluate")


@dataclass
class EvaluateConfig(CommonConfig):
    """Constrained beam-search evaluation of one checkpoint."""

    section: ClassVar[str] = "evaluate"

    name: str = field(default="sft", metadata={"help": "Evaluation name; outputs go to <workdir>/eval/<name>."})
    model_path: str = field(default="${common.workdir}/sft",
                            metadata={"help": "Checkpoint folder with the model and the SID-extended tokenizer."})
    test_file: str = field(default="${common.workdir}/llm/test/${common.dataset}.csv",
                           metadata={"help": "Upstream-format test CSV."})
    info_file: str = field(default="${common.workdir}/llm/info/${common.dataset}.txt",
                           metadata={"help": "Item catalogue (sid<TAB>title<TAB>item_id per line)."})
    output_dir: str = field(default="", metadata={"help": "Output folder; empty: <workdir>/eval/<name>."})
    result_json: str = field(default="", metadata={"help": "Also write the predictions here in upstream's exact "
                             "shape, a JSON list of {input, output, predict} (upstream's --result_json_data)."})
    num_beams: int = field(default=50, metadata={"help": "Beams = predictions per user (upstream: 50)."})
    batch_size: int = field(default=8, metadata={"help": "Users decoded together (each with num_beams beams)."})
    normalization: str = field(
        default="full",
        metadata={"choices": NORMALIZATIONS,
                  "help": "'full': beam scores are full-vocabulary log-probs (upstream, exact vs generate); "
                  "'trie': only the trie rows of the LM head are computed and normalised (faster, large vocab); "
                  "'allowed': normalised over the allowed tokens of each step, forced steps skipped (fastest)."})
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS),
                          metadata={"help": "K values of HR@K/NDCG@K (those > num_beams are dropped)."})
    max_samples: int = field(default=0, metadata={"help": "Evaluate only the first N test rows (0 = all)."})
    device: str = field(default="auto", metadata={"help": "'auto' (the accelerate device), 'cpu' or 'cuda'."})
    dtype: str = field(default="auto", metadata={"help": "'auto' (bf16 on a bf16 GPU or a CPU "
                       "with native bf16, else fp32), 'float32' or 'bfloat16'."})
    resume: bool = field(default=True, metadata={"help": "Reuse finished batches from <output_dir>/partial."})
    shared_prefix: bool = field(
        default=True, metadata={"help": "Keep each prompt's KV cache once for all its beams (false: expand it per beam)."})
    num_threads: int = field(default=0, metadata={"help": "torch CPU threads per process (0 = torch's default)."})


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

@dataclass
class TestSet:
    prompts: list[str]
    target_sids: list[str]
    target_items: list[int]


def load_test_set(test_file: str | Path, catalogue: Catalogue, max_samples: int = 0) -> TestSet:
    """Prompts and targets from the test CSV; InputError for a target not in the catalogue."""
    rows = read_split_csv(test_file)
    if max_samples > 0:
        rows = rows[:max_samples]
    if not rows:
        raise InputError(f"{test_file} has no rows")
    sid_items = catalogue.sid_to_items()
    for i, row in enumerate(rows):
        if row.item_sid not in sid_items:
            raise InputError(
                f"{where(test_file, i + 2)}: target SID {row.item_sid} (item {row.item_id}) is not in the info file; "
                "the test CSV and the info file must come from the same convert_dataset.py run"
            )
    return TestSet(
        prompts=[next_item_prompt(list(r.history_item_sid)) for r in rows],
        target_sids=[r.item_sid for r in rows],
        target_items=[r.item_id for r in rows],
    )


def resolve_device_and_dtype(device: str, dtype: str, accelerate_device: torch.device | None) -> tuple[torch.device, torch.dtype]:
    if device == "auto":
        chosen = accelerate_device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        chosen = torch.device(device)
    if dtype == "auto":
        return chosen, torch.bfloat16 if bf16_available(chosen.type) else torch.float32
    if dtype not in ("float32", "bfloat16", "float16"):
        raise InputError(f"evaluate.dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    return chosen, getattr(torch, dtype)


def load_checkpoint(model_path: str | Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    """Model (eval mode) and tokenizer from a checkpoint folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path)
    require_file(path / "config.json", "model checkpoint (config.json)", "run sft.py or rl.py first, or pass --model_path")
    fix = "re-run the stage that wrote it (sft.py / rl.py) or point --model_path at a complete checkpoint folder"
    tokenizer = from_pretrained_checked(AutoTokenizer, path, fix)
    model = from_pretrained_checked(AutoModelForCausalLM, path, fix, dtype=dtype, attn_implementation="sdpa").to(device).eval()
    if model.get_output_embeddings().weight.shape[0] < len(tokenizer):
        raise InputError(f"{path}: the model has {model.get_output_embeddings().weight.shape[0]} output rows but the "
                         f"tokenizer {len(tokenizer)} tokens; save the resized model together with its tokenizer")
    return model, tokenizer


# --------------------------------------------------------------------------------------------
# Sharding and resumable decoding
# --------------------------------------------------------------------------------------------

def run_fingerprint(cfg: EvaluateConfig) -> str:
    """A short hash of everything that determines the predictions (partial results of another run are ignored)."""
    import hashlib

    model_files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(cfg.model_path).iterdir() if p.is_file())
    key = {"model": model_files, "test": file_sha256(cfg.test_file), "info": file_sha256(cfg.info_file),
           "num_beams": cfg.num_beams, "normalization": cfg.normalization, "max_samples": cfg.max_samples,
           "dtype": cfg.dtype}
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
                                     shared_prefix=cfg.shared_prefix)
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


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def output_dir_of(cfg: EvaluateConfig) -> Path:
    return Path(cfg.output_dir or Path(cfg.workdir) / "eval" / cfg.name)


def predictions_records(test: TestSet, predictions: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return [
        {"input": prompt, "output": target + "\n", "predict": list(preds), "item_id": item}
        for prompt, target, preds, item in zip(test.prompts, test.target_sids, predictions, test.target_items)
    ]


def main(cfg: EvaluateConfig, load_test: Callable[[EvaluateConfig, Catalogue], TestSet] | None = None,
         build_trie: Callable[[Catalogue, Any, torch.device], SIDTrie] | None = None) -> dict[str, Any]:
    """Evaluate and write the outputs.  ``load_test``/``build_trie`` let a variant (evaluate_gpr.py) change
    the prompts and the decoding trie; the defaults are :func:`load_test_set` and ``SIDTrie.from_sids``."""
    from accelerate.utils import gather_object

    if cfg.normalization not in NORMALIZATIONS:
        raise InputError(f"evaluate.normalization must be one of {NORMALIZATIONS}, got {cfg.normalization!r}")
    if cfg.batch_size < 1:
        raise InputError(f"evaluate.batch_size must be >= 1, got {cfg.batch_size}")
    state = process_state(cfg.device)
    seed_everything(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    out_dir = output_dir_of(cfg)
    if state.is_main_process:
        begin_stage(cfg, out_dir)  # the old done-record goes first: a failed run never looks finished

    info = read_info(cfg.info_file)
    shared_sid_items = check_shared_sids({c.item_id: c.sid for c in info}, cfg.info_file, cfg.allow_shared_sids)
    catalogue = Catalogue.from_info(info)
    test = load_test(cfg, catalogue) if load_test else load_test_set(cfg.test_file, catalogue, cfg.max_samples)
    device, dtype = resolve_device_and_dtype(cfg.device, cfg.dtype, state.device)
    model, tokenizer = load_checkpoint(cfg.model_path, device, dtype)
    check_sid_tokens(tokenizer, sid_vocabulary([parse_sid(s) for s in catalogue.sids]), source=f"the tokenizer in {cfg.model_path}")
    trie = build_trie(catalogue, tokenizer, device) if build_trie else SIDTrie.from_sids(catalogue.sids, tokenizer, device)
    check_num_beams(cfg.num_beams, trie, cfg.info_file, option="--num_beams")

    start, end = shard_bounds(len(test.prompts), state.num_processes, state.process_index)
    partial = out_dir / "partial" / f"rank{state.process_index}-of-{state.num_processes}-{run_fingerprint(cfg)}.jsonl"
    logger.info("rank %d/%d: users %d..%d of %d, %d beams, %d distinct SIDs, device %s %s",
                state.process_index, state.num_processes, start, end, len(test.prompts), cfg.num_beams,
                trie.num_sids, device, dtype)
    t0 = time.perf_counter()
    shard = decode_shard(model, tokenizer, trie, test.prompts[start:end], cfg, partial)
    elapsed = time.perf_counter() - t0
    predictions = gather_object([shard]) if state.num_processes > 1 else [shard]
    timings = gather_object([elapsed]) if state.num_processes > 1 else [elapsed]
    if not state.is_main_process:
        return {}

    predictions = [p for part in predictions for p in part]
    evaluation = evaluate_predictions(predictions, test.target_sids, catalogue.sid_to_items(), test.target_items, cfg.ks)
    wall = max(timings)
    metrics = evaluation.as_dict() | {
        "num_beams": cfg.num_beams,
        "normalization": cfg.normalization,
        "model_path": str(cfg.model_path),
        "shared_sid_items": shared_sid_items,  # items on a SID shared with another item (allow_shared_sids)
        "timing": {"decode_seconds": wall, "users_per_second": len(predictions) / wall if wall > 0 else None,
                   "num_processes": state.num_processes, "device": str(device), "dtype": str(dtype).replace("torch.", "")},
    }
    records = predictions_records(test, predictions)
    with publish_together(out_dir) as (staging, _):  # predictions and metrics of the same run, or neither
        write_json(staging / "predictions.json", records)
        write_json(staging / "metrics.json", metrics)
    if cfg.result_json:
        write_json(cfg.result_json, [{k: r[k] for k in ("input", "output", "predict")} for r in records])
    for path in (out_dir / "partial").glob("rank*.jsonl"):
        path.unlink()
    if (out_dir / "partial").is_dir() and not any((out_dir / "partial").iterdir()):
        (out_dir / "partial").rmdir()
    save_resolved_config(cfg, out_dir)  # the done-record: last
    logger.info("wrote %s: %s", out_dir, json.dumps({"item_level": evaluation.item_level, "CC": evaluation.cc}))
    return metrics


# --------------------------------------------------------------------------------------------
# `evaluate.py metrics`: recompute from a predictions file
# --------------------------------------------------------------------------------------------

def metrics_from_files(result_json: str | Path, info_file: str | Path, ks: Sequence[int] = DEFAULT_KS) -> dict[str, Any]:
    """Metrics of a predictions file (upstream shape; ``item_id`` enables item-level ranks)."""
    records = read_predictions(result_json)
    catalogue = Catalogue.from_info(read_info(info_file))
    targets = [normalise_prediction(r["output"]) for r in records]
    items = [r.get("item_id") for r in records]
    target_items = [int(i) for i in items] if all(i is not None for i in items) else None
    evaluation = evaluate_predictions([r["predict"] for r in records], targets, catalogue.sid_to_items(), target_items, ks)
    return evaluation.as_dict()


def parse_ks(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise InputError(f"--ks must be comma-separated integers, got {text!r}") from None


@exit_on_input_error
def metrics_command(argv: Sequence[str]) -> dict[str, Any]:
    import argparse

    parser = argparse.ArgumentParser(prog="evaluate.py metrics", description=metrics_from_files.__doc__)
    parser.add_argument("--result_json", required=True)
    parser.add_argument("--info_file", required=True)
    parser.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)), help="comma-separated K values")
    args = parser.parse_args(list(argv))
    result = metrics_from_files(args.result_json, args.info_file, parse_ks(args.ks))
    print(json.dumps(result, indent=2))
    return result


@exit_on_input_error
def compare_command(argv: Sequence[str]) -> dict[str, Any]:
    import argparse

    parser = argparse.ArgumentParser(prog="evaluate.py compare", description=compare_predictions.__doc__)
    parser.add_argument("--a", required=True, help="predictions.json of the reference model (e.g. SFT)")
    parser.add_argument("--b", required=True, help="predictions.json of the model compared with it (e.g. SFT+RL)")
    parser.add_argument("--ks", default="10", help="comma-separated K values")
    parser.add_argument("--n_resamples", type=int, default=2000)
    args = parser.parse_args(list(argv))
    result = compare_predictions(args.a, args.b, parse_ks(args.ks), args.n_resamples)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if len(sys.argv) > 1 and sys.argv[1] in ("metrics", "compare"):
        setup_logging()
        (metrics_command if sys.argv[1] == "metrics" else compare_command)(sys.argv[2:])
    else:
        run_stage(EvaluateConfig, main)
