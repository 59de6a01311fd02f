"""One run per workdir, and a stage that dies with its runner.

``run_all.sh`` holds ``<workdir>/.run_all.lock`` (PID, host, start time, command) while it runs.
A second ``run_all.sh`` on that workdir, or a stage script started by hand there, is refused while
the holder lives; a lock whose PID is dead is taken over with a warning.

Each stage runs in its own process group.  Its first process gets a parent-death signal (Linux),
and every stage process started under ``run_all.sh`` (torchrun/accelerate ranks included, they
inherit the environment) watches the runner's PID and ends its process group when the runner is gone.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from minionerec.errors import InputError

logger = logging.getLogger("minionerec.runlock")
LOCK_NAME = ".run_all.lock"
#: Set by run_all for its stages: the runner's PID (it holds the workdir's lock).
RUNNER_ENV = "MINIONEREC_RUNNER_PID"
_PR_SET_PDEATHSIG = 1


def lock_path(workdir: str | Path) -> Path:
    return Path(workdir) / LOCK_NAME


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def read_lock(workdir: str | Path) -> dict[str, Any] | None:
    """The lock's record, or None when there is no lock (an unreadable one counts as stale)."""
    path = lock_path(workdir)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": -1}
    return record if isinstance(record, dict) else {"pid": -1}


def _holder_alive(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if record.get("host") not in (None, socket.gethostname()):
        return True  # another machine's run on a shared disk: its PID cannot be checked from here
    return _alive(pid)


def _refusal(path: Path, record: dict[str, Any]) -> InputError:
    return InputError(
        f"{path}: workdir in use by PID {record.get('pid')} on {record.get('host')} since {record.get('started')} "
        f"({record.get('command')}); wait for it, stop it, or use another --workdir"
    )


def acquire(workdir: str | Path, command: list[str]) -> Path:
    """Take the workdir's lock for this process; refuse when a live process holds it."""
    path = lock_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(command)}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = read_lock(workdir) or {"pid": -1}
            if _holder_alive(held):
                raise _refusal(path, held) from None
            logger.warning("%s: taking over a stale lock of PID %s (%s), which is no longer running",
                           path, held.get("pid"), held.get("command", "unreadable record"))
            _end_group(held.get("stage_pgid"))
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out)
        return path
    raise InputError(f"{path}: could not take the lock (another run took it at the same moment); retry")


@contextmanager
def held(workdir: str | Path, command: list[str]) -> Iterator[Path]:
    """Hold the workdir's lock for the block (a no-op when this process holds it already)."""
    path = lock_path(workdir)
    record = read_lock(workdir)
    if record is not None and record.get("pid") == os.getpid():
        yield path
        return
    acquire(workdir, command)
    try:
        yield path
    finally:
        release(workdir)


def note_stage(workdir: str | Path, pgid: int) -> None:
    """Record the running stage's process group in this process's lock (a stale lock's group is ended)."""
    record = read_lock(workdir)
    if record is None or record.get("pid") != os.getpid():
        return
    path = lock_path(workdir)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**record, "stage_pgid": pgid}), encoding="utf-8")
    os.replace(tmp, path)


def _end_group(pgid: Any, timeout: float = 10.0) -> None:
    """Kill what is left of a dead runner's stage (it should already be dying) and wait until it is gone."""
    if not isinstance(pgid, int) or pgid <= 1:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if not _group_running(pgid):
            return  # only zombies are left
        time.sleep(0.1)
    logger.warning("process group %d of the previous run did not end within %.0f s", pgid, timeout)


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies do not count; without /proc: assume so)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def release(workdir: str | Path) -> None:
    """Drop the lock if this process holds it."""
    record = read_lock(workdir)
    if record is not None and record.get("pid") == os.getpid():
        lock_path(workdir).unlink(missing_ok=True)


def check_free(workdir: str | Path) -> None:
    """For a stage script: refuse to start while another process's run_all holds this workdir."""
    record = read_lock(workdir)
    if record is None or not _holder_alive(record):
        return
    if str(record.get("pid")) == os.environ.get(RUNNER_ENV):
        return  # started by the holder itself
    raise _refusal(lock_path(workdir), record)


def die_with_parent() -> None:
    """``preexec_fn`` of a stage: SIGTERM when the runner dies (Linux; kept across the wrappers' exec)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def watch_runner(interval: float = 1.0) -> None:
    """In a stage under run_all: end this process group once the runner's PID is gone.

    Covers what the parent-death signal does not: ranks and helpers started by accelerate/torchrun.
    """
    pid = int(os.environ.get(RUNNER_ENV, "0") or 0)
    if pid <= 0:
        return

    def watch() -> None:
        while _alive(pid) and os.getppid() != 1:
            time.sleep(interval)
        logger.error("run_all (PID %d) is gone: stopping this stage", pid)
        os.killpg(os.getpgrp(), signal.SIGTERM)
        time.sleep(5)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()
