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
import hashlib
import json
import os
import time
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


def _record_matches(record_path: Path, digest: str, artifact: Path) -> bool:
    try:
        record = atomic.read_json(record_path, None)
    except ValueError:
        return False
    return bool(record) and record.get("inputs_sha256") == digest and artifact.exists()


class Stage:
    """An artifact at `<folder>/<name>` with its record `<folder>/<name>.stage.json` (optionally built in `shared`)."""

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
    def done(self) -> bool:
        """The artifact exists and was built from the same inputs (here, or in the shared folder: then it is linked)."""
        if _record_matches(self.record, self.hash, self.path):
            return True
        if self.shared is not None and _record_matches(self.shared_record, self.hash, self.shared_path):
            self._link()
            return True
        return False

    def _record(self, start: float, **extra) -> dict:
        return {"name": self.name, "inputs_sha256": self.hash, "inputs": self.inputs, "built": _now(),
                "seconds": round(time.perf_counter() - start, 3), **extra}

    def _link(self) -> None:
        """Point `path` at the complete shared entry and record it as this run's artifact."""
        self.record.unlink(missing_ok=True)
        atomic.remove_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic.temp_name(self.path, "link")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(self.shared_path, self.path.parent), tmp)
        os.replace(tmp, self.path)
        atomic.write_json(self.record, {**atomic.read_json(self.shared_record, {}), "shared": str(self.shared_path)})

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a temporary path to write the artifact at; on success it replaces `path` (or the shared entry)."""
        target, record = (self.shared_path, self.shared_record) if self.shared is not None else (self.path, self.record)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic.temp_name(target, "partial")
        atomic.remove_path(tmp)
        start = time.perf_counter()
        try:
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"stage {self.name!r} wrote nothing at the path it was given ({tmp})")
            record.unlink(missing_ok=True)  # from here until the new record, the artifact is not 'done'
            atomic.replace_path(tmp, target)
            atomic.write_json(record, self._record(start))
            if self.shared is not None:
                self._link()
        finally:
            atomic.remove_path(tmp)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """While checking and building a shared entry, no other process builds the same one."""
        if self.shared is None:
            yield
            return
        with atomic.locked(self.shared / f".{self.shared_path.name}.lock"):
            yield

    def __call__(self, fn: Callable[[Path], Any]) -> Path:
        """Decorator form: call `fn(out)` if the stage is not done; return `path` either way."""
        with self._exclusive():
            if not self.done:
                with self.build() as out:
                    fn(out)
        return self.path


def _now() -> str:
    from .provenance import now

    return now()
