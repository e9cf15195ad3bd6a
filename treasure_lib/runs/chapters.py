"""Chapters and their completion record: which `notebooks/NN_name.py` exist, what each one's result depends on.

A chapter's inputs are the resolved params, its own source, the library (version and a hash of
every treasure_lib source file, so an uncommitted edit counts), the versions of the packages
provenance records, and the inputs of the chapter before it (a chapter builds on the artifacts
of the earlier ones). `status.json` in the run folder records, per chapter, its state
(running / complete / failed), that inputs hash and the sha256 of the executed notebook it wrote: a chapter is
complete only while that notebook is still the one its run wrote.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..hashing import canonical_json, file_sha256, text_sha256, tree_sha256, tree_stamp
from . import atomic
from .folder import STATUS, RunError
from .provenance import LIB_DIR, now, package_versions, params_hash

CHAPTER_RE = re.compile(r"^(\d+)_[A-Za-z0-9_\-]+\.py$")


@dataclass(frozen=True)
class Chapter:
    name: str  # "01_data"
    source: Path  # notebooks/01_data.py

    @property
    def source_sha256(self) -> str:
        return file_sha256(self.source)


def discover(notebooks_dir: str | Path) -> list[Chapter]:
    """Every `NN_name.py` of `notebooks_dir`, in order of NN then name."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise RunError(f"chapters folder not found: {folder}")
    found = [p for p in folder.iterdir() if p.is_file() and CHAPTER_RE.match(p.name)]
    found.sort(key=lambda p: (int(CHAPTER_RE.match(p.name).group(1)), p.name))
    if not found:
        raise RunError(f"{folder}: no chapters (files named NN_name.py)")
    return [Chapter(p.stem, p) for p in found]


def select(chapters: list[Chapter], names: Iterable[str] | None) -> list[Chapter]:
    """The chapters named (as `01_data`, `01_data.py` or `01`), in book order; None means all."""
    if names is None:
        return list(chapters)
    wanted = []
    for name in names:
        stem = Path(name).stem
        match = [c for c in chapters if c.name == stem or c.name.split("_", 1)[0] == stem]
        if len(match) != 1:
            known = ", ".join(c.name for c in chapters)
            raise RunError(
                f"chapter {name!r}: {'no' if not match else 'more than one'} chapter matches; known: {known}"
            )
        wanted.append(match[0])
    return [c for c in chapters if c in wanted]


@functools.cache
def _lib_hash(lib_dir: Path, stamp: tuple) -> str:
    return tree_sha256(lib_dir, "*.py")


def library_fingerprint(lib_dir: Path = LIB_DIR) -> dict:
    """treasure_lib's version and a hash of its sources (cached while no file's mtime or size changes)."""
    return {"version": __version__, "source_sha256": _lib_hash(lib_dir, tree_stamp(lib_dir, "*.py"))}


def input_hashes(chapters: list[Chapter], resolved: Mapping) -> dict[str, str]:
    """{chapter name: sha256 of its inputs}, each chained to the chapter before it: the whole resolved params set
    (`Params.to_dict()`, hashed by `params_hash`), the chapter's source, the library.

    Package versions (torch, numpy, ...) count too: a new torch re-runs the chapters.
    """
    lib = library_fingerprint()
    versions = canonical_json(package_versions())
    base = f"{params_hash(resolved)}|{lib['version']}|{lib['source_sha256']}|{versions}"
    out, previous = {}, ""
    for chapter in chapters:
        previous = text_sha256(f"{base}|{chapter.source_sha256}|{previous}")
        out[chapter.name] = previous
    return out


class Status:
    """`status.json`: per-chapter state, written atomically after every change."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / STATUS
        try:
            self.data = atomic.read_json(self.path, {}) or {}
        except ValueError as exc:
            raise RunError(str(exc)) from None
        self.data.setdefault("chapters", {})

    def get(self, name: str) -> dict:
        return self.data["chapters"].get(name, {})

    def is_complete(self, name: str, inputs_sha256: str, notebook: Path) -> bool:
        """Recorded complete with these inputs, and the executed notebook is still the one that run wrote."""
        entry = self.get(name)
        return (
            entry.get("state") == "complete"
            and entry.get("inputs_sha256") == inputs_sha256
            and notebook.is_file()
            and entry.get("notebook_sha256") == file_sha256(notebook)
        )

    def set(self, name: str, **fields) -> None:
        entry = self.data["chapters"].setdefault(name, {})
        entry.update(fields, updated=now())
        atomic.write_json(self.path, self.data)
