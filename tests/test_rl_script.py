"""rl.py end to end on a tiny checkpoint: one process, a 2-process CPU run, resume, bad input."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import cpu_ranks_env

from minionerec.catalogue import CatalogueItem, write_info
from minionerec.config import load_config
from minionerec.errors import InputError
from minionerec.holdout import split_valid_by_user
from minionerec.io import SplitRow, write_split_csv
from minionerec.llm import TinyModelSpec, build_tiny_qwen2, extend_with_sid_tokens, train_bpe_tokenizer
from minionerec.rl import RLConfig, main, rows_to_train_on, step_zero_is_best
from minionerec.sid import codes_to_sid, sid_to_string, sid_vocabulary

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS = 12
SIDS = [codes_to_sid((i // 4, i % 4, i % 3)) for i in range(N_ITEMS)]


def split_rows(n: int, offset: int = 0) -> list[SplitRow]:
    rows = []
    for r in range(n):
        hist = [(r + offset + k) % N_ITEMS for k in range(3)]
        target = (r + offset + 3) % N_ITEMS
        rows.append(SplitRow(f"A{r}", tuple(f"title {i}" for i in hist), f"title {target}", tuple(hist), target,
                             tuple(sid_to_string(SIDS[i]) for i in hist), sid_to_string(SIDS[target])))
    return rows


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl_script")
    llm = root / "llm"
    write_split_csv(llm / "train" / "Toy.csv", split_rows(16))
    write_split_csv(llm / "valid" / "Toy.csv", split_rows(4, offset=5))
    write_info(llm / "info" / "Toy.txt", [CatalogueItem(SIDS[i], f"title {i}", i) for i in range(N_ITEMS)])
    tokenizer = train_bpe_tokenizer([f"title {i}" for i in range(N_ITEMS)] * 3 + ["The user has interacted with items"],
                                    vocab_size=300)
    spec = TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
    model = build_tiny_qwen2(len(tokenizer), spec, tokenizer.eos_token_id, seed=0)
    plain = root / "plain"
    tokenizer.save_pretrained(plain)
    model.save_pretrained(plain)
    extend_with_sid_tokens(model, tokenizer, sid_vocabulary(SIDS))
    model.save_pretrained(root / "sft")
    tokenizer.save_pretrained(root / "sft")
    return root


def overrides(root: Path, out: str, **extra) -> dict:
    base = {
        "common.dataset": "Toy", "common.workdir": str(root), "rl.output_dir": str(root / out),
        "rl.num_generations": "4", "rl.per_device_train_batch_size": "8", "rl.gradient_accumulation_steps": "1",
        "rl.max_steps": "2", "rl.save_steps": "1", "rl.learning_rate": "1e-3", "rl.ref_model_sync_steps": "1",
    }
    base.update({f"rl.{k}": str(v) for k, v in extra.items()})
    return base


def as_cli(values: dict) -> list[str]:
    return [item for k, v in values.items() for item in (f"--{k}", v)]


def test_rl_runs_saves_and_resumes(workdir):
    cfg = load_config(RLConfig, None, overrides(workdir, "rl", eval_samples=4, validation_beams=4, eval_steps=2))
    summary = main(cfg)
    out = workdir / "rl"
    assert summary["steps"] == 2 and summary["train_prompts"] == 16 + 12 + 16
    assert summary["mean_valid_rate"] == 1.0
    assert {"mean_time/rollout", "mean_time/scoring", "mean_time/update"} <= set(summary)
    assert "eval_HR@1" in summary["validation"]
    assert (out / "rl.config.yaml").is_file() and (out / "model.safetensors").is_file()
    assert (out / "checkpoint-2" / "ref_model.pt").is_file()
    assert json.loads((out / "rl_summary.json").read_text())["steps"] == 2
    # a finished run is not continued by default (auto), but an explicit checkpoint folder is trained further
    cfg = load_config(RLConfig, None, overrides(workdir, "rl", max_steps=3,
                                                resume_from_checkpoint=str(out / "checkpoint-2")))
    assert main(cfg)["steps"] == 3
    log = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in log if "loss" in h][0] == 1  # one history: steps 1, 2 then 3


def test_upstream_train_and_info_files_replace_the_data_dir_lookup(workdir):
    llm = workdir / "llm"
    files = {"train_file": llm / "train" / "Toy.csv", "info_file": llm / "info" / "Toy.txt"}
    cfg = load_config(RLConfig, None, overrides(workdir, "rl_files", max_steps=1, data_dir=workdir / "none", **files))
    summary = main(cfg)
    assert summary["steps"] == 1 and summary["train_prompts"] == 16 + 12 + 16
    with pytest.raises(InputError, match=r"need .*none.*rl\.train_file and rl\.info_file"):
        main(load_config(RLConfig, None, overrides(workdir, "rl_files", data_dir=workdir / "none")))


def test_select_best_validates_before_training_and_ends_on_the_best_checkpoint(workdir):
    # the valid rows repeat train patterns; with add_gt every group holds its target, so RL learns them and
    # lifts validation above step 0
    cfg = load_config(RLConfig, None, overrides(workdir, "best", eval_samples=4, validation_beams=4, eval_steps=2,
                                                max_steps=6, select_best=True, tasks="next_sid", learning_rate=0.01,
                                                rewards="{rule: 1.0}", add_gt=True))
    summary = main(cfg)
    curve = summary["validation_curve"]
    assert [p["step"] for p in curve] == [0, 2, 4, 6]
    best = max(curve[1:], key=lambda p: p["NDCG@3"])  # 4 beams: NDCG@3 selects
    assert best["NDCG@3"] > curve[0]["NDCG@3"], curve
    assert summary["best_checkpoint"].endswith(f"checkpoint-{best['step']}") and "kept_initial_policy" not in summary
    assert summary["validation"]["eval_NDCG@3"] == pytest.approx(best["NDCG@3"])
    with pytest.raises(InputError, match="select_best needs validation"):
        main(load_config(RLConfig, None, overrides(workdir, "best2", select_best=True)))


def test_select_best_keeps_the_sft_policy_when_no_checkpoint_beats_step_zero(workdir):
    from safetensors.torch import load_file

    # learning rate 0: every validation ties with step 0, and ties keep the SFT policy
    cfg = load_config(RLConfig, None, overrides(workdir, "keep", eval_samples=4, validation_beams=4, eval_steps=1,
                                                max_steps=2, select_best=True, learning_rate=0.0))
    summary = main(cfg)
    assert summary["kept_initial_policy"] and summary["best_checkpoint"] == str(workdir / "sft")
    saved, sft = load_file(workdir / "keep" / "model.safetensors"), load_file(workdir / "sft" / "model.safetensors")
    assert saved.keys() == sft.keys() and all(torch.equal(saved[k], sft[k]) for k in sft)
    assert step_zero_is_best([{"step": 0, "m": 0.2}, {"step": 1, "m": 0.2}, {"step": 2, "m": 0.1}], "m")
    assert not step_zero_is_best([{"step": 0, "m": 0.2}, {"step": 1, "m": 0.3}], "m")
    assert not step_zero_is_best([{"step": 1, "m": 0.2}], "m")  # no step-0 validation (resumed or eval_on_start off)


def test_train_on_valid_adds_the_valid_rows_outside_the_validation_users(workdir):
    train = split_rows(6)
    valid = [dataclasses.replace(r, user_id=f"V{i // 2}") for i, r in enumerate(split_rows(8, offset=2))]  # 4 users
    cfg = load_config(RLConfig, None, overrides(workdir, "tov", train_on_valid=True, eval_samples=2))
    held_out, _ = split_valid_by_user(valid, 2, cfg.seed)
    rows = rows_to_train_on(cfg, train, valid)
    assert rows == train + [r for r in valid if r not in held_out]  # file (time) order, train first
    assert len(rows) == 6 + 6 and not {r.user_id for r in held_out} & {r.user_id for r in rows[6:]}
    cfg.recent_rows = 4
    assert rows_to_train_on(cfg, train, valid) == rows[-4:]  # the newest rows are the valid rows
    cfg.train_on_valid = False
    assert rows_to_train_on(cfg, train, valid) == train[-4:]
    cfg.train_on_valid, cfg.eval_samples = True, 0
    with pytest.raises(InputError, match="train_on_valid needs 0 < rl.eval_samples < 8"):
        rows_to_train_on(cfg, train, valid)
    with pytest.raises(InputError, match="no valid CSV"):
        rows_to_train_on(cfg, train, None)
    # the whole stage: 16 train rows + the 2 valid rows of the users outside validation, then the newest 5
    summary = main(load_config(RLConfig, None, overrides(workdir, "tov", tasks="next_sid", train_on_valid=True,
                                                         eval_samples=2, validation_beams=4, max_steps=1)))
    assert summary["train_prompts"] == 18
    summary = main(load_config(RLConfig, None, overrides(workdir, "tov", tasks="next_sid", train_on_valid=True,
                                                         eval_samples=2, validation_beams=4, recent_rows=5,
                                                         max_steps=1)))
    assert summary["train_prompts"] == 5


def test_checkpoint_without_sid_tokens_is_an_input_error(workdir):
    cfg = load_config(RLConfig, None, overrides(workdir, "bad", model_path=workdir / "plain"))
    with pytest.raises(InputError, match="lacks .* SID token"):
        main(cfg)


def test_unknown_reward_and_title_task_are_input_errors(workdir):
    values = overrides(workdir, "bad")
    values["rl.rewards.ndcg"] = "1.0"
    with pytest.raises(InputError, match="unknown reward 'ndcg'"):
        main(load_config(RLConfig, None, values))
    with pytest.raises(InputError, match="do not answer with a SID"):
        main(load_config(RLConfig, None, overrides(workdir, "bad", tasks="next_sid,sid2title")))


@pytest.mark.slow  # spawns two processes through accelerate launch (~25 s)
def test_two_process_cpu_run(workdir):
    env = cpu_ranks_env(NPROC="2", CPU="1", MAIN_PORT="29617")
    cmd = ["bash", str(ROOT / "rl.sh"), *as_cli(overrides(workdir, "rl2", train_subset=16, tasks="next_sid"))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((workdir / "rl2" / "rl_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["distributed_type"] == "MULTI_CPU"
    assert summary["steps"] == 2 and summary["mean_valid_rate"] == 1.0


@pytest.mark.slow  # two ranks under DeepSpeed on CPU (~45 s each, most of it DeepSpeed's start-up)
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_on_two_cpu_processes(workdir, stage):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (pip install -r requirements.txt)")
    env = cpu_ranks_env(NPROC="2", CPU="1", MAIN_PORT=str(29619 + stage),
                        ACCELERATE_CONFIG=str(ROOT / "configs" / "accelerate" / f"deepspeed_zero{stage}.yaml"))
    out = f"rl_zero{stage}"
    # select_best with a learning rate that spoils validation: the SFT weights are restored into the
    # (under ZeRO-3 partitioned) policy and saved
    cmd = ["bash", str(ROOT / "rl.sh"), *as_cli(overrides(workdir, out, train_subset=16, tasks="next_sid", max_steps=4,
                                                            eval_samples=4, validation_beams=4, eval_steps=2,
                                                            select_best=True, learning_rate=0.05))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((workdir / out / "rl_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["distributed_type"] == "DEEPSPEED"
    assert summary["steps"] == 4 and summary["mean_valid_rate"] == 1.0 and "eval_HR@1" in summary["validation"]
    from safetensors.torch import load_file

    sft, final = load_file(workdir / "sft" / "model.safetensors"), load_file(workdir / out / "model.safetensors")
    assert summary["kept_initial_policy"], summary["validation_curve"]
    assert all(torch.equal(sft[k], final[k]) for k in sft)
    ref = torch.load(workdir / out / "checkpoint-4" / "ref_model.pt", weights_only=True)
    assert all(ref[k].shape == sft[k].shape for k in sft)  # gathered, not ZeRO-3 partitions
