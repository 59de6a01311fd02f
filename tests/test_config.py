from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import yaml

from minionerec.config import load_config, parse_cli, save_resolved_config
from minionerec.errors import InputError


@dataclasses.dataclass
class DemoConfig:
    section: ClassVar[str] = "sft"
    learning_rate: float = 1e-4
    epochs: int = 1
    output_dir: str = "out"
    seed: int = 0
    freeze_llm: bool = False
    tasks: list[str] = dataclasses.field(default_factory=lambda: ["next_sid"])
    weights: dict[str, float] = dataclasses.field(default_factory=dict)
    base_model: str | None = None


def write(tmp_path, body):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_precedence_and_interpolation(tmp_path):
    path = write(tmp_path, {"common": {"workdir": "runs/x", "seed": 7},
                            "sft": {"learning_rate": "3e-4", "output_dir": "${common.workdir}/sft"}})
    cfg = load_config(DemoConfig, path, {"epochs": "3", "sft.weights.next_sid": "2"})
    assert cfg.learning_rate == pytest.approx(3e-4)
    assert cfg.epochs == 3
    assert cfg.output_dir == "runs/x/sft"
    assert cfg.seed == 7  # inherited from common
    assert cfg.weights == {"next_sid": 2.0}


def test_cli_parsing_flags_and_config():
    path, overrides = parse_cli(["cfg.yaml", "--freeze_llm", "--tasks", "a,b", "--sft.epochs=2"])
    assert path == "cfg.yaml"
    assert overrides == {"freeze_llm": "true", "tasks": "a,b", "sft.epochs": "2"}
    cfg = load_config(DemoConfig, None, overrides)
    assert cfg.freeze_llm is True and cfg.tasks == ["a", "b"] and cfg.epochs == 2


def test_cli_override_beats_common_and_none(tmp_path):
    path = write(tmp_path, {"common": {"seed": 7}})
    cfg = load_config(DemoConfig, path, {"seed": "9", "base_model": "none"})
    assert cfg.seed == 9 and cfg.base_model is None


@dataclasses.dataclass
class WorkdirConfig:
    section: ClassVar[str] = "sft"
    workdir: str = "runs"
    seed: int = 0
    output_dir: str = "out"


def test_a_common_key_on_the_command_line_moves_the_common_references(tmp_path):
    path = write(tmp_path, {"common": {"workdir": "runs/x", "seed": 7},
                            "sft": {"seed": 8, "output_dir": "${common.workdir}/sft"}})
    cfg = load_config(WorkdirConfig, path, {"workdir": "runs/y", "seed": "5"})
    assert (cfg.workdir, cfg.output_dir, cfg.seed) == ("runs/y", "runs/y/sft", 5)


@pytest.mark.parametrize(
    "body, overrides, message",
    [
        ({"sft": {"learning_rat": 1}}, {}, "unknown key"),
        ({"sfft": {}}, {}, "unknown section"),
        ({}, {"nope": "1"}, "unknown option"),
        ({"sft": {"epochs": "many"}}, {}, "expected an integer"),
        ({"sft": {"output_dir": "${common.missing}"}}, {}, "does not name a key"),
    ],
)
def test_bad_configs_are_clear_errors(tmp_path, body, overrides, message):
    path = write(tmp_path, body)
    with pytest.raises(InputError, match=message):
        load_config(DemoConfig, path, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(DemoConfig, tmp_path / "absent.yaml")


def test_resolved_config_is_saved(tmp_path):
    cfg = load_config(DemoConfig, None, {"epochs": "4"})
    path = save_resolved_config(cfg, tmp_path)
    assert path.name == "sft.config.yaml"
    assert yaml.safe_load(path.read_text())["sft"]["epochs"] == 4


def test_help_lists_the_keys_and_exits_zero(capsys):
    from minionerec.cli import run_stage
    from minionerec.gpr import run_gpr_stage
    from minionerec.rl import RLConfig

    with pytest.raises(SystemExit) as stop:
        run_stage(RLConfig, lambda cfg: pytest.fail("--help must not run the stage"), ["configs/x.yaml", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "keys of the 'rl' section" in out and "--learning_rate (float, default 1e-05)" in out
    assert "GRPO on an SFT checkpoint" in out  # the schema's docstring
    with pytest.raises(SystemExit) as stop:
        run_gpr_stage(RLConfig, lambda cfg, gpr: pytest.fail("ran"), ["-h"])
    assert stop.value.code == 0 and "keys of the 'gpr' section" in capsys.readouterr().out


def test_errors_say_whether_the_value_came_from_the_file_or_the_command_line(tmp_path):
    path = write(tmp_path, {"sft": {"learning_rat": 1}})
    from_file = r"sft\.learning_rat \(from config file .*c\.yaml\) \(did you mean --sft\.learning_rate\?\)"
    with pytest.raises(InputError, match=from_file):
        load_config(DemoConfig, path)
    from_cli = r"sft\.epochz \(from the command line: --sft\.epochz 2\) \(did you mean --sft\.epochs\?\)"
    with pytest.raises(InputError, match=from_cli):
        load_config(DemoConfig, write(tmp_path, {}), {"sft.epochz": "2"})
    with pytest.raises(InputError, match=r"got 'abc' \(from the command line: --learning_rate abc\)"):
        load_config(DemoConfig, None, {"learning_rate": "abc"})
    with pytest.raises(InputError, match=r"expected an integer, got 'x' \(from config file"):
        load_config(DemoConfig, write(tmp_path, {"common": {"seed": "x"}}))  # inherited from common
    with pytest.raises(InputError, match=r"\$\{common\.nope\} does not name a key in sft\.output_dir \(from config"):
        load_config(DemoConfig, write(tmp_path, {"sft": {"output_dir": "${common.nope}"}}))
    with pytest.raises(InputError, match=r"--sfft\.epochs \(command line\): unknown section 'sfft' \(did you mean"):
        load_config(DemoConfig, None, {"sfft.epochs": "1"})


@dataclasses.dataclass
class ChoiceConfig:
    section: ClassVar[str] = "sid"
    method: str = dataclasses.field(default="a", metadata={"choices": ("a", "b")})


def test_a_field_with_choices_refuses_other_values(tmp_path):
    assert load_config(ChoiceConfig, None, {"method": "b"}).method == "b"
    with pytest.raises(InputError, match=r"sid\.method must be one of a, b, got 'c' \(from config file"):
        load_config(ChoiceConfig, write(tmp_path, {"sid": {"method": "c"}}))
