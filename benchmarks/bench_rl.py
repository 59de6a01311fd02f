"""RL rollout speed and GRPO step-time breakdown on the tiny CPU model.

    python benchmarks/bench_rl.py [--items N] [--prompts 4] [--G 16] [--steps 5] [--json PATH]

1. Rollout per step (``--prompts`` prompts x G beams): the dedicated constrained beam search of
   ``minionerec.decoding`` (prefill once, trie-indexed candidates) vs HF ``generate`` with the trie
   logits processor (``generate_with_trie``), same model, same prompts; both return the top-G
   distinct valid items.
2. GRPO step-time split (rollout / scoring / update) over ``--steps`` trainer steps.

The catalogue is Industrial_and_Scientific's info file from ../shared/data when present (3,686
items, the paper's SIDs), else a synthetic 3-level catalogue of ``--items`` items.  Weights are
random (the speed of a step does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from minionerec.catalogue import read_info
from minionerec.decoding import SIDTrie, generate_with_trie, left_pad
from minionerec.io import find_llm_data_files, read_split_csv
from minionerec.llm import (
    TaskSample,
    TinyModelSpec,
    build_tiny_qwen2,
    extend_with_sid_tokens,
    format_response,
    next_item_prompt,
    qwen_tokenizer,
    train_bpe_tokenizer,
)
from minionerec.rl import MiniOneRecGRPOConfig, MiniOneRecGRPOTrainer, TrieRollout, build_reward_set
from minionerec.sid import codes_to_sid, parse_sid, sid_to_string, sid_vocabulary

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "minionerec_amazon"


def load_catalogue(n_items: int, n_rows: int) -> tuple[str, list[str], list[TaskSample]]:
    files = find_llm_data_files(SHARED, "Industrial_and_Scientific") if SHARED.is_dir() else None
    if files and files.info and files.test:
        items = read_info(files.info)
        sids = [i.sid_string for i in items]
        rows = read_split_csv(files.test)[:n_rows]
        samples = [TaskSample("next_sid", next_item_prompt(list(r.history_item_sid)), format_response(r.item_sid),
                              r.item_sid, r.item_id, r.history_item_id) for r in rows]
        return "Industrial_and_Scientific (shared data)", sids, samples
    sids = [sid_to_string(codes_to_sid((i % 256, (i // 256) % 256, (i * 7) % 256))) for i in range(n_items)]
    sids = list(dict.fromkeys(sids))
    samples = []
    for r in range(n_rows):
        hist = [sids[(r * 13 + k) % len(sids)] for k in range(10)]
        target = (r * 13 + 10) % len(sids)
        samples.append(TaskSample("next_sid", next_item_prompt(hist), format_response(sids[target]), sids[target], target,
                                  tuple((r * 13 + k) % len(sids) for k in range(10))))
    return f"synthetic ({len(sids)} items)", sids, samples


def build(sids: list[str], samples: list[TaskSample], device: str, tokenizer_kind: str):
    if tokenizer_kind == "qwen":
        tokenizer = qwen_tokenizer()
    else:
        tokenizer = train_bpe_tokenizer([s.prompt for s in samples[:512]], vocab_size=4000)
    model = build_tiny_qwen2(len(tokenizer), TinyModelSpec(), tokenizer.eos_token_id, seed=0)
    extend_with_sid_tokens(model, tokenizer, sid_vocabulary(parse_sid(s) for s in sids))
    return model.to(device).eval(), tokenizer, SIDTrie.from_sids(sids, tokenizer, device)


def time_rollouts(model, tokenizer, trie, samples, n_prompts, G, steps, device, normalization) -> dict[str, float]:
    rollout = TrieRollout(trie, tokenizer.pad_token_id, normalization)
    dedicated, generate = [], []
    for step in range(steps + 1):  # step 0 warms up
        batch = samples[step * n_prompts:(step + 1) * n_prompts]
        ids, mask = left_pad(tokenizer([s.prompt for s in batch], add_special_tokens=False)["input_ids"],
                             tokenizer.pad_token_id, device)
        start = time.perf_counter()
        c_ids, c_mask = rollout(model, ids, mask, G, "beam_search", 1.0)
        mid = time.perf_counter()
        out = generate_with_trie(model, trie, ids, mask, num_beams=G, pad_token_id=tokenizer.pad_token_id,
                                 normalization=normalization)
        end = time.perf_counter()
        if step:
            dedicated.append(mid - start)
            generate.append(end - mid)
        same = [set(tokenizer.batch_decode(c_ids[i * G:(i + 1) * G], skip_special_tokens=True)) ==
                set(tokenizer.batch_decode(out[i * G:(i + 1) * G], skip_special_tokens=True)) for i in range(len(batch))]
    d, g = statistics.median(dedicated), statistics.median(generate)
    return {"dedicated_s_per_step": d, "generate_s_per_step": g, "speedup": g / d, "same_items_last_step": all(same)}


def time_training(model, tokenizer, trie, samples, n_prompts, G, steps, device, normalization) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        args = MiniOneRecGRPOConfig(
            output_dir=out, per_device_train_batch_size=n_prompts * G, num_generations=G, max_steps=steps + 1,
            learning_rate=1e-5, beta=1e-3, logging_steps=1, save_strategy="no", report_to="none",
            use_cpu=device == "cpu", seed=0, disable_tqdm=True,
        )
        trainer = MiniOneRecGRPOTrainer(
            model=model, args=args, train_dataset=samples, processing_class=tokenizer,
            reward_fn=build_reward_set({"ranking": 1.0}), rollout_fn=TrieRollout(trie, tokenizer.pad_token_id, normalization),
            valid_sids=set(trie.sids),
        )
        trainer.train()
    logs = [h for h in trainer.state.log_history if "time/rollout" in h][1:]  # drop the warm-up step
    out = {k: statistics.median(h[k] for h in logs) for k in ("time/rollout", "time/scoring", "time/update")}
    out["step_total"] = sum(out.values())
    out["valid_rate"] = statistics.mean(h["valid_rate"] for h in logs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3686)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (upstream: 4 per device)")
    parser.add_argument("--G", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tokenizer", choices=("bpe", "qwen"), default="bpe",
                        help="bpe: 4000-token BPE (the tiny default); qwen: the real 151k Qwen vocabulary")
    parser.add_argument("--normalization", choices=("full", "trie"), default="full")
    parser.add_argument("--skip_training", action="store_true", help="only the rollout comparison")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name, sids, samples = load_catalogue(args.items, args.prompts * (args.steps + 1) * 4)
    model, tokenizer, trie = build(sids, samples, args.device, args.tokenizer)
    common = (model, tokenizer, trie, samples, args.prompts, args.G, args.steps, args.device, args.normalization)
    rollout = time_rollouts(*common)
    training = None if args.skip_training else time_training(*common)
    result = {"catalogue": name, "device": args.device, "prompts_per_step": args.prompts, "G": args.G,
              "steps": args.steps, "tokenizer": args.tokenizer, "vocabulary": len(tokenizer),
              "normalization": args.normalization, "model": "tiny-qwen2 (hidden 128, 2 layers)",
              "rollout": rollout, "grpo_step": training}
    print(f"catalogue: {name}; device {args.device}; {args.prompts} prompts x G={args.G} per step; "
          f"vocabulary {len(tokenizer)} ({args.tokenizer}); normalization {args.normalization}")
    print(f"rollout per step: dedicated beam search {rollout['dedicated_s_per_step']:.3f} s, "
          f"generate {rollout['generate_s_per_step']:.3f} s -> {rollout['speedup']:.1f}x "
          f"(same items: {rollout['same_items_last_step']})")
    if training:
        print("GRPO step: rollout {time/rollout:.3f} s, scoring {time/scoring:.3f} s, update {time/update:.3f} s, "
              "total {step_total:.3f} s, valid rate {valid_rate:.3f}".format(**training))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
