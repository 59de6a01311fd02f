"""run_all.sh's runner: stage planning, skipping current stages, --from, and the results report."""

from __future__ import annotations

import ast
import importlib
import json
import math
from pathlib import Path

import pytest
import yaml

from minionerec import pipeline
from minionerec.data import SOURCE_SCRIPTS, ProtocolOptions
from minionerec.errors import InputError
from minionerec.pipeline import plan, run
from minionerec.report import markdown_table, write_report

ROOT = Path(__file__).resolve().parents[1]


def small_config(tmp_path: Path) -> str:
    body = {
        "common": {"dataset": "Tiny", "workdir": str(tmp_path / "run"), "seed": 3},
        "synthetic": {"output_dir": "${data.input_path}", "n_users": 60, "n_items": 30, "n_clusters": 3},
        "data": {"source": "amazon18", "input_path": "${common.workdir}/raw", "output_dir": "${common.workdir}/data",
                 "user_k": 2, "item_k": 2, "st_year": 0, "ed_year": 0},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_plan_follows_sections():
    names = [s.name for s in plan(yaml.safe_load((ROOT / "configs/industrial_partial.yaml").read_text()))]
    assert names == ["baselines", "sft", "eval_sft", "rl", "eval_rl"]
    names = [s.name for s in plan(yaml.safe_load((ROOT / "configs/synthetic.yaml").read_text()))]
    assert names[:5] == ["synthetic", "data", "text2emb", "sid", "convert"]


def imported_class(script: Path, name: str) -> object:
    """The object an entry script binds to ``name`` with ``from MODULE import name`` (read, not run)."""
    for node in ast.walk(ast.parse(script.read_text(), filename=str(script))):
        if isinstance(node, ast.ImportFrom) and node.module and any(a.name == name for a in node.names):
            return getattr(importlib.import_module(node.module), name)
    raise AssertionError(f"{script} imports no {name}")


def every_stage() -> list[pipeline.Stage]:
    sections = {section: {} for section in pipeline.STAGE_SCHEMAS}
    data = [plan({"data": {"source": source}})[0] for source in SOURCE_SCRIPTS]
    return [*plan(sections), *data]


@pytest.mark.parametrize("stage", every_stage(), ids=lambda s: f"{s.name}:{s.schema}")
def test_the_schema_table_names_the_class_each_entry_script_runs(stage):
    """The pipeline imports each stage's config class from its table; the stage's own script must parse the same one."""
    schema = pipeline.schema_of(stage)
    assert schema.section == stage.section
    script = ROOT / stage.script.replace(".sh", ".py")
    assert imported_class(script, schema.__name__) is schema


def test_every_data_source_has_a_schema():
    assert set(pipeline.DATA_SCHEMAS) == set(SOURCE_SCRIPTS)
    with pytest.raises(InputError, match="data.source must be one of"):
        plan({"data": {"source": "nope"}})


def test_runs_then_skips_then_redoes_from_a_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = small_config(tmp_path)
    assert run(config, {}) == ["synthetic", "data"]
    assert (tmp_path / "run/data/Tiny/Tiny.train.inter").is_file()
    assert run(config, {}) == []  # outputs match the config: nothing to do
    assert run(config, {}, start="data") == ["data"]
    # a changed key re-runs the stage that reads it and every stage after it
    assert run(config, {"data.user_k": "3"}) == ["data"]
    # a schema key the saved config lacks (added after that run) keeps the stage current at its default only
    marker = next((tmp_path / "run").rglob("data.config.yaml"))
    saved = yaml.safe_load(marker.read_text())
    assert saved["data"].pop("item_k") == 2
    marker.write_text(yaml.safe_dump(saved))
    with monkeypatch.context() as patch:
        patch.setattr(ProtocolOptions.__dataclass_fields__["item_k"], "default", 2)  # as if item_k were new, default 2
        assert run(config, {"data.user_k": "3"}) == []
    assert run(config, {"data.user_k": "3"}) == ["data"]  # item_k's real default (5) differs from the config's 2
    with pytest.raises(InputError, match="unknown stage"):
        run(config, {}, start="nope")


def test_a_new_key_with_a_reference_default_keeps_the_stage_current(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    body = yaml.safe_load(Path(small_config(tmp_path)).read_text())
    body["synthetic"]["output_dir"] = str(tmp_path / "run" / "raw")
    del body["data"]["input_path"]  # its default, ${common.workdir}/raw, is that same folder
    config = tmp_path / "reference_default.yaml"
    config.write_text(yaml.safe_dump(body))
    assert run(str(config), {}) == ["synthetic", "data"]
    marker = next((tmp_path / "run").rglob("data.config.yaml"))
    saved = yaml.safe_load(marker.read_text())
    saved["data"].pop("input_path")  # as if input_path were added to the schema after that run
    marker.write_text(yaml.safe_dump(saved))
    assert run(str(config), {}) == []  # unset, it holds its resolved default
    assert run(str(config), {"data.input_path": str(tmp_path / "elsewhere")}, dry_run=True) == ["data"]


def test_report_table_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "run"
    metrics = {"sid_level": {"HR@3": 0.1, "NDCG@3": 0.05, "HR@5": 0.2, "NDCG@5": 0.08, "HR@10": 0.3, "NDCG@10": 0.1},
               "item_level": {}, "ks": [3, 5, 10], "CC": 0, "n_samples": 10}
    for name in ("sft", "rl"):
        (workdir / "eval" / name).mkdir(parents=True)
        (workdir / "eval" / name / "metrics.json").write_text(json.dumps(metrics))
        # RL moves the target from rank 1 to rank 0 on every row: a significant paired gain
        predict = ["<a_1>", "<a_2>"] if name == "rl" else ["<a_2>", "<a_1>"]
        (workdir / "eval" / name / "predictions.json").write_text(json.dumps(
            [{"input": f"p{i}", "output": "<a_1>", "predict": predict} for i in range(10)]))
    (workdir / "baselines").mkdir()
    (workdir / "baselines" / "summary.json").write_text(json.dumps({"markov": {"test": metrics}}))
    (workdir / "rl").mkdir()
    (workdir / "rl" / "rl_summary.json").write_text(json.dumps({
        "validation_curve": [{"step": 0, "NDCG@10": 0.05}, {"step": 50, "NDCG@10": 0.06}],
        "best_checkpoint": str(workdir / "rl" / "checkpoint-50")}))
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({
        "common": {"dataset": "X", "workdir": str(workdir)},
        "baselines": {"output_dir": str(workdir / "baselines")},
        "sft": {"output_dir": str(workdir / "sft")}, "rl": {"output_dir": str(workdir / "rl")},
        "evaluate": {},
    }))
    out = write_report(str(config), results_root=tmp_path / "results")
    text = (out / "results.md").read_text()
    assert "| SFT+RL | 0.1000 | 0.0500 | 0.2000 | 0.0800 | 0.3000 | 0.1000 |" in text
    assert "| Markov |" in text
    gain = 1 - 1 / math.log2(3)
    assert (f"SFT+RL minus SFT on the same 10 test rows (paired bootstrap, 95% interval): HR@10 +0.0000 "
            f"[+0.0000, +0.0000] (not significant); NDCG@10 +{gain:.4f} [+{gain:.4f}, +{gain:.4f}] (significant).") in text
    assert "RL validation NDCG@10 by step (0: 0.0500, 50: 0.0600); the policy is `checkpoint-50`." in text
    assert (out / "hr_at_k.png").is_file() and (out / "configs" / "exp.yaml").is_file()
    assert json.loads((out / "results.json").read_text())["models"]["sft"]["sid_level"]["HR@10"] == 0.3


def test_markdown_table_marks_missing_values():
    table = markdown_table({"popularity": {"metrics": {"sid_level": {"HR@3": 0.5}}}})
    assert "| Popularity | 0.5000 | - |" in table


def test_default_of_reads_plain_and_factory_defaults():
    from dataclasses import dataclass, field, fields

    from minionerec.config import field_default

    @dataclass
    class Schema:
        plain: int = 3
        listed: list[str] = field(default_factory=lambda: ["next_sid"])

    assert [field_default(f) for f in fields(Schema)] == [3, ["next_sid"]]


def test_content_changes_rerun_exactly_the_stages_that_read_them(tmp_path, monkeypatch, caplog):
    import minionerec.config as config_module

    monkeypatch.chdir(ROOT)
    config = small_config(tmp_path)
    assert run(config, {}) == ["synthetic", "data"]
    data_dir, raw = tmp_path / "run/data/Tiny", tmp_path / "run/raw"
    # an output deleted: that stage reruns, not the one before it
    (data_dir / "Tiny.test.inter").unlink()
    caplog.set_level("INFO", logger="minionerec.pipeline")
    assert run(config, {}, dry_run=True) == ["data"]
    assert "Tiny.test.inter missing" in caplog.text
    assert run(config, {}) == ["data"] and (data_dir / "Tiny.test.inter").is_file()
    assert run(config, {}) == []
    # a file rewritten with the same bytes (new mtime) changes nothing
    reviews = next(raw.glob("Tiny.json*"))
    reviews.write_bytes(reviews.read_bytes())
    assert run(config, {}) == []
    # an input changed (the raw reviews cut short) in a config that starts from raw files: the data stage reruns
    body = yaml.safe_load(Path(config).read_text())
    del body["synthetic"]
    raw_only = tmp_path / "raw_only.yaml"
    raw_only.write_text(yaml.safe_dump(body))
    assert run(str(raw_only), {}) == []
    before = (data_dir / "Tiny.train.inter").read_text()
    lines = reviews.read_bytes().splitlines(keepends=True)
    assert not reviews.name.endswith(".gz")
    reviews.write_bytes(b"".join(lines[: len(lines) * 2 // 3]))
    caplog.clear()
    assert run(str(raw_only), {}, dry_run=True) == ["data"]
    assert f"input {reviews} changed" in caplog.text
    assert run(str(raw_only), {}) == ["data"] and (data_dir / "Tiny.train.inter").read_text() != before
    # the same edit seen by the full config: synthetic's output changed, so synthetic reruns and, since
    # dry runs do not run it, data is reported as reading what synthetic would write
    caplog.clear()
    assert run(config, {}, dry_run=True) == ["synthetic", "data"]
    assert "written by synthetic, which would run" in caplog.text
    assert run(config, {}) == ["synthetic", "data"]  # data: its raw input changed back
    # a key in the non-result list never makes a stage stale
    with monkeypatch.context() as patch:
        patch.setattr(config_module, "NON_RESULT_KEYS", config_module.NON_RESULT_KEYS | {"user_k"})
        assert run(config, {"data.user_k": "3"}) == []
    assert run(config, {"data.user_k": "3"}, dry_run=True) == ["data"]
