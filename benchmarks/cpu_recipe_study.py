"""CPU recipe study (issue 17): one SFT lever at a time on a config (ml-100k by default), chosen on validation,
with its cost.

    python benchmarks/cpu_recipe_study.py [--config configs/X.yaml] [--variants base,bf16,...] [--test base,...]
        [--threads 1] [--max_steps N]

The table of benchmarks/README.md:
    python benchmarks/cpu_recipe_study.py --study runs/cpu_recipe/s600 --max_steps 600 \
        --variants base,allowed,bf16,text_init,seq,seq_allowed,seq_text_init --test base,seq
    python benchmarks/cpu_recipe_study.py --study runs/cpu_recipe/e1 --max_steps 1378 --variants seq --test seq

The same levers on the other CPU configs (the config's epochs and early stopping as the budget):
    python benchmarks/cpu_recipe_study.py --config configs/industrial_partial.yaml \
        --study runs/cpu_recipe/industrial_partial --variants base,seq --test base,seq
    python benchmarks/cpu_recipe_study.py --config configs/scientific.yaml \
        --study runs/cpu_recipe/scientific --variants base,seq --test base,seq

Needs the SFT inputs of the config (for ml-100k: ``bash run_all.sh configs/ml-100k.yaml --only data``,
then text2emb, sid, convert; industrial_partial reads upstream's prepared files).  Validation = SFT's
held-out valid users (``sft.eval_samples`` whole users, the same seed as sft.py), written once to
``<study>/valid_heldout.csv`` and decoded with 50 constrained beams like the test split.  Each variant
trains with ``sft.max_train_minutes 0`` (step/epoch budgets only) into ``<study>/<variant>/sft`` and is
evaluated into ``<study>/<variant>/<eval>``; a step whose output exists is skipped, so an interrupted
study resumes.  The stage scripts take the config's workdir lock: do not run a study beside
``run_all.sh`` of the same config (the study's stage fails with the lock's message; rerun it after).
``--test`` names the variants also decoded on the full test split (selection uses validation only).  Prints one table: validation and test HR@10 /
NDCG@10, optimizer steps, epochs, training wall time and steps/s (wall times depend on the load of the
machine; steps and epochs do not).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from minionerec.config import load_config
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import find_llm_data_files, read_split_csv, write_split_csv

ROOT = Path(__file__).resolve().parents[1]

logger = logging.getLogger("cpu_recipe_study")
DEFAULT_CONFIG = "configs/ml-100k.yaml"
NO_WALL_CLOCK = ["--max_train_minutes", "0"]

# name -> (sft overrides on top of the config, evaluate overrides).  One lever per row against "base"
# (the pre-study recipe: one target per row, fp32, random SID rows, full normalisation); every row pins
# sequence_loss so that the table does not move when the config's defaults do.
PLAIN, SEQ = ["--sequence_loss", "false"], ["--sequence_loss", "true"]
WIDE = ["--hidden_size", "256", "--intermediate_size", "1024"]  # 2x256 instead of 2x128 (4 heads of 64)
DEEP = ["--num_layers", "4"]  # 4x128 instead of 2x128
VARIANTS: dict[str, tuple[list[str], list[str]]] = {
    "base": (PLAIN, []),
    "allowed": (PLAIN, ["--normalization", "allowed"]),  # same model as base, other beam scoring
    "bf16": ([*PLAIN, "--bf16", "true"], []),
    "text_init": ([*PLAIN, "--sid_init", "text"], []),
    "seq": (SEQ, []),
    "seq_allowed": (SEQ, ["--normalization", "allowed"]),
    "seq_text_init": ([*SEQ, "--sid_init", "text"], []),
    "seq_bf16": ([*SEQ, "--bf16", "true"], []),
    "seq_wd": ([*SEQ, "--weight_decay", "0.1"], []),
    # the sequence objective with its history labels down-weighted against the row's own target
    "seq_hw02": ([*SEQ, "--history_label_weight", "0.2"], []),
    "seq_hw05": ([*SEQ, "--history_label_weight", "0.5"], []),
    # training longer, regularisation, width and depth (each on top of base or seq)
    "e12": ([*PLAIN, "--num_train_epochs", "12"], []),
    "tov": ([*PLAIN, "--train_on_valid", "true"], []),  # + the valid rows outside the held-out users
    "wd": ([*PLAIN, "--weight_decay", "0.1"], []),
    "ls": ([*PLAIN, "--label_smoothing", "0.1"], []),
    "drop": ([*PLAIN, "--attention_dropout", "0.1"], []),
    "wide": ([*PLAIN, *WIDE], []),
    "deep": ([*PLAIN, *DEEP], []),
    "seq_ls": ([*SEQ, "--label_smoothing", "0.1"], []),
    "seq_drop": ([*SEQ, "--attention_dropout", "0.1"], []),
    "seq_wide": ([*SEQ, *WIDE], []),
    "seq_deep": ([*SEQ, *DEEP], []),
    # how an item enters the model: one position per history item (item_tokens) instead of 3 SID tokens
    "items": ([*PLAIN, "--item_tokens", "true"], []),
    "seq_items": ([*SEQ, "--item_tokens", "true"], []),
    "seq_items_text_init": ([*SEQ, "--item_tokens", "true", "--sid_init", "text"], []),
}
# Variants that only change evaluation reuse another variant's SFT model.
SHARES_MODEL = {"allowed": "base", "seq_allowed": "seq"}


def write_heldout_valid(study: Path, config: str) -> Path:
    """The valid rows of SFT's held-out users (what early stopping sees), as a split CSV."""
    out = study / "valid_heldout.csv"
    if out.is_file():
        return out
    from minionerec.llm import SFTConfig

    cfg = load_config(SFTConfig, config)
    valid = Path(cfg.valid_file) if cfg.valid_file else find_llm_data_files(cfg.data_dir, cfg.dataset,
                                                                            cfg.train_subdir).valid
    if valid is None:
        raise SystemExit(f"no valid CSV under {cfg.data_dir}/valid: run the convert stage of {config} first")
    held, _ = split_valid_by_user(read_split_csv(valid), cfg.eval_samples, holdout_seed_of(cfg))
    write_split_csv(out, held)
    logger.info("wrote %d held-out valid rows to %s", len(held), out)
    return out


