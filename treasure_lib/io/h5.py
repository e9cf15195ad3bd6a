"""ATLAS-style H5 files in both layouts: opening, metadata, and checking what a file can serve.

Layouts (DESIGN.md):
- compound: structured datasets, `jets (N,)` and `tracks (N, M)` with a bool `valid` field;
- per_feature: `<path>/<feature>` datasets `(N, M)` with a bool `<path>/mask`; scalars `(N,)`;
  sample metadata as attributes of a `metadata` group.

The streaming reader is `io.reader.H5Stream`, the writer `io.h5_writer.H5Writer`, `treasure
inspect` is `io.inspect`.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputFileError
from ..object_collections import Collection

log = logging.getLogger(__name__)

METADATA_GROUP = "metadata"
NAN_POLICIES = ("error", "zero", "drop")


# --------------------------------------------------------------------------- opening


def expand_files(patterns: Iterable[str | Path]) -> list[Path]:
    """Globs and plain paths, in the given order; a pattern that matches nothing is an error."""
    out: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputFileError(f"no input file matches {text!r}")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(text))
    return out


def open_h5(path: str | Path) -> h5py.File:
    """Open for reading, turning h5py's low-level failures into a message that names the file."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if not path.is_file():
        raise InputFileError(f"{path}: not a file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(f"{path}: not a readable HDF5 file (wrong format or truncated): {exc}") from None


def count_rows(path: str | Path, collection: Collection) -> int:
    """Rows (events or jets) of one collection in a file, without reading data."""
    with open_h5(path) as f:
        name = collection.path if collection.layout == "compound" else collection.feature_path(collection.features[0])
        if name not in f:
            raise InputFileError(f"{path}: collection '{collection.name}': no dataset '{name}'")
        return int(f[name].shape[0])


def read_metadata(f: h5py.File) -> dict:
    """Attributes of the `metadata` group as plain Python values ({} if absent)."""
    if METADATA_GROUP not in f:
        return {}
    out = {}
    for key, value in f[METADATA_GROUP].attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


# --------------------------------------------------------------------------- checking a file


def _numeric(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.number) or dtype == np.bool_


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "(nothing)"


@dataclass
class _Source:
    """Where a collection's data sits in one open file, checked once when the file opens."""

    collection: Collection
    n_rows: int
    width: int  # objects per row in the file (1 for scalars)
    fields: tuple[str, ...]  # features in order
    truth: tuple[str, ...]  # truth fields present in the file
    dtypes: dict[str, np.dtype] = field(default_factory=dict)


def check_collection(f: h5py.File, c: Collection, extra: Sequence[str] = ()) -> tuple[_Source | None, list[str]]:
    """Problems with serving collection `c` from open file `f` ([] when it can).

    `extra` are fields that must exist too (a label or weight field); truth fields are optional.
    """
    where = f"collection '{c.name}'"
    wanted = list(c.features) + [e for e in extra if e not in c.features]
    if c.layout == "compound":
        if c.path not in f:
            return None, [f"{where}: no dataset '{c.path}'; the file has: {_listing(f.keys())}"]
        ds = f[c.path]
        if not isinstance(ds, h5py.Dataset) or ds.dtype.names is None:
            return None, [f"{where}: '{c.path}' is not a compound (structured) dataset"]
        names = ds.dtype.names
        problems = [
            f"{where}: feature '{n}' missing from dataset '{c.path}'; available: {_listing(names)}"
            for n in wanted
            if n not in names
        ]
        want_ndim = 1 if c.is_scalar else 2
        if ds.ndim != want_ndim:
            problems.append(
                f"{where}: dataset '{c.path}' has shape {ds.shape}, expected "
                f"{'(N,)' if c.is_scalar else '(N, max_objects)'}"
            )
        if not c.is_scalar:
            if c.valid not in names:
                problems.append(
                    f"{where}: dataset '{c.path}' has no '{c.valid}' field marking valid objects; "
                    f"available: {_listing(names)}"
                )
            elif ds.dtype[c.valid] != np.bool_:
                problems.append(f"{where}: field '{c.valid}' of '{c.path}' must be bool, got {ds.dtype[c.valid]}")
        dtypes = {n: ds.dtype[n] for n in names}
        for n in wanted:
            if n in dtypes and not _numeric(dtypes[n]):
                problems.append(
                    f"{where}: feature '{n}' of '{c.path}' has dtype {dtypes[n]}, expected a number or bool"
                )
        if problems:
            return None, problems
        return _Source(
            c,
            ds.shape[0],
            1 if c.is_scalar else ds.shape[1],
            c.features,
            tuple(t for t in c.truth if t in names and t not in wanted)
            + tuple(e for e in extra if e not in c.features),
            dtypes,
        ), []

    # per_feature
    if c.path not in f or not isinstance(f[c.path], h5py.Group):
        parent = c.path.rsplit("/", 1)[0] if "/" in c.path else ""
        have = f[parent].keys() if parent in f else f.keys()
        return None, [f"{where}: no group '{c.path}'; {'/' + parent if parent else 'the file'} has: {_listing(have)}"]
    group = f[c.path]
    present = [k for k in group.keys() if isinstance(group[k], h5py.Dataset)]
    problems = [
        f"{where}: feature '{n}' missing: no dataset '{c.feature_path(n)}'; "
        f"available in '{c.path}': {_listing(present)}"
        for n in wanted
        if n not in group
    ]
    if problems:
        return None, problems
    if c.is_scalar:
        shape = group[wanted[0]].shape
        if len(shape) != 1:
            problems.append(
                f"{where}: dataset '{c.feature_path(wanted[0])}' has shape {shape}, expected (N,) for scalars"
            )
    else:
        if c.mask not in group:
            return None, [f"{where}: no mask dataset '{c.mask_path}'; available in '{c.path}': {_listing(present)}"]
        mask = group[c.mask]
        shape = mask.shape
        if mask.dtype != np.bool_:
            problems.append(f"{where}: mask '{c.mask_path}' must be bool, got {mask.dtype}")
        if len(shape) != 2:
            problems.append(f"{where}: mask '{c.mask_path}' has shape {shape}, expected (N, max_objects)")
    truth = tuple(t for t in c.truth if t in group and t not in wanted)
    dtypes = {}
    for n in list(wanted) + list(truth):
        ds = group[n]
        dtypes[n] = ds.dtype
        if ds.shape != shape:
            problems.append(
                f"{where}: dataset '{c.feature_path(n)}' has shape {ds.shape}, but "
                f"{'the first feature' if c.is_scalar else 'the mask'} has {shape}"
            )
        if not _numeric(ds.dtype):
            problems.append(f"{where}: dataset '{c.feature_path(n)}' has dtype {ds.dtype}, expected a number or bool")
    if problems:
        return None, problems
    return _Source(
        c,
        shape[0],
        1 if c.is_scalar else shape[1],
        c.features,
        truth + tuple(e for e in extra if e not in c.features),
        dtypes,
    ), []
