"""Keys renamed for one name per concept across stages (minionerec.config.RENAMED_KEYS): the old names still
resolve, for one release, to the same config, from YAML, ${...} references and the command line, with one INFO line."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import yaml

from minionerec import config as config_module
from minionerec import pipeline, upstream
from minionerec.baselines import BaselinesConfig
from minionerec.config import RENAMED_KEYS, load_config, save_resolved_config, to_dict
from minionerec.convert import ConvertConfig
from minionerec.data import Amazon18Config, LCRecConfig, MovieLensConfig
from minionerec.errors import InputError
from minionerec.llm import SFTConfig
from minionerec.rl import RLConfig
from minionerec.sid import SidConfig, Text2EmbConfig
from minionerec.synthetic import SyntheticConfig

SCHEMAS = {"data": [Amazon18Config, LCRecConfig, MovieLensConfig], "synthetic": [SyntheticConfig],
           "text2emb": [Text2EmbConfig], "sid": [SidConfig], "convert": [ConvertConfig], "sft": [SFTConfig],
           "rl": [RLConfig], "baselines": [BaselinesConfig]}
CASES = [(schema, old, new) for section, renames in RENAMED_KEYS.items() for old, new in renames.items()
         for schema in SCHEMAS[section]]


def _value(schema: type, key: str) -> str:
    """A value for ``key`` that differs from its default (as the YAML/CLI would write it)."""
    hint = {f.name: f.type for f in dataclasses.fields(schema)}[key]
    return "7" if "int" in str(hint) else "/tmp/renamed-key-value"


@pytest.fixture(autouse=True)
def _fresh_announcements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "_renames_announced", set())
    monkeypatch.setattr(upstream, "_announced", set())


def test_every_renamed_key_is_a_field_under_its_new_name_only() -> None:
    assert set(SCHEMAS) == set(RENAMED_KEYS)
    for schema, old, new in CASES:
        names = {f.name for f in dataclasses.fields(schema)}
        assert new in names and old not in names, (schema.__name__, old, new)


@pytest.mark.parametrize("schema,old,new", CASES, ids=[f"{s.__name__}.{o}" for s, o, _ in CASES])
def test_old_name_in_yaml_resolves_as_the_new_name_with_one_info_line(tmp_path: Path, caplog, schema, old, new) -> None:
    section, value = schema.section, _value(schema, new)
    new_file, old_file = tmp_path / "new.yaml", tmp_path / "old.yaml"
    new_file.write_text(yaml.safe_dump({section: {new: value}}))
    old_file.write_text(yaml.safe_dump({section: {old: value}}))
    expected = to_dict(load_config(schema, new_file))
    assert str(expected[new]) == value
    with caplog.at_level(logging.INFO, logger="minionerec.config"):
        assert to_dict(load_config(schema, old_file)) == expected
        assert to_dict(load_config(schema, old_file)) == expected
    lines = [r.getMessage() for r in caplog.records if f"{section}.{old} is renamed" in r.getMessage()]
    assert len(lines) == 1 and f"write {new}" in lines[0]


@pytest.mark.parametrize("schema,old,new", CASES, ids=[f"{s.__name__}.{o}" for s, o, _ in CASES])
@pytest.mark.parametrize("qualified", [False, True], ids=["bare", "section"])
def test_old_name_on_the_command_line_resolves_as_the_new_name(caplog, schema, old, new, qualified) -> None:
    section, value = schema.section, _value(schema, new)
    prefix = f"{section}." if qualified else ""
    expected = to_dict(load_config(schema, None, {f"{prefix}{new}": value}))
    with caplog.at_level(logging.INFO):
        assert to_dict(load_config(schema, None, {f"{prefix}{old}": value})) == expected
    messages = [r.getMessage() for r in caplog.records]
    # data's --output_path is also upstream's flag (minionerec.upstream): that table names the new key
    assert any(f"{section}.{new}" in m and (f"{section}.{old} is renamed" in m or f"--{old} is" in m)
               for m in messages), messages


def test_old_name_in_a_reference_and_in_an_include(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"data": {"output_path": str(tmp_path / "d")}}))
    (tmp_path / "top.yaml").write_text(yaml.safe_dump({
        "include": "base.yaml", "synthetic": {"output_path": "${data.output_path}/raw"},
        "sft": {"info_path": "${data.output_path}/info.txt"}}))
    assert load_config(Amazon18Config, tmp_path / "top.yaml").output_dir == str(tmp_path / "d")
    assert load_config(SyntheticConfig, tmp_path / "top.yaml").output_dir == str(tmp_path / "d" / "raw")
    assert load_config(SFTConfig, tmp_path / "top.yaml").info_file == str(tmp_path / "d" / "info.txt")


def test_old_and_new_name_together_is_an_error(tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"rl": {"validation_samples": 3, "eval_samples": 4}}))
    with pytest.raises(InputError, match="rl.validation_samples is the old name of rl.eval_samples"):
        load_config(RLConfig, both)
    with pytest.raises(InputError, match="old name of --rl.eval_samples"):
        load_config(RLConfig, None, {"rl.validation_samples": "3", "rl.eval_samples": "4"})


def test_a_run_saved_under_old_names_is_not_stale(tmp_path: Path) -> None:
    """A stage finished before the rename (its saved config holds the old key) is current, not redone."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"common": {"workdir": str(tmp_path / "run")},
                                      "synthetic": {"n_users": 5, "n_items": 4}}))
    (stage,) = pipeline.plan(pipeline.read_config_file(config))
    cfg = load_config(pipeline.schema_of(stage), config)
    folder = stage.marker_dir(cfg)
    folder.mkdir(parents=True)
    save_resolved_config(cfg, folder)
    assert pipeline.stale_reason(stage, str(config), {}) is None
    marker = folder / "synthetic.config.yaml"
    marker.write_text(marker.read_text().replace("output_dir:", "output_path:"))
    assert "output_path:" in marker.read_text()
    assert pipeline.stale_reason(stage, str(config), {}) is None


def test_run_all_accepts_old_names_on_the_command_line() -> None:
    """run_all checks every option before a stage runs: an old key name is not an unknown option."""
    sections = pipeline.read_config_file(Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml")
    stages = pipeline.plan(sections)
    assert pipeline.check_overrides({"rl.validation_samples": "3", "torch_threads": "1"}, stages, sections) == []
    assert pipeline.check_overrides({"rl.validation_samplez": "3"}, stages, sections)