def run(cmd: list[str], log: Path, threads: int) -> None:
    """One stage script (niced, ``threads`` torch threads) with its output in ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.run(["nice", "-n", "10", sys.executable, *cmd], cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}); see {log}")


def train(study: Path, config: str, name: str, threads: int, budget: list[str]) -> Path:
    owner = SHARES_MODEL.get(name, name)
    sft_dir = study / owner / "sft"
    if not (sft_dir / "sft.summary.json").is_file():
        run(["sft.py", config, "--output_dir", str(sft_dir), "--num_threads", str(threads), *NO_WALL_CLOCK,
             *budget, *VARIANTS[owner][0]], study / owner / "sft.log", threads)
    return sft_dir


def evaluate(study: Path, config: str, name: str, sft_dir: Path, split: str, rows: Path | None, threads: int) -> dict:
    """Decode ``rows`` (None: the config's evaluate.test_file) with ``sft_dir`` into ``<study>/<name>/<split>``."""
    out = study / name / split
    if not (out / "metrics.json").is_file():
        test_file = ["--test_file", str(rows)] if rows is not None else []
        run(["evaluate.py", config, "--model_path", str(sft_dir), *test_file, "--output_dir",
             str(out), "--device", "cpu", "--num_threads", str(threads), *VARIANTS[name][1]],
            study / name / f"{split}.log", threads)
    return json.loads((out / "metrics.json").read_text())


def headline(metrics: dict) -> dict:
    """The level results.md leads with: SIDs where the metrics have it (shared SIDs), else items."""
    return metrics.get("sid_level") or metrics["item_level"]


def row(name: str, summary: dict, valid: dict, test: dict | None) -> str:
    steps, wall = summary["global_step"], summary["train_wall_s"]
    figures = [headline(valid)["HR@10"], headline(valid)["NDCG@10"]]
    figures += [headline(test)["HR@10"], headline(test)["NDCG@10"]] if test else [None, None]
    return (f"| {name} | " + " | ".join("" if v is None else f"{v:.4f}" for v in figures)
            + f" | {summary['best_eval_loss']:.4f} | {steps} | {summary['epochs']:.2f} | {wall / 60:.1f}"
            + f" | {steps / wall:.2f} |")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the config whose SFT stage is varied")
    parser.add_argument("--study", default=str(ROOT / "runs" / "cpu_recipe"), help="output folder of the study")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--test", default="", help="variants also decoded on the full test split")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every step")
    parser.add_argument("--max_steps", type=int, default=-1,
                        help="optimizer-step budget of every variant (-1: the config's epochs); "
                        "use a study folder per budget")
    parser.add_argument("--table_only", action="store_true", help="print the table of what exists; run nothing")
    args = parser.parse_args()
    study = Path(args.study)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    tested = {n for n in args.test.split(",") if n}
    valid_file = write_heldout_valid(study, args.config)
    lines = ["| variant | valid HR@10 | valid NDCG@10 | test HR@10 | test NDCG@10 | best valid loss | steps | epochs "
             "| train min | steps/s |", "|---" * 10 + "|"]
    for name in names:
        start = time.time()
        sft_dir = study / SHARES_MODEL.get(name, name) / "sft"
        if args.table_only and not (study / name / "valid" / "metrics.json").is_file():
            continue
        if not args.table_only:
            budget = ["--max_steps", str(args.max_steps)] if args.max_steps > 0 else []
            sft_dir = train(study, args.config, name, args.threads, budget)
        valid = evaluate(study, args.config, name, sft_dir, "valid", valid_file, args.threads)
        has_test = (study / name / "test" / "metrics.json").is_file()
        test = (evaluate(study, args.config, name, sft_dir, "test", None, args.threads)
                if name in tested or has_test else None)
        summary = json.loads((sft_dir / "sft.summary.json").read_text())
        lines.append(row(name, summary, valid, test))
        logger.info("%s done in %.1f min: %s", name, (time.time() - start) / 60, lines[-1])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
