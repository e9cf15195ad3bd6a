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
Path values in `inputs` stand for their content (sha256 of the file, or of every file of a folder).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
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
            return {"path": str(value), "files": {str(p.relative_to(value)): sums[str(p)] for p in files}}
        if value.is_file():
            return {"path": str(value), "sha256": file_checksums([value])[str(value)]}
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


class Stage:
    """An artifact at `<folder>/<name>` with its record `<folder>/<name>.stage.json`."""

    def __init__(self, folder: str | Path, name: str, inputs: Mapping[str, Any]):
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"stage name {name!r}: expected a plain file or folder name")
        self.name = name
        self.path = Path(folder) / name
        self.record = Path(folder) / f"{name}.stage.json"
        self.inputs = canonical(dict(inputs))
        self.hash = inputs_hash(inputs)

    def __repr__(self) -> str:
        return f"Stage({str(self.path)!r}, done={self.done})"

    @property
    def done(self) -> bool:
        """The artifact exists and was built from the same inputs."""
        try:
            record = atomic.read_json(self.record, None)
        except ValueError:
            return False
        return bool(record) and record.get("inputs_sha256") == self.hash and self.path.exists()

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a temporary path to write the artifact at; on success it replaces `path`."""
        tmp = atomic.temp_name(self.path, "partial")
        atomic.remove_path(tmp)
        start = time.perf_counter()
        try:
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"stage {self.name!r} wrote nothing at the path it was given ({tmp})")
            self.record.unlink(missing_ok=True)  # from here until the new record, the artifact is not 'done'
            atomic.replace_path(tmp, self.path)
            atomic.write_json(self.record, {"name": self.name, "inputs_sha256": self.hash, "inputs": self.inputs,
                                            "built": _now(), "seconds": round(time.perf_counter() - start, 3)})
        finally:
            atomic.remove_path(tmp)

    def __call__(self, fn: Callable[[Path], Any]) -> Path:
        """Decorator form: call `fn(out)` if the stage is not done; return `path` either way."""
        if not self.done:
            with self.build() as out:
                fn(out)
        return self.path


def _now() -> str:
    from .provenance import now

    return now()
