"""Provenance of a run: which code, packages, seeds, input files and machine made it.

`provenance.json` lets a run folder alone say how to repeat it. Input checksums are cached by
(path, size, mtime) in a user cache (`$TREASURE_CACHE_DIR`, else `$XDG_CACHE_HOME/treasure`, else
`~/.cache/treasure`): data files can be many GB and rarely change between runs.
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from ..config import get_dotted
from ..hashing import file_sha256, json_sha256
from . import atomic

#: Distributions whose versions every provenance records (missing ones are written as null).
PACKAGES = (
    "treasure-lib",
    "torch",
    "numpy",
    "lightning",
    "vector-quantize-pytorch",
    "h5py",
    "pyarrow",
    "awkward",
    "faiss-cpu",
    "scikit-learn",
    "scipy",
    "matplotlib",
    "pythia8mc",
    "fastjet",
    "papermill",
    "jupytext",
    "jupyter-book",
)

#: Parameters that seed random numbers.
SEED_KEYS = ("study.seed", "generate.seed", "data.split.salt")

LIB_DIR = Path(__file__).resolve().parents[1]


def now() -> str:
    """Local time with its UTC offset, to the second (ISO 8601)."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def git_state(path: str | Path = LIB_DIR) -> dict:
    """{"commit", "dirty"} of the git work tree holding `path`; "unknown" outside git (or without git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": commit, "dirty": dirty}


def package_versions(names: Iterable[str] = PACKAGES) -> dict:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device() -> dict:
    """The accelerator torch would use: {"type": "cuda", "name": ..., "count": n} or {"type": "cpu", ...}."""
    info = {"type": "cpu", "name": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import torch
    except ImportError:
        return info
    if torch.cuda.is_available():
        info = {
            "type": "cuda",
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
            "cpu_count": os.cpu_count(),
        }
    return info


def cache_dir() -> Path:
    if os.environ.get("TREASURE_CACHE_DIR"):
        return Path(os.environ["TREASURE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "treasure"


def file_checksums(paths: Iterable[str | Path], cache_file: str | Path | None = None) -> dict[str, str]:
    """{path: sha256} for files, reusing a cached sum while the file's size and mtime are unchanged."""
    cache_file = Path(cache_file) if cache_file else cache_dir() / "sha256.json"
    paths = [Path(p) for p in paths]
    try:
        cache = atomic.read_json(cache_file, {})
    except ValueError:
        cache = {}  # a corrupt cache only costs recomputation
    out, fresh = {}, {}
    for path in paths:
        st = path.stat()
        key = str(path.resolve())
        entry = cache.get(key)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            out[str(path)] = entry["sha256"]
            continue
        digest = file_sha256(path)
        fresh[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        out[str(path)] = digest
    if fresh:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic.locked(cache_file.with_name(cache_file.name + ".lock")):
            try:
                cache = atomic.read_json(cache_file, {})
            except ValueError:
                cache = {}
            cache.update(fresh)
            atomic.write_json(cache_file, cache)
    return out


def data_files(patterns: Iterable[str]) -> list[Path]:
    """The files the patterns of `data.files` name (globs expanded, relative to the working directory), sorted,
    unique."""
    found: set[Path] = set()
    for pattern in patterns:
        matches = glob.glob(os.path.expanduser(pattern), recursive=True)
        found.update(Path(m) for m in matches if Path(m).is_file())
    return sorted(found)


def input_checksums(patterns: Iterable[str]) -> dict:
    """The input files `data.files` names (`patterns`), with their sizes and sha256."""
    patterns = list(patterns)
    files = data_files(patterns)
    sums = file_checksums(files)
    return {
        "patterns": patterns,
        "files": [{"path": str(p), "size": p.stat().st_size, "sha256": sums[str(p)]} for p in files],
    }


def _numbers_as_equal(value):
    """20.0 -> 20: params equal in Python hash the same (a default [20, 40] reads back as [20.0, 40.0])."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers_as_equal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_equal(v) for v in value]
    return value


def params_hash(resolved: Mapping) -> str:
    """sha256 of the whole resolved params set, the plain data `Params.to_dict()` gives and params.yaml holds (a
    `Params` hashes the same), as canonical JSON: the params' identity."""
    return json_sha256(_numbers_as_equal(atomic.jsonable(dict(resolved))))


def collect(resolved: Mapping, mode: str, started: str | None = None) -> dict:
    """Everything provenance.json records except the end time (see DESIGN.md, run folder), from the whole resolved
    params set (`Params.to_dict()`; a `Params` gives the same): its seeds, its hash and its input files."""
    return {
        "mode": mode,
        "started": started or now(),
        "finished": None,
        "git": git_state(),
        "versions": package_versions(),
        "seeds": {key: get_dotted(resolved, key) for key in SEED_KEYS},
        "params_sha256": params_hash(resolved),
        "inputs": input_checksums(get_dotted(resolved, "data.files", []) or []),
        "device": device(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python_executable": sys.executable,
        "cwd": os.getcwd(),
    }
