"""The RL stage's one config: GRPO settings declared once, trainer arguments built from RLConfig, upstream's RL flags."""

from __future__ import annotations

import dataclasses
import logging
import os

import pytest
from transformers import TrainingArguments

from minionerec import upstream
from minionerec.config import load_config, parse_cli
from minionerec.errors import InputError
from minionerec.rl import (
    DERIVED,
    STAGE_ONLY,
    GRPOSettings,
    MiniOneRecGRPOConfig,
    RLConfig,
    grpo_arguments,
    passed_through_keys,
    resolve_optim,
    rl_data_files,
)
from minionerec.rl import arguments as rl_arguments


def rl_config(**values) -> RLConfig:
    base = {"common.dataset": "Toy", "common.workdir": "w", "rl.bf16": "false"}
    return load_config(RLConfig, None, {**base, **{f"rl.{k}": str(v) for k, v in values.items()}})


def defaults(cls: type) -> dict:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(cls) if f.init}


def test_grpo_settings_have_one_default_shared_by_the_stage_and_the_trainer() -> None:
    grpo, stage, trainer = defaults(GRPOSettings), defaults(RLConfig), defaults(MiniOneRecGRPOConfig)
    for name, value in grpo.items():
        assert stage[name] == value and trainer[name] == value, name
    assert grpo["sync_ref_model"] is True and grpo["epsilon_high"] == 0.2  # rl.sh's values (rl.py's old defaults)


def test_every_rl_key_named_like_a_trainer_argument_is_passed_derived_or_handled_by_the_stage() -> None:
    ours = {f.name for f in dataclasses.fields(RLConfig)}
    theirs = {f.name for f in dataclasses.fields(MiniOneRecGRPOConfig) if f.init}
    assert ours & theirs == passed_through_keys() | DERIVED | STAGE_ONLY
    assert set(defaults(GRPOSettings)) <= passed_through_keys()
    assert (DERIVED | STAGE_ONLY) <= {f.name for f in dataclasses.fields(TrainingArguments)}


def test_trainer_arguments_carry_every_passed_through_value_of_the_config() -> None:
    changed = {"num_generations": 4, "rollout_mode": "sample", "temperature": 0.7, "max_prompt_length": 64,
               "beta": 0.05, "loss_type": "dapo", "epsilon": 0.1, "epsilon_high": 0.28, "num_iterations": 2,
               "advantage_epsilon": 1e-3, "scale_rewards": False, "sync_ref_model": False, "ref_model_sync_steps": 7,
               "ref_model_mixup_alpha": 0.3, "dynamic_sampling": True, "max_refill_rounds": 2, "add_gt": True,
               "share_prompt_prefill": False, "validation_beams": 5, "validation_batch_prompts": 3,
               "per_device_train_batch_size": 8, "gradient_accumulation_steps": 3, "learning_rate": 2e-4,
               "num_train_epochs": 3.0, "max_steps": 11, "lr_scheduler_type": "linear", "max_grad_norm": 0.9,
               "weight_decay": 0.01, "save_total_limit": 2, "logging_steps": 5, "seed": 7}
    assert set(changed) == passed_through_keys() - {"output_dir"}
    cfg = rl_config(**changed)
    args = grpo_arguments(cfg, has_validation=True)
    for name, value in changed.items():
        assert getattr(args, name) == value, name
    assert args.output_dir == cfg.output_dir == "w/rl"


def test_derived_arguments_follow_validation_selection_and_reporting() -> None:
    plain = grpo_arguments(rl_config(report_to="none", save_steps=0.2), has_validation=False)
    assert (plain.eval_strategy, plain.save_steps, plain.load_best_model_at_end, plain.report_to) == ("no", 0.2, False, [])
    assert plain.bf16 is False and plain.warmup_steps == 0.03
    best = grpo_arguments(rl_config(select_best="true", eval_steps=0.25, validation_beams=5, report_to="tensorboard"),
                          has_validation=True)
    assert (best.eval_strategy, best.eval_steps, best.save_steps) == ("steps", 0.25, 0.25)
    assert (best.metric_for_best_model, best.eval_on_start, best.report_to) == ("NDCG@5", True, ["tensorboard"])
    with pytest.raises(InputError, match="select_best needs validation"):
        grpo_arguments(rl_config(select_best="true"), has_validation=False)


