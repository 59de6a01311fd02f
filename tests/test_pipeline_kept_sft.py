"""Issue 17: when RL's select_best kept the SFT policy, run_all skips eval_rl and the results table's RL row reuses
SFT's metrics with a note."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from minionerec import pipeline
from minionerec.config import read_config_file


def config(tmp_path: Path) -> str:
    workdir = tmp_path / "run"
    body = {"common": {"dataset": "Tiny", "workdir": str(workdir)},
            "sft": {}, "rl": {"select_best": True, "eval_samples": 4},
            "evaluate": {"name": "rl", "model_path": "${common.workdir}/rl"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def summary(tmp_path: Path, kept: bool) -> None:
    folder = tmp_path / "run" / "rl"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rl_summary.json").write_text(json.dumps({"kept_initial_policy": kept} if kept else {"steps": 3}))


def test_eval_rl_is_skipped_only_when_rl_kept_the_sft_policy(tmp_path):
    path = config(tmp_path)
    stages = pipeline.plan(read_config_file(path))
    eval_rl, eval_sft = (next(s for s in stages if s.name == n) for n in ("eval_rl", "eval_sft"))
    assert not pipeline._evaluates_kept_sft_policy(eval_rl, path, {}, stages)  # RL has not run
    summary(tmp_path, kept=False)
    assert not pipeline._evaluates_kept_sft_policy(eval_rl, path, {}, stages)
    summary(tmp_path, kept=True)
    assert pipeline._evaluates_kept_sft_policy(eval_rl, path, {}, stages)
    assert not pipeline._evaluates_kept_sft_policy(eval_sft, path, {}, stages)
    # an eval_rl pointed elsewhere (another checkpoint) still runs
    assert not pipeline._evaluates_kept_sft_policy(eval_rl, path, {"rl.output_dir": str(tmp_path / "other")}, stages)


def test_the_rl_row_reuses_sft_metrics_with_a_note(tmp_path):
    from minionerec.report import collect_rows, stage_configs

    path = config(tmp_path)
    sft_metrics = {"sid_level": {"HR@10": 0.5, "NDCG@10": 0.25}}
    eval_sft = tmp_path / "run" / "eval" / "sft"
    eval_sft.mkdir(parents=True)
    (eval_sft / "metrics.json").write_text(json.dumps(sft_metrics))
    stale = tmp_path / "run" / "eval" / "rl"
    stale.mkdir(parents=True)
    (stale / "metrics.json").write_text(json.dumps({"sid_level": {"HR@10": 0.1}}))  # from an older RL run
    summary(tmp_path, kept=True)
    rows = collect_rows(stage_configs(path, {}))
    assert rows["rl"]["metrics"] == sft_metrics and "kept the SFT policy" in rows["rl"]["note"]
    summary(tmp_path, kept=False)
    assert collect_rows(stage_configs(path, {}))["rl"]["metrics"] == {"sid_level": {"HR@10": 0.1}}


def test_run_all_does_not_run_eval_rl_after_rl_kept_the_sft_policy(tmp_path, monkeypatch):
    path = config(tmp_path)
    summary(tmp_path, kept=True)
    stages = pipeline.plan(read_config_file(path))
    monkeypatch.setattr(pipeline, "stale_reason", lambda stage, *_: "never ran" if stage.name.startswith("eval") else None)
    started = []
    monkeypatch.setattr(pipeline, "run_stage_process", lambda command, workdir=None: (started.append(command), (0, None))[1])
    assert pipeline._run_stages(stages, path, {}, [], ["bash", "run_all.sh", path], None, None, False) == ["eval_sft"]
    assert len(started) == 1
    # --only eval_rl asks for it by name: it runs
    assert pipeline._run_stages(stages, path, {}, [], ["bash", "run_all.sh", path], None, "eval_rl", False) == ["eval_rl"]
