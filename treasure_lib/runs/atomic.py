"""Atomic writes and a file lock: a reader never sees a half-written file.

Everything the run folder holds is written to a hidden temporary name in the same folder and
renamed into place (`os.replace` is atomic on one file system), so an interrupted write leaves
the previous file or nothing, never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def temp_name(path: str | Path, tag: str = "tmp") -> Path:
    """A hidden sibling of `path` that no reader takes for the real file (`.name.<tag>-<pid>`)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = temp_name(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays become Python numbers and lists, NaN/inf become null."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):  # dicts and typed params sections
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | Path, default: Any = None) -> Any:
    """The JSON in `path`, or `default` when the file does not exist; a corrupt file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def replace_path(src: Path, dst: Path) -> None:
    """Move a finished file or folder `src` onto `dst`, replacing what was there."""
    if dst.is_symlink():  # a link to a shared artifact: replace the link, never what it points at
        dst.unlink()
        os.replace(src, dst)
    elif dst.is_dir():
        trash = temp_name(dst, "old")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(lock_file: str | Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `lock_file` (created if needed; `filelock`, flock where the file system has it);
    yields False if non-blocking and busy. Each call is its own lock, also within one process."""
    import filelock

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_file), thread_local=False)
    try:
        lock.acquire(timeout=-1 if blocking else 0)
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
