"""Reuse an artifact while its inputs are unchanged: the stage helper chapters build expensive things with.

    stage = run.stage("tokenizer", {"params": params["tokenizer"], "data": data_files})
    if not stage.done:
        with stage.build() as out:       # a temporary path: write a file or a folder there
            train(params, out)
    card = stage.path                    # artifacts/tokenizer

or, as a decorator that runs the function only when needed and returns the path:

    @run.stage("tokenizer", {...})
    def card(out): train(params, out)

One model of "done": the record `artifacts/<name>.stage.json` names the hash of the inputs, every file the build
wrote (size, time, sha256) and the content digest of the result, and the files still verify (`manifest`). A file
changed since (another command wrote into the folder, a truncated card) makes the stage not done: it is rebuilt and
the message names the file. The record is written after the artifact is renamed into place; a failed build leaves
the previous artifact and its record untouched, and a build killed half-way leaves a `.<name>.partial-*` folder
that the next build of the stage clears (under the run folder's lock).

Path values in `inputs` stand for their content (sha256 of the file, or of every file of a folder,
with names relative to it): where a file lies does not change the hash, so runs in different
folders that build the same thing from the same inputs agree on it. `content` says what a result is for the stages
built from it (a tokenizer folder: its card hashes, not its logs and timings), so an identical rebuild changes
nothing downstream.

With a `shared` folder (`study.shared_artifacts`: the points of a scan), the artifact is built once
into `<shared>/<name>-<hash>` and every run links its `artifacts/<name>` there (a relative
symlink). The decorator form holds a lock on the shared entry while it checks and builds, so two
runs in parallel wait for one build instead of doing it twice.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..hashing import json_sha256
from . import atomic, manifest


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
    return json_sha256(canonical(dict(inputs)))


SHARED_HASH_CHARS = 16  # of the inputs hash in a shared entry's name
PUBLISH_WAIT_S = 120  # how long to wait for the record of an entry another process has just published
PARTIAL = "partial"  # `.<name>.partial-<host>-<id>`: a build in progress (or abandoned by a killed one)
NEVER_BUILT, INPUTS_CHANGED = "never built", "its inputs changed"


def content_digest(path: Path, content: Callable[[Path], Any] | None = None, files: Mapping | None = None) -> str:
    """sha256 of what a built artifact holds: `content(path)` (what the stage declares its result to be, e.g. the
    card hashes of a tokenizer folder, never its logs or timings), else every file's name and sha256 (`files`: its
    manifest, when already taken)."""
    if content is not None:
        what = content(Path(path))
    else:
        what = manifest.sums(files if files is not None else manifest.manifest(path))
    return json_sha256(canonical(what))


def _why_not(record_path: Path, digest: str, artifact: Path) -> str | None:
    """None when the record names these inputs and the artifact still holds what was built; else why not."""
    try:
        record = atomic.read_json(record_path, None)
    except ValueError:
        return f"its record {record_path} is not valid JSON"
    if not record:
        return NEVER_BUILT
    if record.get("inputs_sha256") != digest:
        return INPUTS_CHANGED
    if not isinstance(record.get("files"), dict):
        return f"its record {record_path} names no content to verify (built by an older TREASURE)"
    difference = manifest.first_difference(artifact, record["files"])
    return None if difference is None else f"{artifact}: {difference}"


class StageError(RuntimeError):
    """A shared stage cannot be locked or published."""


class Stage:
    """An artifact at `<folder>/<name>` with its record `<folder>/<name>.stage.json` (optionally built in `shared`).

    The record holds the inputs hash, every file the build wrote (`files`: size, time, sha256; see `manifest`) and
    `content_sha256`, the digest of what was built (`content`): a stage built from this one depends on that, so a
    rebuilt upstream that came out different invalidates it, and one that came out the same does not. The stage is
    done only while its files still verify: a card or token file changed by hand or by another command is rebuilt.
    `guard()` is held while checking and building (the run folder's lock)."""

    def __init__(
        self,
        folder: str | Path,
        name: str,
        inputs: Mapping[str, Any],
        shared: str | Path | None = None,
        *,
        content: Callable[[Path], Any] | None = None,
        guard: Callable[[], AbstractContextManager] | None = None,
    ):
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"stage name {name!r}: expected a plain file or folder name")
        self.name = name
        self.path = Path(folder) / name
        self.record = Path(folder) / f"{name}.stage.json"
        self.inputs = canonical(dict(inputs))
        self.hash = inputs_hash(inputs)
        self.content = content
        self.guard = guard or contextlib.nullcontext
        self.shared = Path(shared) if shared else None
        if self.shared is not None:
            entry = f"{name}-{self.hash[:SHARED_HASH_CHARS]}"
            self.shared_path = self.shared / entry
            self.shared_record = self.shared / f"{entry}.stage.json"

    def __repr__(self) -> str:
        return f"Stage({str(self.path)!r}, done={self.done})"

    @property
    def shared_done(self) -> bool:
        return self.shared is not None and _why_not(self.shared_record, self.hash, self.shared_path) is None

    def why_not_done(self) -> str | None:
        """None when done (here, or as a complete shared entry), else why it must be built."""
        here = _why_not(self.record, self.hash, self.path)
        if here is None or self.shared_done:
            return None
        return here

    @property
    def done(self) -> bool:
        """The artifact was built from the same inputs and still holds what was built."""
        return self.why_not_done() is None

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
        """Under the locks: partial builds of this stage left by a killed process, and (shared) an entry that is not
        complete and that nobody has touched for a while (a crashed publish, or one whose files were changed)."""
        target = self.shared_path if self.shared is not None else self.path
        for partial in target.parent.glob(f".{target.name}.{PARTIAL}-*"):
            atomic.remove_path(partial)
        if self.shared is None:
            return
        path = self.shared_path
        if (
            (path.exists() or path.is_symlink())
            and not self.shared_done
            and time.time() - path.lstat().st_mtime > PUBLISH_WAIT_S
        ):
            self.shared_record.unlink(missing_ok=True)
            atomic.remove_path(path)

    def _publish_shared(self, tmp: Path, record: dict) -> None:
        """Rename the build into the shared folder, never over an entry another process published first; the record
        (its digest computed before) follows the rename at once, so an entry never stays without one for long."""
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
                raise StageError(
                    f"{self.shared_path} exists without a complete record after {PUBLISH_WAIT_S} s "
                    f"(an interrupted build?); remove it to rebuild"
                ) from None
            return
        atomic.write_json(self.shared_record, record)

    def _record(self, tmp: Path, start: float) -> dict:
        """The record of a finished build at `tmp` (its files keep their times when renamed into place)."""
        files = manifest.manifest(tmp)
        return {
            "name": self.name,
            "inputs_sha256": self.hash,
            "inputs": self.inputs,
            "built": _now(),
            "seconds": round(time.perf_counter() - start, 3),
            "content_sha256": content_digest(tmp, self.content, files),
            "files": files,
        }

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a temporary path to write the artifact at; on success it replaces `path` (or becomes the shared
        entry)."""
        with self.guard():
            target = self.shared_path if self.shared is not None else self.path
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = atomic.temp_name(target, f"{PARTIAL}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
            start = time.perf_counter()
            try:
                yield tmp
                if not tmp.exists():
                    raise FileNotFoundError(f"stage {self.name!r} wrote nothing at the path it was given ({tmp})")
                record = self._record(tmp, start)
                if self.shared is not None:
                    self._publish_shared(tmp, record)
                    self.link()
                else:
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
            raise StageError(
                f"cannot lock {lock} ({exc.strerror}): study.shared_artifacts needs a file system with "
                f"flock across nodes (Lustre: mount with -o flock; NFSv4), or a folder per machine"
            ) from None
        try:
            yield
        finally:
            held.__exit__(None, None, None)

    def __call__(self, fn: Callable[[Path], Any], log: Callable[[str], None] | None = None) -> Path:
        """Build with `fn(out)` unless done (a complete shared entry is linked, not rebuilt); return `path`.

        A stage whose files no longer verify is rebuilt, saying which file differs (`log`, default stderr)."""
        with self.guard(), self._exclusive():
            self._clear_abandoned()
            if self.shared_done:
                self.link()
                return self.path
            reason = _why_not(self.record, self.hash, self.path)
            if reason is not None:
                if reason not in (NEVER_BUILT, INPUTS_CHANGED):  # what was built changed, or cannot be verified
                    (log or _say)(f"stage {self.name}: {reason}; rebuilding it")
                with self.build() as out:
                    fn(out)
        return self.path


def _say(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def _now() -> str:
    from .provenance import now

    return now()
