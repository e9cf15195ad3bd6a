"""The one home of the library's sha256 hashes: what a file, a piece of data, a text or the library's source is.

Identities everywhere hang on these (card hashes, params and scan point ids, stage inputs and contents, chapter
inputs, generated samples, input checksums), so there is one canonical JSON form (`canonical_json`: sorted keys,
no spaces) and one framing of named parts (`name\\0content\\0`). Callers that keep a prefix of a hash (`[:16]`) cut
it themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BLOCK = 1 << 20  # files are read in 1 MiB blocks: memory stays flat for large files


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def text_sha256(text: str) -> str:
    """Hex sha256 of a text (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_json(value: Any) -> str:
    """The canonical JSON text of plain data (sorted keys, no spaces): equal data, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def json_sha256(value: Any) -> str:
    """Hex sha256 of `canonical_json(value)`."""
    return text_sha256(canonical_json(value))


def parts_sha256(parts: Iterable[tuple[str, str | bytes]]) -> str:
    """Hex sha256 of named parts in the order given, each framed as `name\\0content\\0`."""
    h = hashlib.sha256()
    for name, content in parts:
        h.update(name.encode() + b"\0" + (content.encode() if isinstance(content, str) else content) + b"\0")
    return h.hexdigest()


def tree_files(folder: str | Path, pattern: str = "*.py") -> list[Path]:
    """The files under `folder` matching `pattern`, at any depth, sorted."""
    return sorted(Path(folder).rglob(pattern))


def tree_stamp(folder: str | Path, pattern: str = "*.py") -> tuple:
    """(path, mtime, size) of every file of `tree_files`: a cache key that changes whenever a file may have."""
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in tree_files(folder, pattern))


def tree_sha256(folder: str | Path, pattern: str = "*.py") -> str:
    """Hex sha256 of the files of `tree_files`: each file's path relative to `folder` and its bytes."""
    folder = Path(folder)
    return parts_sha256((str(p.relative_to(folder)), p.read_bytes()) for p in tree_files(folder, pattern))