def test_sync_ref_model_has_no_effect_without_a_reference_model(tmp_path) -> None:
    assert grpo_arguments(rl_config(beta=0), has_validation=False).sync_ref_model is False
    direct = MiniOneRecGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=16, beta=0.0, use_cpu=True)
    assert direct.sync_ref_model is False
    assert MiniOneRecGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=16, use_cpu=True).sync_ref_model


def test_upstream_paged_adamw_runs_as_adamw_torch_without_bitsandbytes(monkeypatch, caplog) -> None:
    monkeypatch.setattr(rl_arguments, "bitsandbytes_usable", lambda: False)
    with caplog.at_level(logging.INFO, logger="minionerec.rl"):
        assert grpo_arguments(rl_config(optim="paged_adamw_32bit"), has_validation=False).optim == "adamw_torch"
    assert "paged_adamw_32bit needs bitsandbytes" in caplog.text and "using adamw_torch" in caplog.text
    assert grpo_arguments(rl_config(), has_validation=False).optim == "adamw_torch_fused"  # HF's default, as before
    with pytest.raises(InputError, match="adamw_8bit' needs bitsandbytes"):
        resolve_optim("adamw_8bit")
    with pytest.raises(InputError, match="did you mean paged_adamw_32bit"):
        resolve_optim("paged_adamw_23bit")
    monkeypatch.setattr(rl_arguments, "bitsandbytes_usable", lambda: True)
    assert resolve_optim("paged_adamw_32bit") == "paged_adamw_32bit"


def upstream_cli(line: str, config: str | None = None) -> RLConfig:
    path, overrides = parse_cli(([config] if config else []) + line.split())
    return load_config(RLConfig, path, overrides)


def test_upstream_rl_files_eval_batch_size_and_wandb_names(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.delenv("WANDB_NAME", raising=False)
    cfg = upstream_cli("--train_file T.csv --eval_file V.csv --info_file I.txt --eval_batch_size 128 "
                       "--wandb_project proj --wandb_run_name run")
    assert (cfg.train_file, cfg.valid_file, cfg.info_file) == ("T.csv", "V.csv", "I.txt")
    assert cfg.validation_batch_prompts == 128 // 16  # upstream counts completions, G of them per prompt
    assert (os.environ["WANDB_PROJECT"], os.environ["WANDB_NAME"]) == ("proj", "run")
    (tmp_path / "c.yaml").write_text("rl: {num_generations: 4}\n")
    assert upstream_cli("--eval_batch_size 32", str(tmp_path / "c.yaml")).validation_batch_prompts == 8
    assert all(f"--{flag}" in upstream.help_text("rl") for flag in ("train_file", "eval_file", "info_file"))


def test_explicit_rl_files_replace_the_data_dir_lookup(tmp_path) -> None:
    (tmp_path / "llm" / "train").mkdir(parents=True)
    (tmp_path / "llm" / "train" / "Toy.csv").write_text("x")
    (tmp_path / "mine.csv").write_text("x")
    (tmp_path / "mine.txt").write_text("x")
    cfg = rl_config(data_dir=tmp_path / "llm", train_file=tmp_path / "mine.csv", info_file=tmp_path / "mine.txt")
    files = rl_data_files(cfg)
    assert (files.train, files.info, files.valid) == (tmp_path / "mine.csv", tmp_path / "mine.txt", None)
    assert rl_data_files(rl_config(data_dir=tmp_path / "llm")).train == tmp_path / "llm" / "train" / "Toy.csv"
    with pytest.raises(InputError, match=r"rl\.info_file"):
        rl_data_files(rl_config(data_dir=tmp_path / "llm", info_file=tmp_path / "missing.txt"))
