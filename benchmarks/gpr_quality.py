"""GPR variants vs plain on one dataset, with the same evaluation: plain, +tokens, +VAFT, +HEPO.

    python benchmarks/gpr_quality.py [--config configs/synthetic_gpr.yaml] [--json out.json]
                                     [--sft_epochs 8] [--rl_steps 40] [--max_test 0] [--seeds 42 43]

Needs a dataset with ratings, timestamps and prices (the GPR features come from them), so the
default is the synthetic Amazon'18-format data of ``configs/synthetic_gpr.yaml``; the prepared
Industrial files (../shared/data/minionerec_amazon) have neither ratings nor timestamps nor prices.
Missing inputs are built first (synthetic raw files, GPR data stage, GPR text embeddings, SIDs,
GPR conversion).  Then, each step a subprocess of the real stage scripts, skipped when its
output exists (an interrupted run continues):

=============  ==========================================================================
plain          sft_gpr.py --gpr.use_tokens false            (= sft.py on the same rows)
tokens         sft_gpr.py                                   (U/E/type tokens in the prompt)
tokens+vaft    sft_gpr.py --gpr.vaft true
+grpo          rl_gpr.py from tokens+vaft, --gpr.hepo false (= rl.py with the GPR prompt)
+hepo          rl_gpr.py from tokens+vaft, --gpr.hepo true
=============  ==========================================================================

Every model is evaluated by evaluate_gpr.py on the same test rows with the same beams, with its
own prompt.  Each variant is trained once per seed (``--seeds``: model init, data order, RL
sampling); prints one table (item-level HR/NDCG@K, mean over seeds, and the min-max range of
NDCG@10 across seeds) and the wall time of each step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KS = (1, 5, 10)
SFT_RECIPE = ["--sft.per_device_train_batch_size", "64", "--sft.learning_rate", "2e-3", "--sft.warmup_steps", "20",
              "--sft.eval_steps", "100", "--sft.num_threads", "1", "--sft.logging_steps", "20",
              "--sft.eval_samples", "150"]
RL_RECIPE = ["--rl.per_device_train_batch_size", "32", "--rl.num_generations", "8", "--rl.learning_rate", "2e-5",
             "--rl.eval_samples", "0", "--rl.save_steps", "1000", "--rl.train_subset", "-1"]


def run(cmd: list[str], log: Path) -> float:
    """Run a stage script (niced, one thread) with its output in ``log``; returns wall seconds."""
    start = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    env_cmd = ["env", "OMP_NUM_THREADS=1", "nice", "-n", "10", sys.executable, *cmd]
    with open(log, "w") as f:
        proc = subprocess.run(env_cmd, check=False, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}); see {log}")
    return time.time() - start


def prepare(config: str, work: Path, dataset: str, logs: Path) -> None:
    """Build the synthetic raw data, GPR data stage, embeddings, SIDs and GPR CSVs when missing."""
    steps = [
        (work / "raw" / f"{dataset}.json", ["data/synthetic.py", config]),
        (work / "data" / dataset / f"{dataset}.gpr.json", ["data/amazon18_data_process_gpr.py", config]),
        (work / "data" / dataset / f"{dataset}.emb-minilm.npy", ["rq/text2emb/amazon_text2emb_gpr.py", config]),
        (work / "data" / dataset / f"{dataset}.index.json", ["rq/build_sids.py", config]),
        (work / "llm" / "info" / f"{dataset}.gpr.json", ["convert_dataset_gpr.py", config]),
    ]
    for output, cmd in steps:
        if not output.exists():
            print(f"prepare: {' '.join(cmd)}", flush=True)
            run(cmd, logs / f"prepare-{Path(cmd[0]).stem}.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/synthetic_gpr.yaml")
    parser.add_argument("--sft_epochs", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--rl_steps", type=int, default=40)
    parser.add_argument("--max_test", type=int, default=0, help="test rows evaluated (0 = all)")
    parser.add_argument("--num_beams", type=int, default=20)
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()

    common = yaml.safe_load((ROOT / args.config).read_text())["common"]
    work, dataset = ROOT / common["workdir"], common["dataset"]
    bench, logs = work / "bench", work / "bench" / "logs"
    prepare(args.config, work, dataset, logs)

    sft_variants = {"plain": ["--gpr.use_tokens", "false"], "tokens": [], "tokens+vaft": ["--gpr.vaft", "true"]}
    rl_variants = {"tokens+vaft+grpo": ["--gpr.hepo", "false"], "tokens+vaft+hepo": ["--gpr.hepo", "true"]}
    uses_tokens = {name: name != "plain" for name in [*sft_variants, *rl_variants]}
    wall: dict[str, float] = {}
    results: dict[str, dict[int, dict]] = {name: {} for name in [*sft_variants, *rl_variants]}
    for seed in args.seeds:
        model_dirs: dict[str, Path] = {}
        for name, extra in sft_variants.items():
            out = model_dirs[name] = bench / f"seed{seed}" / f"sft-{name}"
            if not (out / "sft.summary.json").exists():
                print(f"seed {seed}: sft {name} ...", flush=True)
                wall[f"seed {seed} sft {name}"] = run(
                    ["sft_gpr.py", args.config, "--sft.output_dir", str(out), "--sft.seed", str(seed),
                     "--sft.num_train_epochs", str(args.sft_epochs), *SFT_RECIPE, *extra], logs / f"{seed}-sft-{name}.log")
        for name, extra in rl_variants.items():
            out = model_dirs[name] = bench / f"seed{seed}" / f"rl-{name}"
            if not (out / "rl_summary.json").exists():
                print(f"seed {seed}: rl {name} ...", flush=True)
                wall[f"seed {seed} rl {name}"] = run(
                    ["rl_gpr.py", args.config, "--rl.model_path", str(model_dirs["tokens+vaft"]), "--rl.seed", str(seed),
                     "--rl.output_dir", str(out), "--rl.max_steps", str(args.rl_steps), *RL_RECIPE, *extra],
                    logs / f"{seed}-rl-{name}.log")
        for name, path in model_dirs.items():
            out = bench / f"seed{seed}" / "eval" / name
            if not (out / "metrics.json").exists():
                print(f"seed {seed}: evaluate {name} ...", flush=True)
                wall[f"seed {seed} eval {name}"] = run(
                    ["evaluate_gpr.py", args.config, "--evaluate.model_path", str(path), "--evaluate.output_dir", str(out),
                     "--evaluate.max_samples", str(args.max_test), "--evaluate.num_beams", str(args.num_beams),
                     "--gpr.use_tokens", str(uses_tokens[name]).lower()], logs / f"{seed}-eval-{name}.log")
            results[name][seed] = json.loads((out / "metrics.json").read_text())

    print(f"item-level metrics, mean over seeds {args.seeds}; last column: NDCG@10 min-max over seeds")
    print(f"{'variant':<18}" + "".join(f"{m + '@' + str(k):>9}" for k in KS for m in ("HR", "NDCG"))
          + f"{'CC':>5}{'NDCG@10 range':>18}")
    for name, per_seed in results.items():
        items = [m["item_level"] for m in per_seed.values()]
        mean = {key: sum(i[key] for i in items) / len(items) for key in items[0]}
        ndcg10 = [i["NDCG@10"] for i in items]
        cc = sum(m.get("CC", 0) for m in per_seed.values())
        print(f"{name:<18}" + "".join(f"{mean[f'{m}@{k}']:>9.4f}" for k in KS for m in ("HR", "NDCG"))
              + f"{cc:>5}{min(ndcg10):>9.4f}-{max(ndcg10):.4f}")
    for step, seconds in wall.items():
        print(f"  {step}: {seconds:.0f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"config": args.config, "args": vars(args), "results": results,
                                               "wall_seconds": wall}, indent=2))


if __name__ == "__main__":
    main()
