"""Reuse an artifact while its inputs are unchanged: the stage helper chapters build expensive things with.

    stage = run.stage("tokenizer", {"params": params["tokenizer"], "data": data_files})
    if not stage.done:
        with stage.build() as out:       # a temporary path: write a file or a folder there
            train(params, out)
    card = stage.path                    # artifacts/tokenizer

or, as a decorator that runs the function only when needed and returns the path:

    @run.stage("tokenizer", {...})
    def card(out): train(params, out)

The hash of `inputs` is stored in `artifacts/<name>.stage.json`, written after the artifact is
renamed into place; a failed build leaves the previous artifact and its record untouched.
Path values in `inputs` stand for their content (sha256 of the file, or of every file of a folder,
with names relative to it): where a file lies does not change the hash, so runs in different
folders that build the same thing from the same inputs agree on it.

With a `shared` folder (`study.shared_artifacts`: the points of a scan), the artifact is built once
into `<shared>/<name>-<hash>` and every run links its `artifacts/<name>` there (a relative
symlink). The decorator form holds a lock on the shared entry while it checks and builds, so two
runs in parallel wait for one build instead of doing it twice.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import atomic


def canonical(value: Any, key: str = "inputs") -> Any:
    """JSON-able form of stage inputs; a Path becomes {"path", "sha256"} of its content."""
    from .provenance import file_checksums

    if isinstance(value, Path):
        if value.is_dir():
            files = sorted(p for p in value.rglob("*") if p.is_file())
            sums = file_checksums(files)
            return {"files": {str(p.relative_to(value)): sums[str(p)] for p in files}}
        if value.is_file():
            return {"name": value.name, "sha256": file_checksums([value])[str(value)]}
        raise FileNotFoundError(f"stage input {key!r}: {value} does not exist")
    if isinstance(value, Mapping):
        return {str(k): canonical(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v, key) for v in value), key=json.dumps)
    value = atomic.jsonable(value)
    if not isinstance(value, (str, int, float, bool, type(None), list, dict)):
        raise TypeError(f"stage input {key!r}: cannot hash a {type(value).__name__} (use plain data or a Path)")
    return value


def inputs_hash(inputs: Mapping[str, Any]) -> str:
    text = json.dumps(canonical(dict(inputs)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


SHARED_HASH_CHARS = 16  # of the inputs hash in a shared entry's name
PUBLISH_WAIT_S = 120     # how long to wait for the record of an entry another process has just published


def content_digest(path: Path) -> str:
    """sha256 of what a built artifact holds (a file, or every file of a folder with its relative name)."""
    return inputs_hash({"content": Path(path)})


def _record_matches(record_path: Path, digest: str, artifact: Path) -> bool:
    try:
        record = atomic.read_json(record_path, None)
    except ValueError:
        return False
    return bool(record) and record.get("inputs_sha256") == digest and artifact.exists()


class StageError(RuntimeError):
    """A shared stage cannot be locked or published."""


class Stage:
    """An artifact at `<folder>/<name>` with its record `<folder>/<name>.stage.json` (optionally built in `shared`).

    The record holds the inputs hash and `content_sha256`, the digest of what was built: a stage built
    from this one depends on that, so a rebuilt upstream that came out different invalidates it."""

    def __init__(self, folder: str | Path, name: str, inputs: Mapping[str, Any], shared: str | Path | None = None):
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"stage name {name!r}: expected a plain file or folder name")
        self.name = name
        self.path = Path(folder) / name
        self.record = Path(folder) / f"{name}.stage.json"
        self.inputs = canonical(dict(inputs))
        self.hash = inputs_hash(inputs)
        self.shared = Path(shared) if shared else None
        if self.shared is not None:
            entry = f"{name}-{self.hash[:SHARED_HASH_CHARS]}"
            self.shared_path = self.shared / entry
            self.shared_record = self.shared / f"{entry}.stage.json"

    def __repr__(self) -> str:
        return f"Stage({str(self.path)!r}, done={self.done})"

    @property
    def shared_done(self) -> bool:
        return self.shared is not None and _record_matches(self.shared_record, self.hash, self.shared_path)

    @property
    def done(self) -> bool:
        """The artifact exists and was built from the same inputs (here, or as a complete shared entry)."""
        return _record_matches(self.record, self.hash, self.path) or self.shared_done

    def link(self) -> None:
        """Point `path` at the complete shared entry (a relative symlink) and copy its record as this run's (always:
        a shared entry rebuilt by another run has another content digest, which what is built from it must see)."""
        linked = self.path.is_symlink() and os.path.realpath(self.path) == os.path.realpath(self.shared_path)
        if not linked:
            self.record.unlink(missing_ok=True)
            atomic.remove_path(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = atomic.temp_name(self.path, "link")
            tmp.unlink(missing_ok=True)
            os.symlink(os.path.relpath(self.shared_path, self.path.parent), tmp)
            os.replace(tmp, self.path)
        atomic.write_json(self.record, {**atomic.read_json(self.shared_record, {}), "shared": str(self.shared_path)})

    def _clear_abandoned(self) -> None:
        """Under the lock: an entry with no record that nobody has touched for a while is a crashed publish."""
        path = self.shared_path
        if (path.exists() or path.is_symlink()) and not self.shared_done \
                and time.time() - path.lstat().st_mtime > PUBLISH_WAIT_S:
            atomic.remove_path(path)

    def _publish_shared(self, tmp: Path, start: float) -> None:
        """Rename the build into the shared folder, never over an entry another process published first; the record
        (its digest computed before) follows the rename at once, so an entry never stays without one for long."""
        record = self._record(start, content_sha256=content_digest(tmp))
        try:
            if self.shared_path.exists() or self.shared_path.is_symlink():
                raise FileExistsError(self.shared_path)
            os.rename(tmp, self.shared_path)
        except OSError:  # another process won the race (file systems whose lock did not hold): use its entry
            waited = 0.0
            while not self.shared_done and waited < PUBLISH_WAIT_S:
                time.sleep(1.0)
                waited += 1.0
            if not self.shared_done:
                raise StageError(f"{self.shared_path} exists without a complete record after {PUBLISH_WAIT_S} s "
                                 f"(an interrupted build?); remove it to rebuild") from None
            return
        atomic.write_json(self.shared_record, record)

    def _record(self, start: float, **extra) -> dict:
        return {"name": self.name, "inputs_sha256": self.hash, "inputs": self.inputs, "built": _now(),
                "seconds": round(time.perf_counter() - start, 3), **extra}

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a temporary path to write the artifact at; on success it replaces `path` (or becomes the shared entry)."""
        target = self.shared_path if self.shared is not None else self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic.temp_name(target, f"partial-{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
        start = time.perf_counter()
        try:
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"stage {self.name!r} wrote nothing at the path it was given ({tmp})")
            if self.shared is not None:
                self._publish_shared(tmp, start)
                self.link()
            else:
                record = self._record(start, content_sha256=content_digest(tmp))
                self.record.unlink(missing_ok=True)  # from here until the new record, the artifact is not 'done'
                atomic.replace_path(tmp, self.path)
                atomic.write_json(self.record, record)
        finally:
            atomic.remove_path(tmp)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """While checking and building a shared entry, no other process builds the same one."""
        if self.shared is None:
            yield
            return
        lock = self.shared / f".{self.shared_path.name}.lock"
        held = atomic.locked(lock)
        try:
            held.__enter__()
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            raise StageError(f"cannot lock {lock} ({exc.strerror}): study.shared_artifacts needs a file system with "
                             f"flock across nodes (Lustre: mount with -o flock; NFSv4), or a folder per machine") from None
        try:
            yield
        finally:
            held.__exit__(None, None, None)

    def __call__(self, fn: Callable[[Path], Any]) -> Path:
        """Build with `fn(out)` unless done (a complete shared entry is linked, not rebuilt); return `path`."""
        with self._exclusive():
            if self.shared is not None:
                self._clear_abandoned()
            if self.shared_done:
                self.link()
            elif not self.done:
                with self.build() as out:
                    fn(out)
        return self.path


def _now() -> str:
    from .provenance import now

    return now()
