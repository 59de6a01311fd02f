"""The evaluation stage: one checkpoint on next-item prediction with constrained SID beam search.

:func:`run_evaluation` (what ``evaluate.py CONFIG`` runs) reads the catalogue and the test set
(:mod:`.testset`), decodes this rank's shard resumably (:mod:`.decode`), gathers the shards,
scores them (:mod:`minionerec.metrics`) and writes the outputs (:mod:`.results`) and the
resolved config.  Prompts come from :func:`minionerec.llm.next_item_prompt`; decoding is
:func:`minionerec.decoding.sid_beam_search` with every generation setting pinned.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from minionerec.catalogue import Catalogue, read_info
from minionerec.checkpoints import from_pretrained_checked
from minionerec.cli import process_state, seed_everything
from minionerec.config import CommonConfig, save_resolved_config
from minionerec.decoding import NORMALIZATIONS, SIDTrie, check_num_beams
from minionerec.device import resolve_device, resolve_dtype
from minionerec.errors import InputError
from minionerec.eval.decode import decode_shard, run_fingerprint, shard_bounds
from minionerec.eval.results import predictions_records, write_results
from minionerec.eval.testset import load_test_set
from minionerec.io import require_file
from minionerec.metrics import DEFAULT_KS, evaluate_predictions
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
    length_penalty: float = field(default=0.0, metadata={
        "help": "Rank finished beams by score / length**length_penalty, as HF generate (upstream's --length_penalty; "
                "0.0 = summed log-probability, upstream's default). Equal-length SIDs rank the same whatever the value."})
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
# Device, checkpoint, output folder
# --------------------------------------------------------------------------------------------


def resolve_device_and_dtype(device: str, dtype: str, accelerate_device: torch.device | None) -> tuple[torch.device, torch.dtype]:
    chosen = resolve_device(device, accelerate_device)
    return chosen, resolve_dtype(dtype, chosen, "evaluate.dtype")


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


def output_dir_of(cfg: EvaluateConfig) -> Path:
    """``output_dir``, or ``<workdir>/eval/<name>`` when it is empty."""
    return Path(cfg.output_dir or Path(cfg.workdir) / "eval" / cfg.name)


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------

def run_evaluation(cfg: EvaluateConfig, variant: Any = None) -> dict[str, Any]:
    """Evaluate and write the outputs.  ``variant`` (``minionerec.gpr.GPRVariant``, the ``gpr:`` section)
    changes the prompts and the decoding trie; None or a switched-off variant is plain evaluation."""
    from accelerate.utils import gather_object

    if cfg.normalization not in NORMALIZATIONS:
        raise InputError(f"evaluate.normalization must be one of {NORMALIZATIONS}, got {cfg.normalization!r}")
    if cfg.batch_size < 1:
        raise InputError(f"evaluate.batch_size must be >= 1, got {cfg.batch_size}")
    variant = variant if variant is not None and variant.enabled else None
    if variant is not None:
        variant.check_checkpoint(cfg.model_path)  # the checkpoint learned the prompt this run decodes from
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
    test = load_test_set(cfg.test_file, catalogue, cfg.max_samples, variant, cfg.info_file)
    device, dtype = resolve_device_and_dtype(cfg.device, cfg.dtype, state.device)
    model, tokenizer = load_checkpoint(cfg.model_path, device, dtype)
    check_sid_tokens(tokenizer, sid_vocabulary([parse_sid(s) for s in catalogue.sids]), source=f"the tokenizer in {cfg.model_path}")
    trie = (variant.build_trie(catalogue, tokenizer, device, cfg.info_file) if variant is not None
            else SIDTrie.from_sids(catalogue.sids, tokenizer, device))
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
        **({"length_penalty": cfg.length_penalty} if cfg.length_penalty else {}),
        "model_path": str(cfg.model_path),
        "shared_sid_items": shared_sid_items,  # items on a SID shared with another item (allow_shared_sids)
        "timing": {"decode_seconds": wall, "users_per_second": len(predictions) / wall if wall > 0 else None,
                   "num_processes": state.num_processes, "device": str(device), "dtype": str(dtype).replace("torch.", "")},
    }
    write_results(out_dir, predictions_records(test, predictions), metrics, cfg.result_json)
    if variant is not None:
        variant.save_config(out_dir)
    save_resolved_config(cfg, out_dir)  # the done-record: last
    logger.info("wrote %s: %s", out_dir, json.dumps({"item_level": evaluation.item_level, "CC": evaluation.cc}))
    return metrics
