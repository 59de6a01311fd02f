"""SmolLM2-135M SFT levers on this CPU, one at a time, in tokens/s (issue 16 item 2).

Part 1 (``--levers``): full training steps (response-only loss as sft trains it, backward, AdamW step)
on ONE fixed batch (``--batch`` x ``--seq`` token ids, loss on the last 4 positions like a 3-token SID
+ EOS), for each lever, interleaved in ``--rounds`` rounds (every lever once per round, back to back)
so that the load of a shared machine hits them alike; the figure is the median over rounds.  Tokens
count every position of the batch (prompt and response), as the issue's table does.

Levers: ``fp32`` (bf16 off), ``bf16`` (autocast over fp32 weights: ``sft.bf16: auto`` on a CPU with
native bf16), ``lora`` (``sft.lora_r``, bf16), ``freeze`` (``sft.freeze_layers``, bf16), ``compile``
(``torch.compile`` of the bf16 model; its compile time is reported apart and not in tokens/s).

Part 2 (``--data``): the prompt's token count with SmolLM2's own tokenizer for the next-SID task and the
default mixture (Industrial partial-train rows), and the padding waste of batches drawn at random vs
with ``group_by_length`` (HF's LengthGroupedSampler, the sampler ``sft.group_by_length`` selects):
real tokens / padded tokens per epoch, i.e. the share of compute that is not padding.

    python benchmarks/smollm2_speed.py --threads 2 --json runs/smollm2_speed.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from minionerec import llm
from minionerec.config import load_config
from minionerec.llm.efficient import apply_lora, freeze_lower_layers
from minionerec.llm.training import response_loss

logger = logging.getLogger("smollm2_speed")
ROOT = Path(__file__).resolve().parents[1]
#: upstream's prepared Industrial files: shared/ inside the checkout or next to it (a worktree's ../../shared)
DATA = next((p for p in (ROOT / "shared", ROOT.parent / "shared", ROOT.parents[1] / "shared")
             if (p / "data" / "minionerec_amazon").is_dir()), ROOT / "shared") / "data" / "minionerec_amazon"
STEM = "Industrial_and_Scientific_5_2016-10-2018-11"
LEVERS = ("fp32", "bf16", "lora", "freeze", "compile")


def fixed_batch(vocab: int, batch: int, seq: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids (no padding), labels on the last 4 positions."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=generator)
    labels = torch.full_like(ids, -100)
    labels[:, -4:] = ids[:, -4:]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "position_ids": torch.arange(seq).expand(batch, seq).clone(), "labels": labels}


def lever_model(base: Any, lever: str, sid_ids: list[int], args: argparse.Namespace) -> tuple[Any, bool]:
    """``(model, bf16 autocast?)`` for one lever, from a fresh copy of the base model."""
    model = copy.deepcopy(base)
    model.train()
    if lever == "lora":
        model = apply_lora(model, sid_ids, args.lora_r, 2.0 * args.lora_r, 0.05, args.lora_targets)
    elif lever == "freeze":
        freeze_lower_layers(model, args.freeze_layers, sid_ids)
    elif lever == "compile":
        model = torch.compile(model)
    return model, lever != "fp32"


def time_steps(model: Any, bf16: bool, batch: dict[str, torch.Tensor], steps: int,
               warmup: int) -> tuple[float, float, float]:
    """``(wall seconds per timed step, warm-up seconds, process CPU seconds per timed step)`` of fwd + bwd + AdamW.

    CPU time is far less sensitive than wall time to other processes on a shared machine."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = response_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - start
    cpu_start, start = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps, warm, (time.process_time() - cpu_start) / steps


def measure_levers(args: argparse.Namespace) -> dict[str, Any]:
    base, tokenizer = llm.load_pretrained(llm.SMOLLM2)
    sid_tokens = [f"<{level}_{i}>" for level in "abc" for i in range(256)]
    sid_ids = llm.extend_with_sid_tokens(base, tokenizer, sid_tokens, seed=0)
    batch = fixed_batch(len(tokenizer) - len(sid_tokens), args.batch, args.seq, args.seed)
    tokens = args.batch * args.seq
    levers = [lever for lever in args.levers.split(",") if lever]
    per_step: dict[str, list[float]] = {lever: [] for lever in levers}
    cpu_per_step: dict[str, list[float]] = {lever: [] for lever in levers}
    warmups: dict[str, list[float]] = {lever: [] for lever in levers}
    loads: list[float] = []
    for round_ in range(args.rounds):
        for lever in levers:
            model, bf16 = lever_model(base, lever, sid_ids, args)
            seconds, warm, cpu = time_steps(model, bf16, batch, args.steps,
                                            args.warmup + (1 if lever == "compile" else 0))
            per_step[lever].append(seconds)
            cpu_per_step[lever].append(cpu)
            warmups[lever].append(warm)
            loads.append(os.getloadavg()[0])
            logger.info("round %d %s: %.2f s/step, %.1f tokens/s, %.1f tokens per CPU-second (warm-up %.1f s), "
                        "load %.2f", round_, lever, seconds, tokens / seconds, tokens / cpu, warm, loads[-1])
            del model
    rows = {lever: {"tokens_per_s": tokens / statistics.median(per_step[lever]),
                    "tokens_per_s_each_round": [tokens / s for s in per_step[lever]],
                    "tokens_per_cpu_s": tokens / statistics.median(cpu_per_step[lever]),
                    "warmup_s": statistics.median(warmups[lever])} for lever in levers}
    return {"batch": args.batch, "seq": args.seq, "steps_per_round": args.steps, "rounds": args.rounds,
            "threads": torch.get_num_threads(), "load_avg_1min": loads, "levers": rows}


