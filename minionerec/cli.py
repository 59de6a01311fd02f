"""The runner behind every stage script.

A stage script declares its config dataclass and a ``main(cfg)`` and ends with::

    if __name__ == "__main__":
        run_stage(MyStageConfig, main)

``run_stage`` parses ``[CONFIG.yaml] [--config CONFIG.yaml] [--key value ...]``, builds the
config (:mod:`minionerec.config`), sets up logging, and turns :class:`InputError` into one line
on stderr with exit code 2.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from minionerec import upstream
from minionerec.config import CommonConfig, field_default, load_common, load_config, parse_cli
from minionerec.errors import InputError

T = TypeVar("T")
logger = logging.getLogger("minionerec")


def setup_logging(level: str | int | None = None) -> None:
    """Log to stderr as ``time level name: message``; on non-main ranks only warnings."""
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
    chosen = level or os.environ.get("MINIONEREC_LOG_LEVEL", "INFO")
    if rank != 0:
        chosen = "WARNING"
    logging.basicConfig(
        level=chosen,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for noisy in ("faiss", "faiss.loader", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # TRL's generation unwrapper reads transformers' renamed attribute every GRPO step; nothing for the user to do
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    deepspeed_logger = logging.getLogger("DeepSpeed")  # deepspeed's own logger (prints to stdout, no propagation)
    if not any(isinstance(f, _CpuAcceleratorNotice) for f in deepspeed_logger.filters):
        deepspeed_logger.addFilter(_CpuAcceleratorNotice())


class _CpuAcceleratorNotice(logging.Filter):
    """Drops DeepSpeed's "Setting accelerator to CPU" notice on a machine without CUDA.

    accelerate imports deepspeed (when installed) in every ``save_pretrained``/``unwrap_model``, even in runs that
    do not use it; on a CPU machine the notice is expected.  With a CUDA device present it is kept: then it
    means DeepSpeed failed to detect the GPU.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Setting accelerator to CPU"):
            return True
        import torch

        return torch.cuda.is_available()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when installed) torch."""
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def process_state(device: str = "auto") -> Any:
    """accelerate's ``PartialState`` for this process: rank, world size and device.

    Ranks started by ``accelerate launch``/``torchrun`` on a machine without an accelerator (or with
    ``device: cpu``) are CPU ranks.  accelerate counts them only when told ``cpu=True``; otherwise every
    rank believes it is alone and does all the work.
    """
    from accelerate import PartialState

    from minionerec.device import accelerator_available

    return PartialState(cpu=device == "cpu" or (device == "auto" and not accelerator_available()))


def parse_stage_args(schema: type[T], argv: list[str] | None = None) -> tuple[T, CommonConfig, str | None]:
    """``(stage config, common config, config path)`` from the command line."""
    config_path, overrides = parse_cli(sys.argv[1:] if argv is None else argv)
    cfg = load_config(schema, config_path, overrides)
    common = load_common(config_path, {k: v for k, v in overrides.items() if k.startswith("common.")})
    return cfg, common, config_path


def stage_help(schema: type, hidden: tuple[str, ...] = (), resolved: Any = None, source: str = "") -> str:
    """``--help`` text of a stage script: usage, then every key (but ``hidden``) with its type, default and
    description.  With ``resolved`` (the stage's config built from ``source``, a config file and overrides), a key
    whose value differs from its default also shows that value."""
    section = getattr(schema, "section", "stage")
    lines = [f"usage: python {Path(sys.argv[0]).name} [CONFIG.yaml] [--key value | --{section}.key value ...]", ""]
    doc = (schema.__doc__ or "").strip().splitlines()
    if doc and not doc[0].startswith(f"{schema.__name__}("):  # not dataclass's generated signature
        lines += [doc[0], ""]
    if resolved is not None:
        lines.append(f"keys of the '{section}' section (YAML or command line); '= value' is what {source} resolves "
                     "to where it differs from the default:")
    else:
        lines.append(f"keys of the '{section}' section (YAML or command line):")
    for f in dataclasses.fields(schema):
        if f.name in hidden:
            continue
        default = field_default(f)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        shown = "required" if default is dataclasses.MISSING else f"default {default!r}"
        value = getattr(resolved, f.name, dataclasses.MISSING) if resolved is not None else dataclasses.MISSING
        given = f" = {value!r}" if value is not dataclasses.MISSING and value != default else ""
        lines.append(f"  --{f.name} ({kind}, {shown}){given}")
        if f.metadata.get("help"):
            lines.append(f"      {f.metadata['help']}")
        if f.metadata.get("choices"):
            lines.append(f"      one of: {', '.join(map(str, f.metadata['choices']))}")
    aliases = upstream.help_text(section)
    return "\n".join(lines + (["", aliases] if aliases else []))


def help_text(args: list[str], *schemas: type, hidden: tuple[str, ...] = ()) -> str:
    """The ``--help`` page of ``schemas``; when ``args`` name a config file (and overrides), with the values they
    resolve to.  A config that does not resolve is reported under the page, which still lists the defaults."""
    rest = [a for a in args if a not in ("-h", "--help")]
    try:
        config_path, overrides = parse_cli(rest)
    except InputError as exc:
        config_path, overrides, problem = None, {}, str(exc)
    else:
        problem = ""
    pages = []
    for schema in schemas:
        resolved = None
        if config_path is not None or overrides:
            try:
                resolved = load_config(schema, config_path, overrides)
            except InputError as exc:
                problem = problem or str(exc)
        source = " ".join(rest)
        pages.append(stage_help(schema, hidden, resolved, source))
    if problem:
        pages.append(f"note: the values of {' '.join(rest)} could not be resolved: {problem}")
    return "\n\n".join(pages) + "\n"


def run_stage(schema: type[T], main: Callable[[T], Any], argv: list[str] | None = None) -> Any:
    """Parse args into ``schema`` and run ``main(cfg)`` inside :func:`run_cli` (``--help``, InputError, exit)."""
    return run_cli(lambda args: main(parse_stage_args(schema, args)[0]), argv, schema)


def run_method_stage(schema: type[T], method: str, main: Callable[[T], Any], argv: list[str] | None = None) -> Any:
    """A script of one SID method (``rq/rqvae.py``, ...): the method is the script's own, so ``--help`` does
    not list ``method`` and a ``--method`` on the command line is refused (a config's ``sid.method`` is not)."""

    def build_and_run(args: list[str]) -> Any:
        names = ("method", f"{schema.section}.method")  # type: ignore[attr-defined]
        given = [key for key in parse_cli(args)[1] if key in names]
        if given:
            raise InputError(f"--{given[0]}: {Path(sys.argv[0]).name} always runs {method}; "
                             f"for another method run its own script or rq/build_sids.sh --method NAME")
        return main(dataclasses.replace(parse_stage_args(schema, args)[0], method=method))  # type: ignore[type-var]

    return run_cli(build_and_run, argv, schema, hidden=("method",))


def run_cli(build_and_run: Callable[[list[str]], Any], argv: list[str] | None, *help_schemas: type,
            hidden: tuple[str, ...] = ()) -> Any:
    """The frame of every stage script: ``--help`` (the keys of ``help_schemas`` but ``hidden``), logging,
    InputError as one line with exit code 2, and a clean exit from torch.distributed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(help_text(args, *help_schemas, hidden=hidden))
        sys.exit(0)
    setup_logging()
    try:
        guard_workdir(args)
        result = build_and_run(args)
    except InputError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C, or run_all forwarding its SIGINT: one line, not a traceback
        logger.error("interrupted (SIGINT): stopped before finishing; outputs of this run may be incomplete")
        sys.exit(128 + signal.SIGINT)
    if close_process_group():
        exit_skipping_native_teardown()
    return result


def guard_workdir(args: list[str]) -> None:
    """Refuse a stage started by hand while run_all holds its workdir; under run_all, die with the runner."""
    from minionerec import runlock

    config_path, overrides = parse_cli(args)
    runlock.check_free(load_common(config_path, overrides).workdir)
    runlock.watch_runner()


def close_process_group() -> bool:
    """Leave torch.distributed cleanly after a multi-process run; True when this process was a rank of one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return False
    dist.barrier()
    dist.destroy_process_group()
    return True


def exit_skipping_native_teardown() -> None:
    """End a finished rank with exit code 0 without the interpreter's native teardown.

    On CPU ranks a native thread sometimes aborts during interpreter finalisation ("terminate called
    without an active exception", exit -6), after the process group is destroyed and the atexit
    handlers have run: about 1 run in 10 on a loaded 2-core machine. The outputs are complete by then,
    but torchrun would report the run as failed. So: run the atexit handlers, flush, and leave.
    """
    import atexit

    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def exit_on_input_error(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for CLI entry points that do not use :func:`run_stage` (e.g. subcommands)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            logger.error("%s", exc)
            sys.exit(2)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
