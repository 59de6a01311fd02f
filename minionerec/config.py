"""Configs: one YAML file per dataset/experiment, one section per stage.

A config file looks like::

    common:                 # shared values; also the defaults of same-named stage keys
      dataset: ml-100k
      workdir: runs/ml-100k
      seed: 42
    data:
      input_path: ...
      output_dir: ${common.workdir}/data
    sft:
      learning_rate: 3e-4

Each stage declares its section as a dataclass (fields documented with
``metadata={"help": ...}``, TRL style) with a ``section`` class variable, and loads it with
:func:`load_config`.  Precedence, lowest first: dataclass default < ``common`` value of the same
name < the stage's YAML section < command line.  ``${section.key}`` inside a string is replaced
by that (resolved) value.  A key that the section's dataclass does not declare is an error.

A config may start from a base: ``include: base.yaml`` (a path relative to the including file, or a
list of them, merged in order) reads the base first and deep-merges the file's own sections over
it: a mapping merges key by key (``sft.task_weights`` too), any other value replaces the base's, and
``section: null`` drops a section of the base (its stage does not run).  An include cycle is an error.
So ``configs/office.yaml`` is ``configs/industrial.yaml`` plus the three values that differ.

Command-line overrides use ``--key value`` (the stage's own section, or ``common``) or
``--section.key value`` (any section; ``--sft.task_weights.next_sid 2`` reaches into a dict).

Key names: one concept has one name in every section.  A folder is ``*_dir`` (what a stage writes
into: ``output_dir``); a single file is ``*_path`` (``index_path``, ``item_json_path`` -- the
``<dataset>.item.json`` -- and a file a stage writes, ``sid.output_path``), except the names that
upstream's users type, which keep upstream's spelling (``train_file``, ``valid_file``, ``test_file``,
``info_file``).  The seeded held-out valid rows a stage scores on are ``eval_samples`` (HF's ``eval_``
prefix, as ``eval_steps``); torch's CPU threads are ``num_threads``.  Keys renamed to follow these
rules are listed in :data:`RENAMED_KEYS`: their old names are still read, for one release, from a
YAML file, a ``${section.key}`` reference and the command line, each with a one-time INFO line
naming the new key.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from minionerec.errors import InputError

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: Every section a config file may hold.  Keys inside a section are checked by its dataclass.
KNOWN_SECTIONS = (
    "common",
    "data",
    "synthetic",
    "text2emb",
    "sid",
    "convert",
    "sft",
    "rl",
    "evaluate",
    "baselines",
    "gpr",
)
#: The top-level key that layers a config on a base file (see :func:`read_config_file`).
INCLUDE_KEY = "include"

#: Keys renamed so that one concept has one name across stages (see the module docstring):
#: ``{section: {old key: new key}}``.  The old names are accepted for one release (YAML, ``${...}``
#: references, command line, and saved configs/attempt records of earlier runs), then this table goes.
RENAMED_KEYS: dict[str, dict[str, str]] = {
    "data": {"output_path": "output_dir"},
    "synthetic": {"output_path": "output_dir"},
    "text2emb": {"item_path": "item_json_path"},
    "sid": {"item_path": "item_json_path"},
    "convert": {"item_path": "item_json_path"},
    "sft": {"info_path": "info_file"},
    "rl": {"validation_samples": "eval_samples"},
    "baselines": {"torch_threads": "num_threads"},
}
_renames_announced: set[tuple[str, str]] = set()


def renamed_key(section: str, key: str, announce: bool = True) -> str:
    """The current name of ``section.key`` (``key`` itself unless :data:`RENAMED_KEYS` lists it).

    A renamed key logs, once per process, which key to write instead.
    """
    new = RENAMED_KEYS.get(section, {}).get(key)
    if new is None:
        return key
    if announce and (section, key) not in _renames_announced:
        _renames_announced.add((section, key))
        logger.info("%s.%s is renamed %s.%s (the old name is read for one release): write %s",
                    section, key, section, new, new)
    return new


def rename_keys(section: str, body: dict[str, Any], where: str, announce: bool = True) -> dict[str, Any]:
    """``body`` (one section's keys) with renamed keys under their new names; ``where`` tags the error
    raised when a body gives both the old and the new name."""
    if section not in RENAMED_KEYS or not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        new = renamed_key(section, key, announce)
        if new != key and new in body:
            raise InputError(f"{where}: {section}.{key} is the old name of {section}.{new}; give only {new}")
        out[new] = value
    return out


#: Keys that never change a stage's results (resume, logging, threads, workers): a change to one of them
#: does not make a finished stage stale, and the done-record leaves them out.
NON_RESULT_KEYS = frozenset({
    "resume", "resume_from_checkpoint", "report_to", "logging_steps", "num_threads",
    "dataloader_num_workers", "constrained_n_jobs",
})
#: Keys naming what a stage writes (its outputs), and keys naming folders too wide to be an input.
OUTPUT_KEYS = frozenset({"output_dir", "output_path", "ckpt_dir", "result_json"})
NOT_INPUT_KEYS = frozenset({"workdir"})


def result_config(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a stage's resolved config as a dict) without :data:`NON_RESULT_KEYS`."""
    return {k: v for k, v in values.items() if k not in NON_RESULT_KEYS}


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w]*)\.([A-Za-z_][\w.]*)\}")