def data_config(args: argparse.Namespace, weights: dict[str, float]) -> Any:
    overrides = {
        "dataset": STEM, "workdir": "/tmp", "category": "industrial and scientific items",
        "train_file": str(args.data / "train_reconstructed_partial" / f"{STEM}.csv"),
        "valid_file": str(args.data / "valid" / f"{STEM}.csv"),
        "index_path": str(args.data / "index" / "Industrial_and_Scientific.index.json"),
        "item_json_path": str(args.data / "index" / "Industrial_and_Scientific.item.json"),
        "train_samples": str(args.train_samples), "eval_samples": "8", "base_model": llm.SMOLLM2,
        "allow_shared_sids": "true",  # upstream's released index (as configs/industrial_partial.yaml)
    }
    cfg = load_config(llm.SFTConfig, None, overrides)
    return dataclasses.replace(cfg, task_weights=weights)


def padded_tokens(lengths: list[int], order: list[int], batch: int, multiple: int = 8) -> int:
    """Tokens the collator produces for batches taken in ``order`` (padded to the longest, multiple of 8)."""
    total = 0
    for start in range(0, len(order), batch):
        chunk = [lengths[i] for i in order[start:start + batch]]
        total += math.ceil(max(chunk) / multiple) * multiple * len(chunk)
    return total


def measure_data(args: argparse.Namespace) -> dict[str, Any]:
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    source, gguf = llm.resolve_base_model(llm.SMOLLM2)
    tokenizer = llm.prepare_tokenizer(AutoTokenizer.from_pretrained(source, gguf_file=gguf))
    mixture = dict(llm.DEFAULT_TASK_WEIGHTS)
    out: dict[str, Any] = {}
    for name, weights in (("next_sid", {t: float(t == "next_sid") for t in mixture}), ("mixture", mixture)):
        cfg = data_config(args, weights)
        loaded = llm.load_sft_data(cfg)
        samples = loaded.train
        tokenizer.add_tokens(llm.sid_tokens_of(item.sid for item in loaded.items))
        encoded = llm.tokenize_samples(tokenizer, samples, cfg.max_len)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        prompt = [sum(1 for label in labels if label == -100) for labels in encoded["labels"]]
        per_task: dict[str, list[int]] = {}
        for sample, n in zip(samples, lengths):
            per_task.setdefault(sample.task, []).append(n)
        generator = torch.Generator().manual_seed(args.seed)
        shuffled = torch.randperm(len(lengths), generator=generator).tolist()
        grouped = list(LengthGroupedSampler(args.data_batch, lengths=lengths,
                                            generator=torch.Generator().manual_seed(args.seed)))
        real = sum(lengths)
        out[name] = {
            "samples": len(lengths), "tokens_per_sample": real / len(lengths),
            "prompt_tokens_per_sample": sum(prompt) / len(prompt),
            "tokens_per_sample_by_task": {t: sum(v) / len(v) for t, v in sorted(per_task.items())},
            "useful_share_random": real / padded_tokens(lengths, shuffled, args.data_batch),
            "useful_share_group_by_length": real / padded_tokens(lengths, grouped, args.data_batch),
        }
        logger.info("%s: %s", name, out[name])
    return out


def print_table(result: dict[str, Any]) -> None:
    if "levers" in result:
        levers = result["levers"]
        reference = levers.get("bf16", next(iter(levers.values())))["tokens_per_s"]
        print(f"| lever | tokens/s (median of {result['rounds']}) | per round | vs bf16 | tokens per CPU-s |")
        print("|---|---|---|---|---|")
        for name, row in levers.items():
            each = ", ".join(f"{x:.0f}" for x in row["tokens_per_s_each_round"])
            print(f"| {name} | {row['tokens_per_s']:.0f} | {each} | {row['tokens_per_s'] / reference:.2f}x | "
                  f"{row['tokens_per_cpu_s']:.0f} |")
    for name, row in result.get("data", {}).items():
        print(f"{name}: {row['samples']} samples, {row['tokens_per_sample']:.1f} tokens/sample "
              f"({row['prompt_tokens_per_sample']:.1f} prompt), useful share random "
              f"{row['useful_share_random']:.3f}, group_by_length {row['useful_share_group_by_length']:.3f}; "
              f"by task {json.dumps({k: round(v, 1) for k, v in row['tokens_per_sample_by_task'].items()})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levers", default=",".join(LEVERS), help="comma-separated subset of " + ",".join(LEVERS)
                        + " (empty: skip part 1)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per lever per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (compile gets one more)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--lora_targets", default="all-linear")
    parser.add_argument("--freeze_layers", type=int, default=15, help="of SmolLM2-135M's 30 layers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA), help="upstream's Industrial files (empty: skip part 2)")
    parser.add_argument("--train_samples", type=int, default=4000, help="seeded train rows before the mixture")
    parser.add_argument("--data_batch", type=int, default=32, help="batch of the padding measurement (sft default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.data:
        args.data = Path(args.data)
        result["data"] = measure_data(args)
    if args.levers:
        result.update(measure_levers(args))
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
