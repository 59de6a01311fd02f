"""Every shipped config, through every stage it names (torchtune's tests/recipes/test_configs.py habit), and the
layering rules of ``include:``.

Each ``configs/*.yaml`` is planned by the pipeline (:func:`minionerec.pipeline.plan`), and every stage's section is
resolved into the config class that stage's script runs with (:func:`minionerec.pipeline.schema_of`), with the
overrides run_all gives it and as a user runs it by hand; a bad key, type or reference in any config fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from minionerec import pipeline
from minionerec.config import CommonConfig, load_common, load_config, read_config_file
from minionerec.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_there_are_configs_to_check():
    assert {p.stem for p in CONFIGS} >= {"ml-100k", "synthetic", "synthetic_gpr", "industrial", "office",
                                          "industrial_partial", "scientific"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_section_resolves_through_its_stage(path):
    sections = read_config_file(path)
    stages = pipeline.plan(sections)
    assert stages, f"{path.name} runs no stage"
    load_common(path)
    read = {"common"}
    for stage in stages:
        schema = pipeline.schema_of(stage)
        assert getattr(schema, "section", None) == stage.section
        load_config(schema, path, dict(stage.overrides))  # as run_all runs it
        load_config(schema, path)  # as `bash STAGE.sh CONFIG` runs it
        read.add(stage.section)
    if "gpr" in sections:
        from minionerec.gpr import GPRConfig

        load_config(GPRConfig, path)
        read.add("gpr")
    assert set(sections) <= read, f"{path.name}: sections no stage reads: {sorted(set(sections) - read)}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_run_all_dry_run_checks_every_config(path):
    """run_all's own check of every section and first-stage input (missing raw data is the only allowed problem)."""
    stages = pipeline.plan(read_config_file(path))
    try:
        pipeline.check_stages(str(path), {}, stages, stages[0])
    except InputError as exc:
        problems = str(exc).splitlines()[1:]
        assert all("which does not exist" in p for p in problems), str(exc)


def test_paper_configs_are_marked_and_office_is_industrial_with_another_dataset():
    for name in ("industrial", "office"):
        assert (ROOT / "configs" / f"{name}.yaml").read_text().startswith("# PAPER RECIPE"), name
    industrial, office = (read_config_file(ROOT / "configs" / f"{n}.yaml") for n in ("industrial", "office"))
    assert {k: v for k, v in office.items() if k != "common"} == {k: v for k, v in industrial.items() if k != "common"}
    differ = {k for k in office["common"] if office["common"][k] != industrial["common"].get(k)}
    assert differ == {"dataset", "workdir", "category"}


def test_synthetic_gpr_is_synthetic_plus_gpr():
    plain, gpr = (read_config_file(ROOT / "configs" / f"{n}.yaml") for n in ("synthetic", "synthetic_gpr"))
    assert "gpr" in gpr and "baselines" not in gpr
    for section in ("data", "synthetic", "text2emb", "convert", "sft", "rl", "evaluate"):
        assert gpr[section] == plain[section], section


def write(path: Path, body: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body))
    return path


def test_include_deep_merges_relative_to_the_including_file(tmp_path):
    write(tmp_path / "base" / "base.yaml", {"common": {"dataset": "A", "seed": 1},
                                            "sft": {"learning_rate": 1e-3, "task_weights": {"next_sid": 1.0,
                                                                                            "sid2title": 1.0}},
                                            "baselines": {"patience": 2}})
    child = write(tmp_path / "base" / "sub" / "child.yaml", {
        "include": "../base.yaml", "common": {"seed": 7}, "sft": {"task_weights": {"sid2title": 0.0}},
        "baselines": None})
    sections = read_config_file(child)
    assert sections["common"] == {"dataset": "A", "seed": 7}
    assert sections["sft"] == {"learning_rate": 1e-3, "task_weights": {"next_sid": 1.0, "sid2title": 0.0}}
    assert "baselines" not in sections  # `section: null` drops the base's section
    assert load_config(CommonConfig, child).seed == 7


def test_a_null_section_without_a_base_is_still_an_empty_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("common: {dataset: A}\ntext2emb:\n")
    assert read_config_file(path)["text2emb"] == {}


def test_include_cycle_names_the_chain(tmp_path):
    write(tmp_path / "a.yaml", {"include": "b.yaml"})
    write(tmp_path / "b.yaml", {"include": "a.yaml"})
    with pytest.raises(InputError, match=r"include cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        read_config_file(tmp_path / "a.yaml")


def test_missing_or_bad_include_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml \(included by .*c\.yaml\) does not exist"):
        read_config_file(write(tmp_path / "c.yaml", {"include": "nope.yaml"}))
    with pytest.raises(InputError, match="include must be a file name or a list"):
        read_config_file(write(tmp_path / "d.yaml", {"include": {"a": 1}}))


def test_a_bad_key_in_a_layered_config_fails_its_stage(tmp_path):
    child = write(tmp_path / "c.yaml", {"include": str(ROOT / "configs" / "ml-100k.yaml"),
                                        "sft": {"learning_rat": 1.0}})
    sft = next(s for s in pipeline.plan(read_config_file(child)) if s.name == "sft")
    with pytest.raises(InputError, match=r"did you mean --sft\.learning_rate"):
        load_config(pipeline.schema_of(sft), child)


def test_help_with_a_config_shows_its_values(capsys):
    from minionerec.cli import help_text

    schema = pipeline.schema_of(next(s for s in pipeline.plan(read_config_file(ROOT / "configs/industrial.yaml"))
                                     if s.name == "sft"))
    text = help_text(["configs/industrial.yaml", "--help", "--sft.num_train_epochs", "3"], schema)
    assert "--base_model (str, default 'tiny-qwen2') = 'Qwen/Qwen2.5-1.5B-Instruct'" in text
    assert "--num_train_epochs (float, default 10.0) = 3.0" in text
    assert "--learning_rate (float, default 0.0003)\n" in text  # the config keeps the default: no value shown
    bad = help_text(["configs/nope.yaml", "--help"], schema)
    assert "--learning_rate (float, default 0.0003)" in bad and "could not be resolved" in bad
