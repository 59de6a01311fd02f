"""Does GRPO improve on its SFT checkpoint, and how much of that is the RL objective?

Runs, from the config's SFT checkpoint and with the config's RL recipe:

- ``rl.py`` once per seed (``--seed S --holdout_seed <common.seed>``, so every run holds out SFT's users);
- a control: continued SFT on exactly the rows RL trains on (``rl.train_on_valid`` / ``rl.recent_rows``),
  one epoch at the RL learning rate;

evaluates each on the test split and prints HR@10 / NDCG@10 with paired-bootstrap 95% intervals
against SFT and against the control.

    python benchmarks/rl_recency_study.py configs/industrial_partial.yaml [--seeds 42,43,44]
        [--out runs/rl_study/<config>] [--max_steps N] [--max_samples N]

``--max_steps`` / ``--max_samples`` shorten a trial run; the figures in the README used neither
(about 25 minutes for Industrial on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from minionerec.config import load_config
from minionerec.io import find_llm_data_files, read_json, read_split_csv, write_split_csv
from minionerec.metrics import compare_predictions
from minionerec.rl import RLConfig, rows_to_train_on

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def evaluate(config: str, model: Path, out: Path, max_samples: int) -> Path:
    if not (out / "predictions.json").is_file():
        extra = ["--max_samples", str(max_samples)] if max_samples else []
        run(["evaluate.py", config, "--model_path", str(model), "--output_dir", str(out), *extra])
    return out / "predictions.json"


def write_control_data(cfg: RLConfig, out: Path) -> Path:
    """``out/{train,valid,info}`` whose train CSV holds exactly the rows RL trains on."""
    files = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir)
    valid = read_split_csv(files.valid) if files.valid is not None else None
    rows = rows_to_train_on(cfg, read_split_csv(files.train), valid)
    write_split_csv(out / "train" / f"{cfg.dataset}.csv", rows)
    for sub, path in (("valid", files.valid), ("info", files.info)):
        if path is not None:
            (out / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / sub / path.name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--out", default="")
    parser.add_argument("--max_steps", type=int, default=0, help="RL steps per run (0 = the config's)")
    parser.add_argument("--max_samples", type=int, default=0, help="test rows evaluated (0 = all)")
    args = parser.parse_args()
    cfg = load_config(RLConfig, args.config, {})
    out = Path(args.out or f"runs/rl_study/{Path(args.config).stem}")
    steps = ["--max_steps", str(args.max_steps)] if args.max_steps else []

    predictions = {"SFT": evaluate(args.config, Path(cfg.model_path), out / "eval_sft", args.max_samples)}
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        model = out / f"rl_seed{seed}"
        if not (model / "rl_summary.json").is_file():
            run(["rl.py", args.config, "--seed", str(seed), "--holdout_seed", str(cfg.seed), "--output_dir", str(model),
                 *steps])
        kept = read_json(model / "rl_summary.json", "RL summary").get("kept_initial_policy", False)
        label = f"SFT+RL seed {seed}" + (" (kept SFT)" if kept else "")
        predictions[label] = evaluate(args.config, model, out / f"eval_rl_seed{seed}", args.max_samples)

    control = out / "sft_control"
    if not (control / "config.json").is_file():
        data_dir = write_control_data(cfg, out / "control_data")
        run(["sft.py", args.config, "--base_model", str(cfg.model_path), "--data_dir", str(data_dir),
             "--train_subdir", "train", "--train_on_valid", "false", "--learning_rate", str(cfg.learning_rate),
             "--num_train_epochs", "1", "--warmup_steps", "0", "--output_dir", str(control)])
    predictions["control: continued SFT on the RL rows"] = evaluate(args.config, control, out / "eval_sft_control",
                                                                    args.max_samples)

    print(f"\n{args.config}: test split, SID level, paired bootstrap 95% intervals\n")
    print("| model | HR@10 | NDCG@10 | NDCG@10 - SFT | NDCG@10 - control |")
    print("|---|---|---|---|---|")
    control_key = "control: continued SFT on the RL rows"
    for name, path in predictions.items():
        cells = []
        for reference in ("SFT", control_key):
            if name == reference:
                cells.append("-")
                continue
            d = compare_predictions(predictions[reference], path)["NDCG@10"]
            cells.append(f"{d['delta']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]")
        versus_sft = compare_predictions(predictions["SFT"], path)
        print(f"| {name} | {versus_sft['HR@10']['mean_b']:.4f} | {versus_sft['NDCG@10']['mean_b']:.4f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
