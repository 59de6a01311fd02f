"""SFT quality on real data: train the embedded tiny model on CPU, evaluate with 50 constrained beams,
compare with popularity and Markov trained on the same rows.

    python benchmarks/sft_quality.py industrial [--minutes 25] [--json out.json] [-- --sft_key value ...]
    python benchmarks/sft_quality.py ml-100k    [--minutes 15] [--json out.json]

``industrial`` reads ../shared/data/minionerec_amazon (train_reconstructed_partial + valid minus a
held-out set of users, evaluated on the full test CSV); ``ml-100k`` needs the converted files of
configs/ml-100k.yaml (run the data, SID and convert stages first).  Every step is a subprocess
of the real stage scripts (sft.py, evaluate.py, baselines.py) and is skipped when its output
already exists, so an interrupted benchmark continues where it stopped.  Prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "minionerec_amazon"
KS = (3, 5, 10)

# The training recipes measured for the report (tiny Qwen2 2x128, BPE with template tokens, one CPU thread,
# next-SID task only: on these budgets the alignment tasks cost compute without helping a from-scratch model).
COMMON_RECIPE = [
    "--learning_rate", "2e-3", "--per_device_train_batch_size", "64", "--warmup_steps", "100",
    "--early_stopping_patience", "3", "--num_threads", "1", "--logging_steps", "20",
    "--sft.task_weights.next_sid", "1", "--sft.task_weights.sid2title", "0", "--sft.task_weights.title2sid", "0",
    "--sft.task_weights.sid_history2title", "0",
]
RECIPES = {
    "industrial": COMMON_RECIPE + ["--num_train_epochs", "6", "--eval_steps", "150"],
    "ml-100k": COMMON_RECIPE + ["--num_train_epochs", "2", "--eval_steps", "300"],
}
DEFAULT_MINUTES = {"industrial": 25.0, "ml-100k": 15.0}


def dataset_args(name: str) -> tuple[str, list[str], dict[str, str]]:
    """``(config, sft/baselines data overrides, evaluation file overrides)`` of one benchmark dataset."""
    if name == "industrial":
        cat = "Industrial_and_Scientific"
        files = {"test_file": str(next((SHARED / "test").glob(f"{cat}*.csv"))),
                 "info_file": str(next((SHARED / "info").glob(f"{cat}*.txt")))}
        return "configs/industrial_partial.yaml", [
            "--data_dir", str(SHARED), "--train_subdir", "train_reconstructed_partial",
            "--train_on_valid", "true", "--eval_samples", "500"], files
    if name == "ml-100k":
        work = ROOT / "runs" / "ml-100k"
        files = {"test_file": str(work / "llm" / "test" / "ml-100k.csv"), "info_file": str(work / "llm" / "info" / "ml-100k.txt")}
        return "configs/ml-100k.yaml", ["--data_dir", str(work / "llm"), "--train_on_valid", "true",
                                        "--eval_samples", "1000"], files
    raise SystemExit(f"unknown dataset {name!r}: industrial or ml-100k")


def run(cmd: list[str], log: Path, threads: int) -> float:
    """Run a stage script (niced) with its output in ``log``; returns wall seconds.

    ``threads`` caps torch's CPU threads (OMP_NUM_THREADS): on a busy shared CPU one thread
    is several times faster than two competing ones.
    """
    start = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads > 0 else dict(os.environ)
    with open(log, "w") as f:
        proc = subprocess.run(["nice", "-n", "10", sys.executable, *cmd], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}); see {log}")
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["industrial", "ml-100k"])
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="CPU training budget (sft.max_train_minutes); default 25 (industrial) / 15 (ml-100k)")
    parser.add_argument("--workdir", default="", help="default: runs/bench/<dataset>")
    parser.add_argument("--num_beams", type=int, default=50)
    parser.add_argument("--eval_batch_size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every step (0 = torch's default)")
    parser.add_argument("--json", default="", help="also write the figures here")
    args, sft_overrides = parser.parse_known_args()  # anything else (after --) goes to sft.py
    sft_overrides = [a for a in sft_overrides if a != "--"]

    config, data_args, files = dataset_args(args.dataset)
    work = Path(args.workdir or ROOT / "runs" / "bench" / args.dataset)
    work.mkdir(parents=True, exist_ok=True)
    sft_dir, eval_dir, base_dir = work / "sft", work / "eval", work / "baselines"

    if not (sft_dir / "sft.summary.json").is_file():
        minutes = args.minutes or DEFAULT_MINUTES[args.dataset]
        run(["sft.py", config, *data_args, "--output_dir", str(sft_dir), *RECIPES[args.dataset],
             "--max_train_minutes", str(minutes), *sft_overrides], work / "sft.log", args.threads)
    sft_summary = json.loads((sft_dir / "sft.summary.json").read_text())

    if not (eval_dir / "metrics.json").is_file():
        run(["evaluate.py", config, "--model_path", str(sft_dir), "--test_file", files["test_file"],
             "--info_file", files["info_file"], "--num_beams", str(args.num_beams), "--batch_size",
             str(args.eval_batch_size), "--output_dir", str(eval_dir), "--device", "cpu"], work / "evaluate.log", args.threads)
    sft_metrics = json.loads((eval_dir / "metrics.json").read_text())

    if not (base_dir / "summary.json").is_file() or not {"popularity", "markov"} <= set(
            json.loads((base_dir / "summary.json").read_text())):
        run(["baselines.py", config, *data_args, "--model", "popularity,markov", "--output_dir", str(base_dir)],
            work / "baselines.log", args.threads)
    baselines = json.loads((base_dir / "summary.json").read_text())

    rows = {"sft (item level)": sft_metrics["item_level"], "sft (SID level)": sft_metrics["sid_level"]}
    for name in ("markov", "popularity"):
        rows[f"{name} (item level)"] = baselines[name]["test"]["item_level"]
    header = f"{'model':<24}" + "".join(f"{m + '@' + str(k):>10}" for m in ("HR", "NDCG") for k in KS)
    print(f"\n{args.dataset}: {sft_metrics['n_samples']} test users, {args.num_beams} constrained beams")
    print(header)
    for name, metrics in rows.items():
        print(f"{name:<24}" + "".join(f"{metrics[f'{m}@{k}']:>10.4f}" for m in ("HR", "NDCG") for k in KS))
    timing = {
        "train_wall_s": sft_summary["train_wall_s"], "train_tokens_per_s": sft_summary["tokens_per_s"],
        "epochs": sft_summary["epochs"], "global_step": sft_summary["global_step"],
        "best_eval_loss": sft_summary["best_eval_loss"], "decode_seconds": sft_metrics["timing"]["decode_seconds"],
        "decode_users_per_s": sft_metrics["timing"]["users_per_second"], "CC": sft_metrics["CC"],
    }
    print("timing: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in timing.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": args.dataset, "metrics": rows, "timing": timing,
                                               "sft_summary": sft_summary}, indent=2))


if __name__ == "__main__":
    main()
