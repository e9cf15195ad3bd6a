"""What a built artifact holds, file by file, so that "done" can be checked cheaply and never trusted blindly.

A manifest maps each file's name (relative to the artifact folder; a single-file artifact is `.`) to its
size, modification time and sha256. Verifying stats every file and reads only those whose size or time changed:
a card rewritten by another command, a truncated token file or a file added or removed since the build is found
without hashing gigabytes of untouched Parquet. Renames keep modification times, so a build verifies as built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from ..hashing import file_sha256


def _files(path: Path) -> Iterator[tuple[str, Path]]:
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                yield str(p.relative_to(path)), p
    elif path.is_file():
        yield ".", path  # a single-file artifact: the same name wherever it was built


def manifest(path: str | Path) -> dict[str, list]:
    """{relative name: [size, mtime_ns, sha256]} of every file of the artifact at `path`."""
    out = {}
    for name, p in _files(Path(path)):
        st = p.stat()
        out[name] = [st.st_size, st.st_mtime_ns, file_sha256(p)]
    return out


def sums(files: Mapping[str, list]) -> dict[str, str]:
    """{relative name: sha256}: what the artifact holds, without when it was written."""
    return {name: entry[2] for name, entry in files.items()}


def first_difference(path: str | Path, files: Mapping[str, list]) -> str | None:
    """None when `path` holds exactly the files of the manifest, else a few words naming the first file that
    differs (missing, added, or with other content)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return f"{path} is missing"
    found = dict(_files(path))
    for name in sorted(set(files) - set(found)):
        return f"{name} is missing"
    for name in sorted(set(found) - set(files)):
        return f"{name} was added after the build"
    for name, (size, mtime_ns, sha256) in sorted(files.items()):
        st = found[name].stat()
        if st.st_size != size:
            return f"{name} has changed ({st.st_size} bytes, built with {size})"
        if st.st_mtime_ns != mtime_ns and file_sha256(found[name]) != sha256:
            return f"{name} has changed since the build"
    return None