@dataclasses.dataclass
class CommonConfig:
    """Values shared by every stage of one experiment; stage configs that need them subclass this."""

    section: ClassVar[str] = "common"

    dataset: str = dataclasses.field(
        default="", metadata={"help": "Dataset name; file names are derived from it (e.g. Industrial_and_Scientific)."}
    )
    workdir: str = dataclasses.field(
        default="runs/default", metadata={"help": "Root folder of every output of this experiment."}
    )
    seed: int = dataclasses.field(default=42, metadata={"help": "Global seed; every stage derives its RNGs from it."})
    holdout_seed: int = dataclasses.field(
        default=-1, metadata={"help": "Seed that picks the held-out valid users (the eval_samples of sft, rl "
                              "and baselines); -1 = seed.  Fix it to vary one stage's seed without "
                              "changing which users every stage holds out."})
    category: str = dataclasses.field(
        default="",
        metadata={"help": "Category of the title prompts, as upstream's --category: a dataset name mapped as upstream "
                  "does (Industrial_and_Scientific -> 'industrial and scientific items'), or a phrase. "
                  "Empty: the dataset name."},
    )
    category_phrase: str = dataclasses.field(
        default="", metadata={"help": "Free prompt phrase used verbatim for {category} (wins over category)."},
    )
    allow_shared_sids: bool = dataclasses.field(
        default=False,
        metadata={"help": "Accept an index/catalogue in which several items share one SID (upstream's released "
                  "indexes need it); false: SFT, RL and evaluation refuse it."},
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def parse_cli(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    """Split ``argv`` into the config path and ``{"key" or "section.key": raw value}`` overrides.

    Accepts ``--config PATH`` (or a first positional ``PATH.yaml``), ``--key value``,
    ``--key=value``, ``--key v1 v2 ...`` (a list) and a bare ``--flag`` (meaning ``true``).  Values stay strings here; they
    are converted to each field's type by :func:`load_config`.
    """
    config_path: str | None = None
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            if config_path is None and i == 0 and arg.endswith((".yaml", ".yml")):
                config_path = arg
                i += 1
                continue
            raise InputError(f"unexpected argument {arg!r}: options are written --key value or --section.key value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            values = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                values.append(argv[i + 1])
                i += 1
            # several values are a list, as upstream's argparse nargs="+" (--num_emb_list 256 256 256)
            value = values[0] if len(values) == 1 else values if values else "true"
        key = key.replace("-", "_") if "." not in key else key
        if not key:
            raise InputError(f"empty option name in {arg!r}")
        if key == "config":
            if isinstance(value, list):
                raise InputError(f"--config takes one YAML file, got {' '.join(value)}")
            config_path = value
        else:
            overrides[key] = value
        i += 1
    return config_path, overrides


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def read_config_file(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read a YAML config into ``{section: {key: value}}``: its ``include:`` bases first, then its own
    sections deep-merged over them (see the module docstring); section names are checked."""
    if path is None:
        return {}
    return _read_layers(Path(path), ())


def _read_layers(path: Path, chain: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    """One config file with its bases merged in; ``chain`` is the files that include it (cycle detection)."""
    if path.resolve() in chain:
        names = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise InputError(f"config include cycle: {names}; a config must not include itself, directly or not")
    raw = _read_yaml_mapping(path, chain)
    includes = raw.pop(INCLUDE_KEY, None)
    if includes is None:
        includes = []
    elif isinstance(includes, str):
        includes = [includes]
    elif not (isinstance(includes, list) and all(isinstance(i, str) for i in includes)):
        raise InputError(f"config file {path}: include must be a file name or a list of them, got {includes!r}")
    merged: dict[str, dict[str, Any]] = {}
    for base in includes:
        merged = deep_merge(merged, _read_layers(path.parent / base, (*chain, path.resolve())))
    for section, body in raw.items():
        if section not in KNOWN_SECTIONS:
            raise InputError(
                f"config file {path}: unknown section {section!r}; known sections: {', '.join(KNOWN_SECTIONS)}"
            )
        if body is not None and not isinstance(body, dict):
            raise InputError(f"config file {path}: section {section!r} must be a mapping of keys")
    raw = {section: rename_keys(section, body, f"config file {path}") for section, body in raw.items()}
    for section in [s for s, body in raw.items() if body is None and s in merged]:
        del merged[section], raw[section]  # ``section: null`` over a base drops the base's section
    return deep_merge(merged, {section: dict(body or {}) for section, body in raw.items()})


def _read_yaml_mapping(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        included = f" (included by {chain[-1]})" if chain else ""
        raise InputError(f"config file {path}{included} does not exist: pass an existing YAML file (see configs/)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(f"config file {path} must be a mapping of sections, got {type(raw).__name__}")
    return raw


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings merge key by key, any other value replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    schema: type[T],
    config_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    section: str | None = None,
) -> T:
    """Build the ``schema`` dataclass of one stage from a YAML file and CLI overrides.

    Raises :class:`InputError` for unknown keys, values of the wrong type and unresolvable
    ``${...}`` references.
    """
    section = section or schema.section  # type: ignore[attr-defined]
    from_cli: set[tuple[str, str]] = set()
    sections = _layered_sections(schema, config_path, overrides, section, from_cli)
    origin = _Origin(config_path, sections, from_cli, overrides or {})
    _check_keys(sections["common"], CommonConfig, "common", origin)
    _check_keys(sections[section], schema, section, origin)

    common = _fill_defaults(CommonConfig, sections["common"])
    stage = _fill_defaults(schema, sections[section])
    for name in _field_names(schema):
        if name not in sections[section] and name in common and name in sections["common"]:
            stage[name] = common[name]
    context = {"common": common, section: stage}
    for other, body in sections.items():
        context.setdefault(other, body)
    resolved = _resolve(context, section, lambda key: origin.of(section, key))
    values = {}
    for name, hint in _field_types(schema).items():
        try:
            values[name] = _coerce(resolved[name], hint, f"{section}.{name}")
        except InputError as exc:
            raise InputError(f"{exc} ({origin.of(section, name)})") from None
    for f in dataclasses.fields(schema):
        choices = f.metadata.get("choices")
        if choices and values[f.name] not in choices:
            raise InputError(f"{section}.{f.name} must be one of {', '.join(map(str, choices))}, got "
                             f"{values[f.name]!r} ({origin.of(section, f.name)})")
    return schema(**values)


class _Origin:
    """Says where a section's key got its value: the command line, the config file or the default."""

    def __init__(self, config_path: Any, sections: dict[str, dict[str, Any]], from_cli: set[tuple[str, str]],
                 overrides: dict[str, Any]) -> None:
        self.config_path, self.sections, self.from_cli, self.overrides = config_path, sections, from_cli, overrides

    def of(self, section: str, key: str) -> str:
        if (section, key) in self.from_cli:
            given = [f"--{k} {v}" for k, v in self.overrides.items()
                     if k.split(".")[:2] == [section, key] or k in (key, f"{section}.{key}")]
            return f"from the command line: {given[0] if given else '--' + section + '.' + key}"
        if key in self.sections.get(section, {}):
            return f"from config file {self.config_path}" if self.config_path else "its default"
        if section != "common" and key in self.sections.get("common", {}):
            return self.of("common", key)
        return "its default"


def explicit_keys(schema: type, config_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                  section: str | None = None) -> set[str]:
    """The stage's fields that the YAML (its section or ``common``) or the command line sets; the rest hold defaults."""
    section = section or schema.section  # type: ignore[attr-defined]
    sections = _layered_sections(schema, config_path, overrides, section)
    return {name for name in _field_names(schema) if name in sections[section] or name in sections["common"]}


def _layered_sections(schema: type, config_path: str | Path | None, overrides: dict[str, Any] | None,
                      section: str, from_cli: set[tuple[str, str]] | None = None) -> dict[str, dict[str, Any]]:
    """The YAML's sections with the command-line overrides applied (``common`` and ``section`` always present).

    ``from_cli`` collects the ``(section, key)`` pairs that the command line set.
    """
    from minionerec import upstream  # local import: upstream's rules may read this module's values

    sections = read_config_file(config_path)
    sections.setdefault("common", {})
    sections.setdefault(section, {})
    defaults = {f.name: field_default(f) for f in dataclasses.fields(schema)}
    overrides = upstream.translate(section, overrides or {}, lambda key: sections[section].get(key, defaults.get(key)))
    overrides = _rename_overrides(section, overrides)
    set_by_cli = _apply_overrides(sections, overrides, schema, section)
    if from_cli is not None:
        from_cli.update(set_by_cli)
    return sections


def _rename_overrides(section: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Command-line overrides with :data:`RENAMED_KEYS`' old names (``--old``, ``--section.old[.sub]``) renamed."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        target, dot, rest = key.partition(".") if "." in key else (section, "", key)
        head, sub, tail = rest.partition(".")
        new_head = renamed_key(target, head)
        new = key if new_head == head else (f"{target}." if dot else "") + new_head + sub + tail
        if new != key and new in overrides:
            raise InputError(f"--{key} (command line) is the old name of --{new}; give only --{new}")
        out[new] = value
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (safe to dump as YAML)."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def save_resolved_config(cfg: Any, out_dir: str | Path, common: CommonConfig | None = None,
                         outputs: list[Path] | None = None) -> Path:
    """Write ``<out_dir>/<section>.config.yaml`` with the resolved values, then the done-record, atomically.

    The config file is for people (and is compared by ``run_all.sh``); the done-record beside it
    (:mod:`minionerec.records`) fingerprints the stage's inputs and ``outputs`` (default: what its
    output keys name).  Call it as the stage's last act.
    """
    from minionerec.io import atomic_write_text  # local import: io imports nothing from here
    from minionerec.records import write_done_record

    section = type(cfg).section
    body: dict[str, Any] = {section: to_dict(cfg)}
    if common is not None:
        body = {"common": to_dict(common), **body}
    path = Path(out_dir) / f"{section}.config.yaml"
    atomic_write_text(path, yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    write_done_record(cfg, out_dir, outputs)
    return path


def load_common(config_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> CommonConfig:
    """The resolved ``common`` section (with ``--common.key`` / ``--key`` overrides applied)."""
    picked = {k.split(".", 1)[1] if k.startswith("common.") else k: v for k, v in (overrides or {}).items()
              if k.startswith("common.") or k in _field_names(CommonConfig)}
    return load_config(CommonConfig, config_path, {f"common.{k}": v for k, v in picked.items()}, section="common")


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------

def _field_names(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def _field_types(schema: type) -> dict[str, Any]:
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema)}


def field_default(f: dataclasses.Field) -> Any:
    """A schema field's default (``default`` or ``default_factory()``), or ``dataclasses.MISSING``."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _fill_defaults(schema: type, given: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        default = field_default(f)
        out[f.name] = given[f.name] if f.name in given else (None if default is dataclasses.MISSING else default)
    return out


def _check_keys(body: dict[str, Any], schema: type, section: str, origin: _Origin) -> None:
    allowed = _field_names(schema)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        problems = [f"{section}.{k} ({origin.of(section, k)}){did_you_mean(k, allowed, section)}" for k in unknown]
        raise InputError(f"unknown key(s) {'; '.join(problems)}; "
                         f"section {section!r} accepts: {', '.join(sorted(allowed))}")


def did_you_mean(key: str, candidates: list[str], section: str | None = None) -> str:
    """`` (did you mean --section.close_key?)``, or an empty string when no candidate is close."""
    close = closest(key, candidates)
    return f" (did you mean --{section + '.' if section else ''}{close}?)" if close else ""


def closest(key: str, candidates: list[str]) -> str | None:
    """The candidate most like ``key`` (difflib), or None when none is close."""
    close = difflib.get_close_matches(key, candidates, n=1)
    return close[0] if close else None


def schema_keys(schema: type) -> list[str]:
    """The keys a section's dataclass declares."""
    return _field_names(schema)


def _apply_overrides(sections: dict[str, dict[str, Any]], overrides: dict[str, Any], schema: type,
                     section: str) -> set[tuple[str, str]]:
    """Write the overrides into ``sections``; returns the ``(section, key)`` pairs they set."""
    own = set(_field_names(schema))
    common = set(_field_names(CommonConfig))
    set_by_cli: set[tuple[str, str]] = set()
    for key, value in overrides.items():
        if "." in key:
            target, _, rest = key.partition(".")
            if target not in KNOWN_SECTIONS:
                raise InputError(f"--{key} (command line): unknown section {target!r}"
                                 f"{did_you_mean(target, list(KNOWN_SECTIONS))}; "
                                 f"known sections: {', '.join(KNOWN_SECTIONS)}")
        elif key in common:
            # a common key (workdir, seed, ...) must move the ${common.*} references too, and the stage's own copy
            if key in own and key in sections.get(section, {}):
                sections[section][key] = value
                set_by_cli.add((section, key))
            target, rest = "common", key
        elif key in own:
            target, rest = section, key
        else:
            raise InputError(
                f"--{key} (command line): unknown option for stage {section!r}"
                f"{did_you_mean(key, sorted(own | common))}; "
                f"it accepts: {', '.join(sorted(own | common))}"
            )
        set_by_cli.add((target, rest.split(".")[0]))
        body = sections.setdefault(target, {})
        *parents, leaf = rest.split(".")
        for parent in parents:
            child = body.get(parent)
            if child is None:
                child = body[parent] = {}
            if not isinstance(child, dict):
                raise InputError(f"--{key}: {target}.{parent} is not a mapping")
            body = child
        body[leaf] = value
    return set_by_cli


def _resolve(context: dict[str, dict[str, Any]], section: str,
             origin: typing.Callable[[str], str] | None = None) -> dict[str, Any]:
    """Replace ``${sec.key}`` references in the values of ``context[section]``; ``origin(key)`` tags errors."""

    def lookup(sec: str, dotted: str, stack: tuple[str, ...]) -> Any:
        ref = f"{sec}.{dotted}"
        if ref in stack:
            raise InputError(f"config: circular reference {' -> '.join(stack + (ref,))}")
        node: Any = context.get(sec)
        head, dot, rest = dotted.partition(".")
        for part in [renamed_key(sec, head), *(rest.split(".") if dot else [])]:
            if not isinstance(node, dict) or part not in node:
                raise InputError(f"config: reference ${{{ref}}} does not name a key")
            node = node[part]
        return substitute(node, stack + (ref,))

    def substitute(value: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(value, str):
            whole = _INTERPOLATION.fullmatch(value)
            if whole:
                return lookup(whole.group(1), whole.group(2), stack)
            return _INTERPOLATION.sub(lambda m: str(lookup(m.group(1), m.group(2), stack)), value)
        if isinstance(value, dict):
            return {k: substitute(v, stack) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v, stack) for v in value]
        return value

    resolved = {}
    for key, value in context[section].items():
        try:
            resolved[key] = substitute(value, (f"{section}.{key}",))
        except InputError as exc:
            raise InputError(f"{exc} in {section}.{key} ({origin(key)})" if origin else str(exc)) from None
    return resolved


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Convert a YAML or CLI value to the field's annotated type (or raise InputError)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null", "~"}):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{name}: cannot be {value!r}")
    if hint is Any:
        return _parse_scalar(value) if isinstance(value, str) else value
    if origin in (list, tuple):
        items = value
        if isinstance(value, str):
            parsed = _parse_scalar(value)
            items = parsed if isinstance(parsed, list) else [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(items, (list, tuple)):
            items = [items]
        inner = args[0] if args else Any
        converted = [_coerce(v, inner, name) for v in items]
        return converted if origin is list else tuple(converted)
    if origin is dict or hint is dict:
        if isinstance(value, str):
            value = _parse_scalar(value)
        if not isinstance(value, dict):
            raise InputError(f"{name}: expected a mapping, got {value!r}")
        if args:
            return {_coerce(k, args[0], name): _coerce(v, args[1], f"{name}.{k}") for k, v in value.items()}
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, str)) and str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        raise InputError(f"{name}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise InputError(f"{name}: expected an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}: expected an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise InputError(f"{name}: expected an integer, got {value!r}")
        return int(as_float)
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}: expected a number, got {value!r}") from None
    if hint is str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise InputError(f"{name}: expected a string, got {value!r}")
        return str(value)
    return value


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value
