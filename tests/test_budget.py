"""Budgets are epochs/steps; a wall-clock cap is a safety valve that, when it fires, is recorded and reported."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from test_baselines_sasrec import make_catalogue, planted, tiny

from minionerec.baselines import TrainConfig, stop_reason, train_sequential_model
from minionerec.budget import WALL_CLOCK_CAP, cap_note, wall_clock_cap
from minionerec.llm import time_limit_callback
from minionerec.report import markdown_table

METRICS = {"sid_level": {f"{m}@{k}": 0.1 for m in ("HR", "NDCG") for k in (3, 5, 10)}}


def test_no_cap_by_default_and_epochs_decide():
    assert TrainConfig().max_train_seconds == 0
    state = {"epoch": 3, "bad_epochs": 0, "seconds": 1e9}
    assert stop_reason(state, TrainConfig(max_epochs=10)) is None  # hours of wall time: epochs still decide
    assert stop_reason({**state, "epoch": 10}, TrainConfig(max_epochs=10)).startswith("max_epochs")


def test_a_fired_baseline_cap_is_recorded(tmp_path):
    torch.set_num_threads(1)
    catalogue = make_catalogue(tmp_path / "info.txt")
    cfg = TrainConfig(learning_rate=1e-2, batch_size=64, max_epochs=5, patience=5, max_train_seconds=1e-6, seed=0)
    result = train_sequential_model(tiny(), cfg, planted(100, 1), planted(30, 2), catalogue, device="cpu")
    assert len(result.history) == 1
    assert result.wall_clock_cap == {"setting": "max_train_seconds=1e-06", "epochs_done": 1.0, "epochs_planned": 5.0}
    uncapped = train_sequential_model(tiny(), TrainConfig(**{**vars(cfg), "max_train_seconds": 0.0, "max_epochs": 2}),
                                      planted(100, 1), planted(30, 2), catalogue, device="cpu")
    assert uncapped.wall_clock_cap is None and len(uncapped.history) == 2


def test_the_sft_time_limit_records_where_it_stopped():
    callback = time_limit_callback(minutes=0.0)
    state = SimpleNamespace(global_step=7, max_steps=100, epoch=0.14, num_train_epochs=2)
    control = SimpleNamespace(should_training_stop=False, should_evaluate=False, should_save=False)
    callback.on_step_end(SimpleNamespace(eval_strategy="steps"), state, control)
    assert control.should_training_stop and control.should_save
    assert callback.record == {"setting": "max_train_minutes=0", "epochs_done": 0.14, "epochs_planned": 2.0,
                               "step": 7, "max_steps": 100}


def test_results_table_marks_a_capped_row_as_not_comparable():
    capped = {WALL_CLOCK_CAP: wall_clock_cap("max_train_minutes=7", 0.42, 2)}
    note = cap_note(capped)
    assert note == "stopped by max_train_minutes=7 at 0.42 of 2 epochs: not comparable"
    assert cap_note({"epochs": 2}) is None
    table = markdown_table({"sft": {"metrics": METRICS, "note": note}, "markov": {"metrics": METRICS, "note": None}})
    assert f"| SFT ({note}) |" in table and "| Markov |" in table


@pytest.mark.parametrize("config", ["ml-100k", "synthetic", "industrial_partial", "scientific", "industrial", "office"])
def test_shipped_configs_set_no_wall_clock_budget(config):
    from pathlib import Path

    import yaml

    body = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml").read_text())
    assert not (body.get("sft") or {}).get("max_train_minutes"), config
    assert not (body.get("baselines") or {}).get("max_train_seconds"), config
