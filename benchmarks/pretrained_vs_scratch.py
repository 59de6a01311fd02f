"""Pretrained SmolLM2 vs scratch vs the baselines on Industrial partial-train (issue 16 item 3).

    python benchmarks/pretrained_vs_scratch.py [--workdir runs/pretrained_vs_scratch] [--rows a,b,...]
        [--test_users 0] [--sft_train_samples N] [--sft_epochs E] [--sft_max_len L] [--rl_max_steps S] [--smoke]

Rows (``configs/industrial_partial.yaml``: upstream's prepared CSVs, RQ-VAE SIDs, 50 constrained beams):

- ``tiny_scratch``: the config as it is (random-initialised 2x128 Qwen2, next-SID only, fp32);
- ``smollm2_next_sid``: ``--base_model smollm2``, next-SID only;
- ``smollm2_mixture``: SmolLM2 with the alignment mixture of configs/industrial.yaml (upstream sft.py's five
  datasets once each: next_sid, sid2title, title2sid, sid_history2title, title_history2title, title_history2sid);
- ``smollm2_mixture_scratch``: the same with ``train_from_scratch: true`` (SmolLM2's shape, random weights);
- ``smollm2_mixture_rl``: GRPO (ranking reward, 16 beams, beta 1e-3, lr 1e-5, ``select_best``) from the SmolLM2
  SFT row with the best NDCG@10 on SFT's held-out valid users (``sft.eval_samples`` whole users, the seed of
  the config, decoded with 50 beams like the test); never selected on the test split;
- ``popularity``, ``markov``, ``sasrec``, ``gru4rec``: baselines.py on the same split (selection on valid).

Each row is a work folder ``<workdir>/<row>`` (``common.workdir`` of its stages); the baselines share
``<workdir>/baselines``.  Every stage is the user-facing script (``python3 sft.py CONFIG --key value``,
``rl.py``, ``evaluate.py``, ``baselines.py``); a stage is skipped when its done-record
(``<output>/<section>.done.json``) exists and ``<output>/.bench.command.json`` holds the same command, so a
killed run picks up where it stopped (SFT and RL resume from their newest checkpoint, evaluation from its
finished batches) and a changed flag reruns what it changes.  ``--test_users N`` decodes a fixed seeded subset
of N test users (every row, baselines included, sees the same users; 0 = the full 4,533-user test).

Budget (issue 16: each SmolLM2 SFT within ~90 minutes on 2 cores).  sft.py's log gives the data: every train
row (``--sft_train_samples -1``: the 8,350 partial-train rows plus the 4,031 valid rows outside the held-out users,
``train_on_valid``, as the tiny row) at ``max_len`` 256: next-SID only is 12,381 samples, 1.28M tokens per epoch;
the mixture 56,896 samples, 8.54M tokens per epoch (the title-history prompts are the long ones).  Measured on
2026-12-02 on 2 idle cores: SmolLM2-135M SFT (bf16 autocast, micro-batch 16, ``group_by_length``) ran at 437
tokens/s, so one next-SID epoch took 49 min (``--sft_epochs_next_sid 1.0``) and 90 min is ~2.3M tokens, hence
``--sft_epochs_mixture 0.25`` (~2.1M tokens); lr 3e-4 (upstream's), the full model trained (``freeze_llm`` would
teach only the new SID rows; the paper fine-tunes everything), bf16 autocast (``--bf16 auto``; the config's fp32 is
2.2-2.6x slower).  On a loaded machine lower the epoch flags; every row's ``tokens_per_s`` / ``train_tokens`` /
``train_wall_s`` say what it got.  Decoding the trained SmolLM2 with 50 constrained beams ran at 3.4 users/s
(bf16, batch 16), so the full 4,533-user test is ~23 min.  RL: 100 steps of 4 prompts x 16 beams (the config's CPU
shape), validation every 25.  The tiny row keeps the config's recipe (6 epochs, early stopping, fp32).
``--smoke`` runs the same code path at toy size.

Rows accumulate: a run keeps the rows of the existing json that it did not redo when both decoded the same
test users (each row has its ``measured`` date), so the benchmark can be run a row or two per session
(``--rows smollm2_next_sid --test_users 1000``); the RL row needs its SFT row's checkpoint and test
predictions in the same ``--workdir``.

Writes ``benchmarks/results/pretrained_vs_scratch.json`` (``--smoke``: ``<workdir>/pretrained_vs_scratch.json``)
``{"rows": {NAME: {"HR@K", "NDCG@K", cost fields}}, "rl_minus_sft": {"NDCG@10": {"mean", "low", "high"},
"HR@10": {...}}}`` (item level; the SID-level interval of ``evaluate.py compare`` is kept beside it) and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/industrial_partial.yaml"
DATASET = "Industrial_and_Scientific"
FILE_STEM = f"{DATASET}_5_2016-10-2018-11"
logger = logging.getLogger("pretrained_vs_scratch")

SFT_ROWS = ("tiny_scratch", "smollm2_next_sid", "smollm2_mixture", "smollm2_mixture_scratch")
RL_ROW = "smollm2_mixture_rl"
BASELINES = ("popularity", "markov", "sasrec", "gru4rec")
ALL_ROWS = (*SFT_ROWS, RL_ROW, *BASELINES)
KS = (1, 5, 10)
#: configs/industrial.yaml's task_weights (upstream sft.py's datasets, once each)
MIXTURE = {"next_sid": 1, "sid2title": 1, "title2sid": 1, "sid_history2title": 1, "title_history2title": 1,
           "title_history2sid": 1, "description2sid": 0}
#: RL tasks after the mixture (the config's note: next_sid + the title tasks that end in a SID)
RL_MIXTURE_TASKS = "next_sid,title2sid,title_history2sid"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default="runs/pretrained_vs_scratch")
    p.add_argument("--rows", default=",".join(ALL_ROWS), help=f"comma list of {', '.join(ALL_ROWS)}")
    p.add_argument("--data_dir", default="../shared/data/minionerec_amazon", help="upstream's prepared files")
    p.add_argument("--test_users", type=int, default=0, help="a seeded subset of N test users; 0 = the full test")
    p.add_argument("--seed", type=int, default=42, help="the config's seed (held-out users, test subset)")
    p.add_argument("--sft_train_samples", type=int, default=-1,
                   help="SmolLM2 rows: train CSV rows kept (-1 = all, as the tiny row)")
    p.add_argument("--sft_epochs_next_sid", type=float, default=1.0,
                   help="smollm2_next_sid: epochs (12,381 samples, 1.28M tokens per epoch; ~49 min on 2 idle cores)")
    p.add_argument("--sft_epochs_mixture", type=float, default=0.25,
                   help="mixture rows: epochs (56,896 samples, 8.54M tokens per epoch at max_len 256)")
    p.add_argument("--sft_max_len", type=int, default=256, help="SmolLM2 rows: max tokens per sample")
    p.add_argument("--sft_batch", type=int, default=16, help="SmolLM2 rows: micro-batch")
    p.add_argument("--sft_lr", type=float, default=3e-4, help="SmolLM2 rows: peak lr (upstream's 3e-4)")
    p.add_argument("--freeze_llm", default="false", help="SmolLM2 rows: train only the SID rows")
    p.add_argument("--bf16", default="auto", help="SmolLM2 rows and RL: sft/rl bf16 (evaluate dtype auto)")
    p.add_argument("--rl_max_steps", type=int, default=100, help="GRPO steps of 4 prompts x 16 beams")
    p.add_argument("--rl_eval_steps", type=int, default=25, help="RL validation (select_best) every N steps")
    p.add_argument("--threads", type=int, default=0, help="torch threads per stage (0 = torch's default)")
    p.add_argument("--results", default="", help="output json (default benchmarks/results/pretrained_vs_scratch.json)")
    p.add_argument("--smoke", action="store_true", help="toy sizes: the same code path in a few minutes")
    args = p.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(args.rows) - set(ALL_ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; rows: {', '.join(ALL_ROWS)}")
    # SFT's eval_samples = RL's eval_samples = baselines' eval_samples: one set of held-out valid users
    args.heldout = 20 if args.smoke else 500
    if args.smoke:
        args.test_users = args.test_users or 20
        if args.workdir == p.get_default("workdir"):
            args.workdir = "runs/pretrained_vs_scratch_smoke"
    return args


# ---------------------------------------------------------------- stages


def run_stage(script: str, keys: dict[str, Any], out_dir: Path, section: str, log: Path) -> bool:
    """``python3 SCRIPT CONFIG --k v ...`` unless it is finished: its done-record exists and still matches the
    files it read and wrote (a retrained model makes its evaluation stale), and ``.bench.command.json`` holds the
    same command.  True when it ran."""
    from minionerec.records import read_record, record_change

    cmd = [sys.executable, script, CONFIG, *[a for k, v in keys.items() for a in (f"--{k}", str(v))]]
    record = out_dir / ".bench.command.json"
    done = read_record(out_dir / f"{section}.done.json")
    same = record.is_file() and json.loads(record.read_text(encoding="utf-8")) == cmd[1:]
    why = "never ran" if done is None else None if same and record_change(done) is None else (
        record_change(done) or "another command")
    if why is None:
        logger.info("%s: done, skipped", out_dir)
        return False
    done = out_dir / f"{section}.done.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(cmd[1:]), encoding="utf-8")
    log.parent.mkdir(parents=True, exist_ok=True)
    logger.info("%s: runs (%s; log %s): %s", out_dir, why, log, shlex.join(cmd))
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as handle:
        code = subprocess.run(["nice", *cmd], check=False, cwd=ROOT, stdout=handle,
                              stderr=subprocess.STDOUT).returncode
    if code != 0 or not done.is_file():
        raise SystemExit(f"{script} failed (exit {code}, no {done.name}): see {log}; rerun this command to resume")
    logger.info("%s: done in %.0f s", out_dir, time.perf_counter() - t0)
    return True


def data_paths(args: argparse.Namespace) -> dict[str, str]:
    d = args.data_dir
    return {"data_dir": d, "index_path": f"{d}/index/{DATASET}.index.json",
            "item_json_path": f"{d}/index/{DATASET}.item.json", "test_file": f"{d}/test/{FILE_STEM}.csv",
            "valid_file": f"{d}/valid/{FILE_STEM}.csv", "info_file": f"{d}/info/{FILE_STEM}.txt"}


def test_file(args: argparse.Namespace, wd: Path) -> str:
    """The test CSV every row decodes: the full one, or a seeded subset of ``--test_users`` users."""
    full = data_paths(args)["test_file"]
    if args.test_users <= 0:
        return full
    out = wd / "data" / f"test_{args.test_users}_seed{args.seed}" / "test" / f"{FILE_STEM}.csv"
    if not out.is_file():
        with open(full, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        header, body = rows[0], rows[1:]
        keep = sorted(random.Random(args.seed).sample(range(len(body)), min(args.test_users, len(body))))
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *[body[i] for i in keep]])
    return str(out)


def baselines_data_dir(args: argparse.Namespace, wd: Path) -> str:
    """A data folder whose test/ is the subset (train, valid and info linked), so baselines score the same users."""
    if args.test_users <= 0:
        return args.data_dir
    test = Path(test_file(args, wd))
    folder = test.parent.parent
    for sub in ("train_reconstructed_partial", "valid", "info"):
        link = folder / sub
        if not link.exists():
            link.symlink_to(Path(args.data_dir).resolve() / sub)
    return str(folder)


def heldout_valid_file(args: argparse.Namespace, wd: Path) -> str:
    """SFT's held-out valid users (``sft.eval_samples`` = 500, the config's seed) as a split CSV."""
    out = wd / "data" / f"valid_heldout_{args.heldout}_seed{args.seed}.csv"
    if not out.is_file():
        from minionerec.holdout import split_valid_by_user
        from minionerec.io import read_split_csv, write_split_csv

        held, _ = split_valid_by_user(read_split_csv(data_paths(args)["valid_file"]), args.heldout, args.seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_split_csv(out, held)
    return str(out)


def sft_keys(row: str, args: argparse.Namespace, wd: Path) -> dict[str, Any]:
    paths = data_paths(args)
    keys: dict[str, Any] = {"common.workdir": wd / row, "output_dir": wd / row / "sft", "data_dir": paths["data_dir"],
                            "index_path": paths["index_path"], "item_json_path": paths["item_json_path"],
                            "eval_samples": args.heldout}
    if args.threads:
        keys["num_threads"] = args.threads
    if row == "tiny_scratch":
        if args.smoke:
            keys.update({"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "max_steps": 2,
                         "eval_steps": 1, "warmup_steps": 1, "train_samples": 64})
        return keys
    keys.update({"base_model": "smollm2", "bf16": args.bf16, "learning_rate": args.sft_lr, "warmup_steps": 20,
                 "per_device_train_batch_size": args.sft_batch,
                 "num_train_epochs": args.sft_epochs_next_sid if row == "smollm2_next_sid" else args.sft_epochs_mixture,
                 "train_samples": args.sft_train_samples, "max_len": args.sft_max_len, "freeze_llm": args.freeze_llm,
                 "eval_steps": 0.25})
    if row != "smollm2_next_sid":
        keys.update({f"sft.task_weights.{task}": weight for task, weight in MIXTURE.items()})
    if row == "smollm2_mixture_scratch":
        keys["train_from_scratch"] = "true"
    if args.smoke:
        keys.update({"max_steps": 2, "eval_steps": 1, "warmup_steps": 1, "train_samples": 16, "max_len": 128,
                     "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4})
    return keys


def eval_keys(row_dir: Path, model: Path, name: str, test: str, args: argparse.Namespace,
              smollm2: bool) -> dict[str, Any]:
    keys: dict[str, Any] = {"common.workdir": row_dir, "name": name, "model_path": model, "test_file": test,
                            "info_file": data_paths(args)["info_file"], "output_dir": row_dir / "eval" / name}
    if smollm2:
        keys["dtype"] = "auto" if args.bf16 != "false" else "float32"
    if args.threads:
        keys["num_threads"] = args.threads
    return keys


def rl_keys(sft_row: str, args: argparse.Namespace, wd: Path) -> dict[str, Any]:
    paths = data_paths(args)
    keys: dict[str, Any] = {
        "common.workdir": wd / RL_ROW, "model_path": wd / sft_row / "sft", "output_dir": wd / RL_ROW / "rl",
        "data_dir": paths["data_dir"], "index_path": paths["index_path"], "item_json_path": paths["item_json_path"],
        "tasks": "next_sid" if sft_row == "smollm2_next_sid" else RL_MIXTURE_TASKS, "rl.rewards.ranking": 1.0,
        "num_generations": 16, "beta": 1e-3, "learning_rate": 1e-5, "select_best": "true", "bf16": args.bf16,
        "max_steps": args.rl_max_steps, "eval_steps": args.rl_eval_steps, "eval_samples": args.heldout}
    if args.smoke:
        keys.update({"max_steps": 1, "eval_steps": 1, "recent_rows": 8, "per_device_train_batch_size": 16,
                     "validation_beams": 10})
    return keys


def baseline_keys(args: argparse.Namespace, wd: Path) -> dict[str, Any]:
    keys: dict[str, Any] = {"common.workdir": wd, "output_dir": wd / "baselines",
                            "data_dir": baselines_data_dir(args, wd), "model": ",".join(BASELINES),
                            "eval_samples": args.heldout}
    if args.smoke:
        keys.update({"max_epochs": 1, "markov_windows": "1", "markov_decays": "1.0"})
    return keys


# ---------------------------------------------------------------- results


def portable(path: str | Path, args: argparse.Namespace, wd: Path) -> str:
    """``path`` with the workdir and data folder written as ``<workdir>`` / ``<data_dir>``: the json names no machine."""
    text = str(path)
    for root, name in ((str(wd), "<workdir>"), (args.data_dir, "<data_dir>")):
        if text.startswith(root):
            return name + text[len(root):]
    return text


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def metrics_of(metrics: dict[str, Any]) -> dict[str, float]:
    """Item-level HR@K / NDCG@K of a metrics.json (evaluate.py's or baselines.py's shape)."""
    item = metrics.get("item_level", {})
    return {f"{m}@{k}": item[f"{m}@{k}"] for k in KS for m in ("HR", "NDCG") if f"{m}@{k}" in item}


def sft_cost(row_dir: Path) -> dict[str, Any]:
    s = read_json(row_dir / "sft" / "sft.summary.json")
    if not s:
        return {}
    return {"train_tokens": round(s["train_tokens_per_epoch"] * float(s.get("epochs") or 0)),
            "train_samples": s.get("train_samples"), "epochs": s.get("epochs"), "steps": s.get("global_step"),
            "train_wall_s": round(s["train_wall_s"], 1), "tokens_per_s": round(s["tokens_per_s"], 1)}


def eval_cost(metrics: dict[str, Any]) -> dict[str, Any]:
    timing = metrics.get("timing", {})
    return {"test_users": metrics.get("n_samples"), "decode_s": round(timing.get("decode_seconds") or 0, 1)}


def sid_to_items(info_file: str) -> dict[str, list[int]]:
    """``{sid: [item ids]}`` from an info file (``sid<TAB>title<TAB>item_id`` per line)."""
    from minionerec.metrics import normalise_prediction

    out: dict[str, list[int]] = {}
    for line in Path(info_file).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            out.setdefault(normalise_prediction(parts[0]), []).append(int(parts[-1]))
    return out


def item_level_delta(a: Path, b: Path, info_file: str, k: int = 10) -> dict[str, dict[str, float]]:
    """B minus A in item-level HR@k / NDCG@k, paired bootstrap (2,000 resamples, as evaluate.py compare)."""
    from minionerec.metrics import item_rank, normalise_prediction, paired_bootstrap, per_sample_ndcg

    catalogue = sid_to_items(info_file)
    ranks = {}
    for name, path in (("a", a), ("b", b)):
        records = json.loads(path.read_text(encoding="utf-8"))
        ranks[name] = [item_rank([normalise_prediction(p) for p in r["predict"]], int(r["item_id"]), catalogue)
                       for r in records]
    out = {}
    for metric, score in (("HR", lambda rs: [1.0 if r is not None and r < k else 0.0 for r in rs]),
                          ("NDCG", lambda rs: per_sample_ndcg(rs, k))):
        d = paired_bootstrap(score(ranks["a"]), score(ranks["b"]), 2000, seed=0)
        out[f"{metric}@{k}"] = {"mean": d.delta, "low": d.ci_low, "high": d.ci_high, "n_samples": d.n_samples}
    return out


def sid_level_delta(a: Path, b: Path, log: Path) -> dict[str, Any]:
    """``python3 evaluate.py compare`` (SID level) of the two predictions files."""
    cmd = [sys.executable, "evaluate.py", "compare", "--a", str(a), "--b", str(b), "--ks", "10"]
    proc = subprocess.run(["nice", *cmd], check=False, cwd=ROOT, capture_output=True, text=True)
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed: see {log}")
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def table(rows: dict[str, dict[str, Any]]) -> str:
    cols = [*(f"{m}@{k}" for k in KS for m in ("HR", "NDCG")), "train_tokens", "train_wall_s", "tokens_per_s"]
    lines = ["| row | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = [f"{r[c]:.4f}" if isinstance(r.get(c), float) and c[0] in "HN" else str(r.get(c, "")) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def run_sft_row(row: str, args: argparse.Namespace, wd: Path, test: str) -> dict[str, Any]:
    row_dir = wd / row
    run_stage("sft.py", sft_keys(row, args, wd), row_dir / "sft", "sft", row_dir / "logs" / "sft.log")
    smollm2 = row != "tiny_scratch"
    out: dict[str, Any] = {}
    if smollm2:  # selection for the RL row: the held-out valid users, 50 beams
        keys = eval_keys(row_dir, row_dir / "sft", "valid", heldout_valid_file(args, wd), args, smollm2)
        run_stage("evaluate.py", keys, row_dir / "eval" / "valid", "evaluate", row_dir / "logs" / "eval_valid.log")
        out["valid"] = metrics_of(read_json(row_dir / "eval" / "valid" / "metrics.json"))
    keys = eval_keys(row_dir, row_dir / "sft", "test", test, args, smollm2)
    run_stage("evaluate.py", keys, row_dir / "eval" / "test", "evaluate", row_dir / "logs" / "eval_test.log")
    metrics = read_json(row_dir / "eval" / "test" / "metrics.json")
    return {**metrics_of(metrics), **sft_cost(row_dir), **eval_cost(metrics), **out}


def best_smollm2_sft(wd: Path) -> str:
    """The SmolLM2 SFT row with the best held-out validation NDCG@10 (among those that finished)."""
    scores = {row: read_json(wd / row / "eval" / "valid" / "metrics.json").get("item_level", {}).get("NDCG@10")
              for row in SFT_ROWS[1:]}
    scores = {r: s for r, s in scores.items() if s is not None}
    if not scores:
        raise SystemExit(f"{RL_ROW} needs a finished SmolLM2 SFT row (run --rows with one of {SFT_ROWS[1:]})")
    logger.info("validation NDCG@10 of the SmolLM2 SFT rows: %s", scores)
    return max(scores, key=lambda r: scores[r])


def run_rl_row(args: argparse.Namespace, wd: Path, test: str) -> tuple[dict[str, Any], dict[str, Any]]:
    row_dir, sft_row = wd / RL_ROW, best_smollm2_sft(wd)
    run_stage("rl.py", rl_keys(sft_row, args, wd), row_dir / "rl", "rl", row_dir / "logs" / "rl.log")
    summary = read_json(row_dir / "rl" / "rl_summary.json")
    sft_pred = wd / sft_row / "eval" / "test" / "predictions.json"
    if not sft_pred.is_file():
        raise SystemExit(f"{RL_ROW} compares with {sft_row}'s test predictions: run --rows {sft_row} first")
    if summary.get("kept_initial_policy"):  # select_best kept the SFT policy: the same model, the same predictions
        eval_dir = wd / sft_row / "eval" / "test"
    else:
        eval_dir = row_dir / "eval" / "test"
        run_stage("evaluate.py", eval_keys(row_dir, row_dir / "rl", "test", test, args, True), eval_dir, "evaluate",
                  row_dir / "logs" / "eval_test.log")
    metrics = read_json(eval_dir / "metrics.json")
    row = {**metrics_of(metrics), **sft_cost(wd / sft_row), **eval_cost(metrics), "from_sft_row": sft_row,
           "rl_steps": summary.get("steps"), "rl_train_s": round(summary.get("train_seconds") or 0, 1),
           "rl_kept_sft_policy": bool(summary.get("kept_initial_policy")),
           "rl_validation_curve": summary.get("validation_curve")}
    delta = item_level_delta(sft_pred, eval_dir / "predictions.json", data_paths(args)["info_file"])
    delta["sid_level_evaluate_compare"] = sid_level_delta(sft_pred, eval_dir / "predictions.json",
                                                          row_dir / "logs" / "compare.log")
    compare = delta["sid_level_evaluate_compare"]
    compare["a"], compare["b"] = (portable(compare[k], args, wd) for k in ("a", "b"))
    delta["a"], delta["b"] = f"{sft_row} (SFT)", RL_ROW
    return row, delta


def run_baselines(args: argparse.Namespace, wd: Path) -> dict[str, dict[str, Any]]:
    out = wd / "baselines"
    run_stage("baselines.py", baseline_keys(args, wd), out, "baselines", wd / "logs" / "baselines.log")
    summary = read_json(out / "summary.json")
    rows = {}
    for name in BASELINES:
        metrics = read_json(out / f"{name}.metrics.json")
        rows[name] = {**metrics_of(metrics), "test_users": metrics.get("n_samples"),
                      "train_wall_s": (summary.get(name) or {}).get("wall_seconds")}
    return rows


def merge_earlier_rows(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Keep the rows of an earlier run in ``path`` that this run did not redo, when both decoded the same test
    users, so that a benchmark longer than one session can be run a row at a time (each row says when it was
    measured).  A different test-user setting replaces the file."""
    if not path.is_file():
        return result
    earlier = read_json(path)
    earlier_setup = earlier.get("setup") or {}
    if earlier_setup.get("test_users") != result["setup"]["test_users"]:
        logger.info("%s decoded other test users (%s): replaced", path, earlier_setup.get("test_users"))
        return result
    kept = {name: row for name, row in (earlier.get("rows") or {}).items() if name not in result["rows"]}
    if kept:
        logger.info("kept the earlier rows %s from %s", ", ".join(kept), path)
    merged = {**result, "rows": {**kept, **result["rows"]}}
    if "rl_minus_sft" not in result and "rl_minus_sft" in earlier and RL_ROW in kept:
        merged["rl_minus_sft"] = earlier["rl_minus_sft"]
    merged["setup"] = {**result["setup"],
                       "earlier_commands": [*earlier_setup.get("earlier_commands", []), earlier_setup.get("command")]}
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    wd = Path(args.workdir).resolve()
    args.data_dir = str(Path(args.data_dir).resolve())
    os.chdir(ROOT)  # the config's relative data paths (../shared/...) are relative to the repository root
    test = test_file(args, wd)
    rows: dict[str, dict[str, Any]] = {}
    for row in SFT_ROWS:
        if row in args.rows:
            rows[row] = run_sft_row(row, args, wd, test)
    result: dict[str, Any] = {"rows": rows}
    if RL_ROW in args.rows:
        rows[RL_ROW], result["rl_minus_sft"] = run_rl_row(args, wd, test)
    if any(b in args.rows for b in BASELINES):
        rows.update({n: r for n, r in run_baselines(args, wd).items() if n in args.rows})
    measured = time.strftime("%Y-%m-%d", time.gmtime())
    for row in rows.values():
        row.setdefault("measured", measured)
    result["setup"] = {"config": CONFIG, "test_file": portable(test, args, wd), "test_users": args.test_users or "all",
                       "command": shlex.join(["python3", *(portable(a, args, wd) for a in sys.argv)]), "smoke": args.smoke,
                       "metrics": "item level, 50 constrained beams"}
    path = Path(args.results) if args.results else (
        wd / "pretrained_vs_scratch.json" if args.smoke else ROOT / "benchmarks" / "results" / "pretrained_vs_scratch.json")
    result = merge_earlier_rows(path, result)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result["rows"]))
    if "rl_minus_sft" in result:
        d = result["rl_minus_sft"]
        print("\nRL minus SFT (item level, paired bootstrap 95%): "
              + "; ".join(f"{m} {d[m]['mean']:+.4f} [{d[m]['low']:+.4f}, {d[m]['high']:+.4f}]" for m in ("NDCG@10", "HR@10")))
    logger.info("wrote %s", path)
    return result


if __name__ == "__main__":
    main()
