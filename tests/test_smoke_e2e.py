"""End-to-end smoke: every stage of configs/synthetic.yaml on a tiny dataset and a tiny model.

Runs ``run_all.sh`` exactly as a user would (each stage a separate process), with overrides
that shrink every stage to a few steps, then checks the results folder.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "synthetic.n_users": 80, "synthetic.n_items": 40, "synthetic.n_clusters": 4,
    "data.user_k": 3, "data.item_k": 3,
    "sid.codebook_size": 8,
    "baselines.max_epochs": 2, "baselines.hidden_size": 16,
    "sft.max_steps": 8, "sft.eval_steps": 4, "sft.hidden_size": 32, "sft.intermediate_size": 64,
    "sft.bpe_vocab_size": 400, "sft.per_device_train_batch_size": 16,
    "rl.max_steps": 2, "rl.train_subset": 16, "rl.num_generations": 4, "rl.per_device_train_batch_size": 8,
    "rl.eval_samples": 0, "rl.save_steps": 2,
    "evaluate.max_samples": 24, "evaluate.num_beams": 5, "evaluate.batch_size": 12,
}


def test_run_all_on_synthetic_data(tmp_path):
    workdir = tmp_path / "run"
    args = [f"--{k}={v}" for k, v in SMALL.items()] + [f"--common.workdir={workdir}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        ["bash", str(ROOT / "run_all.sh"), str(ROOT / "configs/synthetic.yaml"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    output = result.stdout + result.stderr  # third-party chatter that carries no event of this run
    for noise in ("please provide at least", "Setting accelerator to CPU", "missing keys in the checkpoint"):
        assert noise not in output, noise
    results = tmp_path / "results" / "synthetic"
    table = (results / "results.md").read_text()
    for row in ("| SFT |", "| SFT+RL |", "| Popularity |", "| Markov |"):
        assert row in table, table
    assert "SFT+RL minus SFT on the same 24 test rows (paired bootstrap, 95% interval)" in table, table
    models = json.loads((results / "results.json").read_text())["models"]
    for name in ("sft", "rl"):
        assert models[name]["CC"] == 0  # constrained decoding: every prediction is a catalogue item
        assert models[name]["n_samples"] == 24
    assert (results / "hr_at_k.png").is_file() and (results / "sid_utilisation.png").is_file()
    # a second run finds every stage current and only rebuilds the report
    again = subprocess.run(["bash", str(ROOT / "run_all.sh"), str(ROOT / "configs/synthetic.yaml"), *args],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.stderr.count("up to date, skipped") == 10, again.stderr[-3000:]
    # a deleted convert output: --dry_run names convert (the file) and every stage reading llm/ (not the
    # stages before convert); the real rerun rebuilds the same bytes, so the stages after it stay current
    (workdir / "llm" / "test" / "Synthetic.csv").unlink()
    dry = subprocess.run(["bash", str(ROOT / "run_all.sh"), str(ROOT / "configs/synthetic.yaml"), *args,
                          "--dry_run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-4000:]
    would = [line.split("] ", 1)[1].split(":", 1)[0] for line in dry.stderr.splitlines() if ": runs (" in line]
    assert would == ["convert", "baselines", "sft", "eval_sft", "rl", "eval_rl"], dry.stderr[-3000:]
    assert "Synthetic.csv missing" in dry.stderr
    rerun = subprocess.run(["bash", str(ROOT / "run_all.sh"), str(ROOT / "configs/synthetic.yaml"), *args],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert rerun.stderr.count("up to date, skipped") == 9 and "convert: runs (output" in rerun.stderr, \
        rerun.stderr[-3000:]
