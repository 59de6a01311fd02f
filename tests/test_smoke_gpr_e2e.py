"""End-to-end smoke of the GPR switch: ``run_all.sh configs/synthetic_gpr.yaml`` on a tiny dataset and model.

The plain stage scripts run with ``gpr.enabled`` from the config (no ``*_gpr.py`` alias): every stage must
take the GPR path (side files, GPR CSV columns, GPR tokens in the tokenizer, the GPR prompt in evaluation),
with VAFT, HEPO and the type-prefixed trie switched on so that every hook runs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "synthetic.n_users": 60, "synthetic.n_items": 30, "synthetic.n_clusters": 4,
    "data.user_k": 3, "data.item_k": 3,
    "sid.codebook_size": 8,
    "sft.max_steps": 4, "sft.eval_steps": 4, "sft.hidden_size": 32, "sft.intermediate_size": 64,
    "sft.bpe_vocab_size": 400, "sft.per_device_train_batch_size": 16,
    "rl.max_steps": 2, "rl.train_subset": 8, "rl.num_generations": 4, "rl.per_device_train_batch_size": 8,
    "rl.eval_samples": 0, "rl.save_steps": 2,
    "evaluate.max_samples": 12, "evaluate.num_beams": 4, "evaluate.batch_size": 12,
    "gpr.vaft": "true", "gpr.hepo": "true", "gpr.target_type_prefix": "true",
}


def run_all(tmp_path: Path, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    return subprocess.run(["bash", str(ROOT / "run_all.sh"), str(ROOT / "configs/synthetic_gpr.yaml"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_run_all_with_the_gpr_switch(tmp_path):
    workdir = tmp_path / "run"
    args = [f"--{k}={v}" for k, v in SMALL.items()] + [f"--common.workdir={workdir}"]
    result = run_all(tmp_path, args, 600)
    assert result.returncode == 0, result.stderr[-4000:]
    data = workdir / "data" / "Synthetic"
    for name in ("Synthetic.gpr.json", "Synthetic.gpr.users.json", "Synthetic.gpr.items.json", "gpr.config.yaml"):
        assert (data / name).is_file(), name
    with open(workdir / "llm" / "train" / "Synthetic.csv", newline="") as f:
        header = next(csv.reader(f))
    assert {"user_token", "context_token", "history_item_type", "item_type"} <= set(header), header
    assert (workdir / "llm" / "info" / "Synthetic.gpr.json").is_file()
    tokens = json.loads((workdir / "sft" / "tokenizer.json").read_text())["added_tokens"]
    assert any(t["content"].startswith("[USER_") for t in tokens)
    for folder in ("llm", "sft", "rl", "eval/sft", "eval/rl"):
        saved = yaml.safe_load((workdir / folder / "gpr.config.yaml").read_text())["gpr"]
        assert saved["enabled"] and saved["vaft"] and saved["hepo"], folder
    predictions = json.loads((workdir / "eval" / "rl" / "predictions.json").read_text())
    assert "[USER_" in predictions[0]["input"]  # the GPR prompt
    models = json.loads((tmp_path / "results" / "synthetic_gpr" / "results.json").read_text())["models"]
    for name in ("sft", "rl"):
        assert models[name]["CC"] == 0 and models[name]["n_samples"] == 12
    # a gpr key changed on the command line makes the stages that record it stale (their own sections are not)
    dry = run_all(tmp_path, [*args, "--gpr.hepo=false", "--dry_run"], 300)
    assert dry.returncode == 0, dry.stderr[-4000:]
    would = [line.split("] ", 1)[1].split(":", 1)[0] for line in dry.stderr.splitlines() if ": runs (" in line]
    assert would == ["rl", "eval_rl"], dry.stderr[-3000:]
    assert "gpr.hepo changed (True -> False)" in dry.stderr
