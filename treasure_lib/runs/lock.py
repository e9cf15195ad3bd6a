"""One writer per run folder: `treasure run`, `open_run`, a CLI step, a scan point and every stage build hold the
folder's lock while they write, so params.yaml, metrics.json and the artifacts always come from one set of params.

The lock is `<run>/.run.lock`, a `filelock` lock (flock where the file system has it). A second writer is refused at
once with one line that says who holds the folder (`.run.lock.json`: command, pid, host, since). The processes a
holder starts (the chapter kernels of `treasure run`, classifier workers, torchrun ranks) write under its lock: the
holder names its folders in the environment variable `TREASURE_RUN_LOCKS`, which they inherit. Within one process the
lock is re-entrant (a stage built inside `treasure run`'s own process holds it already).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import filelock

from ..errors import TreasureError

ENV = "TREASURE_RUN_LOCKS"
LOCK_FILE = ".run.lock"
HOLDER_FILE = ".run.lock.json"

_HELD: dict[str, int] = {}  # folders this process holds -> nesting depth


class RunBusy(TreasureError, RuntimeError):
    """Another process writes this run folder."""


def _key(run_dir: str | Path) -> str:
    return os.path.realpath(run_dir)


def _inherited() -> list[str]:
    return [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]


def held(run_dir: str | Path) -> bool:
    """This process, or the process that started it, holds the folder's lock."""
    key = _key(run_dir)
    return key in _HELD or key in _inherited()


def holder(run_dir: str | Path) -> str:
    """Who holds the folder, as recorded by the holder ("" when unknown)."""
    try:
        info = json.loads((Path(run_dir) / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return ""
    return (
        f"{info.get('what', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
        f"since {info.get('since', '?')})"
    )


@contextlib.contextmanager
def writing(run_dir: str | Path, what: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the run folder's lock while writing it; `what` names the writer for whoever is refused.

    Waits up to `wait_s` seconds, then raises RunBusy naming the holder."""
    key = _key(run_dir)
    if key in _inherited():
        yield
        return
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=wait_s)
    except filelock.Timeout:
        by = holder(folder) or "another process"
        raise RunBusy(
            f"{folder}: {by} is writing this run folder, so {what} cannot; wait for it to finish "
            f"or use another run folder"
        ) from None
    _HELD[key] = 1
    before = os.environ.get(ENV)
    os.environ[ENV] = os.pathsep.join([*_inherited(), key])
    try:
        _record(folder, what)
        yield
    finally:
        del _HELD[key]
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        (folder / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def _record(folder: Path, what: str) -> None:
    from . import atomic
    from .provenance import now

    atomic.write_json(
        folder / HOLDER_FILE, {"what": what, "pid": os.getpid(), "host": socket.gethostname(), "since": now()}
    )
