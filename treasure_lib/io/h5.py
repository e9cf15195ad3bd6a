"""ATLAS-style H5 files in both layouts: a streaming reader, an atomic writer, and `inspect`.

Layouts (DESIGN.md):
- compound: structured datasets, `jets (N,)` and `tracks (N, M)` with a bool `valid` field;
- per_feature: `<path>/<feature>` datasets `(N, M)` with a bool `<path>/mask`; scalars `(N,)`;
  sample metadata as attributes of a `metadata` group.

The reader reads contiguous row slices only (whole compound rows at once: per-field reads of
gzip compound data decompress every chunk once per field) and yields `Batch`es.
"""
from __future__ import annotations

import glob
import logging
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np
from numpy.lib import recfunctions as rfn

from ..collections import FLAVOUR_LABELS, Collection
from ..errors import ConfigError, InputFileError
from .batch import Batch, ObjectArrays, concat

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
    width: int                                  # objects per row in the file (1 for scalars)
    fields: tuple[str, ...]                     # features in order
    truth: tuple[str, ...]                      # truth fields present in the file
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
        problems = [f"{where}: feature '{n}' missing from dataset '{c.path}'; available: {_listing(names)}"
                    for n in wanted if n not in names]
        want_ndim = 1 if c.is_scalar else 2
        if ds.ndim != want_ndim:
            problems.append(f"{where}: dataset '{c.path}' has shape {ds.shape}, expected "
                            f"{'(N,)' if c.is_scalar else '(N, max_objects)'}")
        if not c.is_scalar:
            if c.valid not in names:
                problems.append(f"{where}: dataset '{c.path}' has no '{c.valid}' field marking valid objects; "
                                f"available: {_listing(names)}")
            elif ds.dtype[c.valid] != np.bool_:
                problems.append(f"{where}: field '{c.valid}' of '{c.path}' must be bool, got {ds.dtype[c.valid]}")
        dtypes = {n: ds.dtype[n] for n in names}
        for n in wanted:
            if n in dtypes and not _numeric(dtypes[n]):
                problems.append(f"{where}: feature '{n}' of '{c.path}' has dtype {dtypes[n]}, expected a number or bool")
        if problems:
            return None, problems
        return _Source(c, ds.shape[0], 1 if c.is_scalar else ds.shape[1], c.features,
                       tuple(t for t in c.truth if t in names and t not in wanted) + tuple(e for e in extra if e not in c.features), dtypes), []

    # per_feature
    if c.path not in f or not isinstance(f[c.path], h5py.Group):
        parent = c.path.rsplit("/", 1)[0] if "/" in c.path else ""
        have = f[parent].keys() if parent in f else f.keys()
        return None, [f"{where}: no group '{c.path}'; {'/' + parent if parent else 'the file'} has: {_listing(have)}"]
    group = f[c.path]
    present = [k for k in group.keys() if isinstance(group[k], h5py.Dataset)]
    problems = [f"{where}: feature '{n}' missing: no dataset '{c.feature_path(n)}'; available in '{c.path}': {_listing(present)}"
                for n in wanted if n not in group]
    if problems:
        return None, problems
    if c.is_scalar:
        shape = group[wanted[0]].shape
        if len(shape) != 1:
            problems.append(f"{where}: dataset '{c.feature_path(wanted[0])}' has shape {shape}, expected (N,) for scalars")
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
            problems.append(f"{where}: dataset '{c.feature_path(n)}' has shape {ds.shape}, but "
                            f"{'the first feature' if c.is_scalar else 'the mask'} has {shape}")
        if not _numeric(ds.dtype):
            problems.append(f"{where}: dataset '{c.feature_path(n)}' has dtype {ds.dtype}, expected a number or bool")
    if problems:
        return None, problems
    return _Source(c, shape[0], 1 if c.is_scalar else shape[1], c.features,
                   truth + tuple(e for e in extra if e not in c.features), dtypes), []


# --------------------------------------------------------------------------- cuts, labels, weights

_CUT = re.compile(r"^\s*(\w+)\.(\w+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Cut:
    """`jets.pt > 20e3`: on a scalar collection it drops rows, on objects it drops objects."""

    collection: str
    feature: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str, collections: Mapping[str, Collection]) -> "Cut":
        m = _CUT.match(text)
        if not m:
            raise ConfigError(f"cut {text!r}: expected '<collection>.<feature> <op> <number>' with op one of "
                              f"{', '.join(_OPS)} (e.g. 'jets.pt > 20e3')")
        coll, feat, op, raw = m.groups()
        if coll not in collections:
            raise ConfigError(f"cut {text!r}: no collection '{coll}'; available: {_listing(collections)}")
        c = collections[coll]
        if feat not in c.features and feat not in c.truth:
            raise ConfigError(f"cut {text!r}: collection '{coll}' has no feature '{feat}'; "
                              f"available: {_listing(c.features + c.truth)}")
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"cut {text!r}: {raw!r} is not a number") from None
        return cls(coll, feat, op, value)

    def apply(self, values: np.ndarray) -> np.ndarray:
        return _OPS[self.op](values, self.value)


def _label_fields(label: Mapping, weight: Mapping) -> dict[str, list[str]]:
    need: dict[str, list[str]] = {}
    for spec in (label, weight):
        if spec and "collection" in spec:
            need.setdefault(spec["collection"], []).append(spec["field"])
    return need


def _check_label_spec(label: Mapping, weight: Mapping, collections: Mapping[str, Collection]) -> None:
    for name, spec in (("data.label", label), ("data.weight", weight)):
        if not spec:
            continue
        if "collection" in spec:
            if "field" not in spec:
                raise ConfigError(f"{name}: needs 'field' beside 'collection'")
            coll = spec["collection"]
            if coll not in collections:
                raise ConfigError(f"{name}: no collection '{coll}'; available: {_listing(collections)}")
            if not collections[coll].is_scalar:
                raise ConfigError(f"{name}: collection '{coll}' has several objects per row; use a scalar collection")
            table = spec.get("table")
            if table not in (None, "flavour"):
                raise ConfigError(f"{name}: unknown table {table!r}; known: flavour")
        elif "metadata" in spec:
            if name == "data.label" and not isinstance(spec.get("classes"), Mapping):
                raise ConfigError(f"{name}: 'metadata' labels need 'classes', a mapping of value -> class index")
        else:
            raise ConfigError(f"{name}: expected {{collection, field[, table]}} or {{metadata, classes}}; got {dict(spec)}")


def map_flavour(raw: np.ndarray, where: str) -> np.ndarray:
    """HadronConeExclTruthLabelID -> class index through the fixed table (b 0, c 1, light 2, tau 3)."""
    lut = np.full(max(FLAVOUR_LABELS) + 1, -1, dtype=np.int64)
    for value, cls in FLAVOUR_LABELS.items():
        lut[value] = cls
    raw = np.asarray(raw).astype(np.int64)
    inside = (raw >= 0) & (raw < len(lut))
    out = np.full(raw.shape, -1, dtype=np.int64)
    out[inside] = lut[raw[inside]]
    if (out < 0).any():
        bad = sorted(set(np.unique(raw[out < 0]).tolist()))
        raise InputFileError(f"{where}: flavour label value(s) {bad} are not in the flavour table "
                             f"{dict(FLAVOUR_LABELS)} (0 light, 4 c, 5 b, 15 tau)")
    return out


# --------------------------------------------------------------------------- reading


def _sort_and_truncate(oa: ObjectArrays, c: Collection) -> tuple[ObjectArrays, int]:
    """Order objects by `order_by` (descending, valid first) and keep `max_objects`."""
    feats, mask = oa.features, oa.mask
    width = feats.shape[1]
    if c.is_scalar:
        return oa, 0
    if c.order_by is not None:
        key = np.where(mask, feats[..., c.index(c.order_by)], -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
    else:
        order = np.argsort(~mask, axis=1, kind="stable")
    already = np.array_equal(order, np.broadcast_to(np.arange(width), order.shape))
    truth = oa.truth
    if not already:
        feats = np.take_along_axis(feats, order[..., None], axis=1)
        mask = np.take_along_axis(mask, order, axis=1)
        truth = {k: np.take_along_axis(v, order, axis=1) for k, v in truth.items()}
    n = c.max_objects
    truncated = int(mask[:, n:].sum()) if width > n else 0
    if width > n:
        feats, mask, truth = feats[:, :n], mask[:, :n], {k: v[:, :n] for k, v in truth.items()}
    elif width < n:
        pad = n - width
        feats = np.pad(feats, ((0, 0), (0, pad), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
        truth = {k: np.pad(v, ((0, 0), (0, pad))) for k, v in truth.items()}
    return ObjectArrays(np.ascontiguousarray(feats), np.ascontiguousarray(mask), oa.names, truth), truncated


class H5Stream:
    """Stream one or many files in chunks of rows, one `Batch` per chunk (never across files).

    Memory stays flat: one chunk per collection is in memory at a time. `stats` counts rows
    read and kept, objects truncated beyond `max_objects`, and NaN/inf entries handled.
    """

    def __init__(self, files: Iterable[str | Path], collections: Mapping[str, Collection], *,
                 chunk_size: int = 10_000, cuts: Iterable[str] = (), nan_policy: str = "error",
                 label: Mapping | None = None, weight: Mapping | None = None, max_rows: int | None = None):
        self.files = expand_files(files)
        if not self.files:
            raise InputFileError("no input files given (data.files is empty)")
        if not collections:
            raise ConfigError("no collections to read")
        if nan_policy not in NAN_POLICIES:
            raise ConfigError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.collections = dict(collections)
        self.chunk_size = int(chunk_size)
        self.cuts = [Cut.parse(c, self.collections) for c in cuts]
        self.nan_policy = nan_policy
        self.label = dict(label or {})
        self.weight = dict(weight or {})
        _check_label_spec(self.label, self.weight, self.collections)
        self.max_rows = max_rows
        self.stats = {"rows_read": 0, "rows_kept": 0, "truncated": {c: 0 for c in self.collections},
                      "nan_entries": {}, "files": len(self.files)}

    @classmethod
    def from_params(cls, params: Mapping, collections: Mapping[str, Collection] | None = None,
                    files: Iterable[str | Path] | None = None) -> "H5Stream":
        from ..collections import from_params

        data = params["data"]
        return cls(files if files is not None else data["files"], collections or from_params(params),
                   chunk_size=data["chunk_size"], cuts=data["cuts"], nan_policy=data["nan_policy"],
                   label=data["label"], weight=data["weight"], max_rows=data["max_rows"])

    # -- per file
    def _open_sources(self, path: Path, f: h5py.File) -> dict[str, _Source]:
        extra = _label_fields(self.label, self.weight)
        for cut in self.cuts:
            c = self.collections[cut.collection]
            if cut.feature not in c.features:
                extra.setdefault(cut.collection, []).append(cut.feature)
        sources, problems = {}, []
        for name, c in self.collections.items():
            src, errs = check_collection(f, c, extra.get(name, ()))
            problems += errs
            if src is not None:
                sources[name] = src
        if problems:
            raise InputFileError(f"{path}: " + "\n  ".join(problems))
        rows = {name: s.n_rows for name, s in sources.items()}
        if len(set(rows.values())) != 1:
            raise InputFileError(f"{path}: collections disagree on the number of rows: {rows}")
        if next(iter(rows.values())) == 0:
            raise InputFileError(f"{path}: zero rows in {', '.join(rows)}; nothing to read")
        if "metadata" in self.label and self.label["metadata"] not in read_metadata(f):
            raise InputFileError(f"{path}: data.label needs metadata attribute '{self.label['metadata']}'; "
                                 f"the file has: {_listing(read_metadata(f))}")
        return sources

    def _read_collection(self, path: Path, f: h5py.File, src: _Source, start: int, stop: int) -> ObjectArrays:
        c = src.collection
        try:
            if c.layout == "compound":
                raw = f[c.path][start:stop]  # whole rows: each gzip chunk is decompressed once
                feats = np.ascontiguousarray(
                    rfn.structured_to_unstructured(raw[list(src.fields)], dtype=np.float32, copy=False))
                truth = {t: raw[t] for t in src.truth}
                mask = np.ones(raw.shape, dtype=bool) if c.is_scalar else raw[c.valid]
            else:
                group = f[c.path]
                feats = np.stack([group[n][start:stop] for n in src.fields], axis=-1).astype(np.float32, copy=False)
                truth = {t: group[t][start:stop] for t in src.truth}
                mask = np.ones(feats.shape[:-1], dtype=bool) if c.is_scalar else group[c.mask][start:stop]
        except OSError as exc:
            raise InputFileError(f"{path}: collection '{c.name}': reading rows {start}-{stop} failed; the file is "
                                 f"truncated or corrupt ({exc})") from None
        if c.is_scalar:
            feats, mask = feats[:, None, :], mask[:, None]
            truth = {k: v[:, None] for k, v in truth.items()}
        return ObjectArrays(feats, np.asarray(mask, dtype=bool), c.features, truth)

    def _handle_nan(self, path: Path, name: str, oa: ObjectArrays, start: int, stop: int, keep: np.ndarray) -> None:
        bad = ~np.isfinite(oa.features)
        bad &= oa.mask[..., None]
        if not bad.any():
            return
        per_feature = bad.sum(axis=(0, 1))
        for i in np.flatnonzero(per_feature):
            key = f"{name}.{oa.names[i]}"
            self.stats["nan_entries"][key] = self.stats["nan_entries"].get(key, 0) + int(per_feature[i])
        if self.nan_policy == "error":
            worst = ", ".join(f"'{oa.names[i]}' ({int(per_feature[i])} entries)" for i in np.flatnonzero(per_feature))
            raise InputFileError(f"{path}: collection '{name}': NaN/inf in valid entries of feature(s) {worst} "
                                 f"in rows {start}-{stop}; set data.nan_policy to 'zero' or 'drop' to accept them")
        if self.nan_policy == "zero":
            oa.features[bad] = 0.0
        else:  # drop: the object, or the whole row for a scalar collection
            bad_obj = bad.any(axis=-1)
            if self.collections[name].is_scalar:
                keep &= ~bad_obj[:, 0]
            oa.mask &= ~bad_obj
            oa.features[~np.isfinite(oa.features)] = 0.0

    def _labels_weights(self, path: Path, cols: Mapping[str, ObjectArrays], meta: Mapping, n: int):
        labels = np.full(n, -1, dtype=np.int64)
        if "collection" in self.label:
            raw = cols[self.label["collection"]].field(self.label["field"])[:, 0]
            where = f"{path}: {self.label['collection']}.{self.label['field']}"
            labels = map_flavour(raw, where) if self.label.get("table") == "flavour" else raw.astype(np.int64)
        elif "metadata" in self.label:
            value = meta[self.label["metadata"]]
            classes = self.label["classes"]
            if value not in classes:
                raise InputFileError(f"{path}: metadata {self.label['metadata']}={value!r} is not among the label "
                                     f"classes {dict(classes)}")
            labels[:] = int(classes[value])
        weights = np.ones(n, dtype=np.float32)
        if "collection" in self.weight:
            weights = cols[self.weight["collection"]].field(self.weight["field"])[:, 0].astype(np.float32)
        return labels, weights

    def _iter_file(self, path: Path) -> Iterator[Batch]:
        with open_h5(path) as f:
            sources = self._open_sources(path, f)
            meta = read_metadata(f)
            n_rows = next(iter(sources.values())).n_rows
            if self.max_rows is not None:
                n_rows = min(n_rows, self.max_rows)
            for start in range(0, n_rows, self.chunk_size):
                stop = min(start + self.chunk_size, n_rows)
                n = stop - start
                keep = np.ones(n, dtype=bool)
                cols = {name: self._read_collection(path, f, src, start, stop) for name, src in sources.items()}
                for name, oa in cols.items():
                    self._handle_nan(path, name, oa, start, stop, keep)
                    oa.features[~oa.mask] = 0.0
                for cut in self.cuts:
                    oa = cols[cut.collection]
                    passed = cut.apply(oa.field(cut.feature))
                    if self.collections[cut.collection].is_scalar:
                        keep &= passed[:, 0]
                    else:
                        oa.mask &= passed
                        oa.features[~oa.mask] = 0.0
                truncated = {}
                for name in cols:
                    cols[name], truncated[name] = _sort_and_truncate(cols[name], self.collections[name])
                    self.stats["truncated"][name] += truncated[name]
                labels, weights = self._labels_weights(path, cols, meta, n)
                batch = Batch(cols, labels, weights, np.arange(start, stop, dtype=np.int64), str(path), meta, truncated)
                if not keep.all():
                    batch = batch.take(np.flatnonzero(keep))
                self.stats["rows_read"] += n
                self.stats["rows_kept"] += len(batch)
                if len(batch):
                    yield batch

    def __iter__(self) -> Iterator[Batch]:
        for path in self.files:
            yield from self._iter_file(path)
        for name, n in self.stats["truncated"].items():
            if n:
                log.warning("collection '%s': %d objects beyond max_objects=%d were truncated", name, n,
                            self.collections[name].max_objects)

    def read_all(self) -> Batch:
        """Everything at once (small files and tests only: streaming code iterates instead)."""
        batches = list(self)
        if not batches:
            raise InputFileError(f"{', '.join(map(str, self.files))}: no rows pass the cuts {[c for c in self.cuts]}")
        return concat(batches)


def stream(files: Iterable[str | Path], collections: Mapping[str, Collection], **kw) -> H5Stream:
    """Shorthand for `H5Stream(files, collections, **kw)`."""
    return H5Stream(files, collections, **kw)


# --------------------------------------------------------------------------- writing


class H5Writer:
    """Append row blocks to chunked, compressed, resizable datasets; atomic on close.

    The file is written under a temporary name beside the target and renamed only when
    `close()` succeeds; an exception inside `with H5Writer(...)` removes the temporary file,
    so nothing half-written is ever left under the target name.
    """

    def __init__(self, path: str | Path, *, compression: str | None = "gzip", compression_opts: int | None = 4,
                 chunk_rows: int = 1000, metadata: Mapping | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.compression = compression
        self.compression_opts = compression_opts if compression == "gzip" else None
        self.chunk_rows = int(chunk_rows)
        self.rows = 0
        self._keys: tuple[str, ...] | None = None
        self._file: h5py.File | None = h5py.File(self.tmp, "w")
        if metadata:
            self.set_metadata(metadata)

    def set_metadata(self, metadata: Mapping) -> None:
        group = self._file.require_group(METADATA_GROUP)
        for key, value in metadata.items():
            group.attrs[key] = value

    def append(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Append the same number of rows to each dataset path (created on the first call)."""
        if self._file is None:
            raise RuntimeError(f"{self.path}: writer is closed")
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{self.path}: datasets disagree on the number of rows to append: {lengths}")
        keys = tuple(sorted(arrays))
        if self._keys is None:
            self._keys = keys
            for key, arr in arrays.items():
                arr = np.asarray(arr)
                chunks = (max(1, min(self.chunk_rows, max(len(arr), 1))),) + arr.shape[1:]
                self._file.create_dataset(key, shape=(0,) + arr.shape[1:], maxshape=(None,) + arr.shape[1:],
                                          dtype=arr.dtype, chunks=chunks, compression=self.compression,
                                          compression_opts=self.compression_opts)
        elif keys != self._keys:
            raise ValueError(f"{self.path}: appended datasets {list(keys)} differ from the first block's {list(self._keys)}")
        n = next(iter(lengths.values()), 0)
        for key, arr in arrays.items():
            ds = self._file[key]
            arr = np.asarray(arr)
            if arr.shape[1:] != ds.shape[1:]:
                raise ValueError(f"{self.path}: '{key}' rows have shape {arr.shape[1:]}, the dataset's are {ds.shape[1:]}")
            ds.resize(self.rows + n, axis=0)
            ds[self.rows:self.rows + n] = arr
        self.rows += n

    def close(self) -> Path:
        """Finish the file and move it to its name."""
        if self._file is not None:
            self._file.close()
            self._file = None
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
                self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "H5Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def batch_to_arrays(batch: Batch, collections: Mapping[str, Collection]) -> dict[str, np.ndarray]:
    """The datasets that hold `batch` in each collection's layout (features as float32)."""
    out: dict[str, np.ndarray] = {}
    for name, c in collections.items():
        oa = batch[name]
        feats = oa.features[:, 0] if c.is_scalar else oa.features
        mask = oa.mask[:, 0] if c.is_scalar else oa.mask
        truth = {k: (v[:, 0] if c.is_scalar else v) for k, v in oa.truth.items()}
        if c.layout == "compound":
            fields = [(n, np.float32) for n in c.features] + [(k, v.dtype) for k, v in truth.items()]
            if not c.is_scalar:
                fields.append((c.valid, np.bool_))
            rec = np.zeros(mask.shape, dtype=np.dtype(fields))
            for i, n in enumerate(c.features):
                rec[n] = feats[..., i]
            for k, v in truth.items():
                rec[k] = v
            if not c.is_scalar:
                rec[c.valid] = mask
            out[c.path] = rec
        else:
            for i, n in enumerate(c.features):
                out[c.feature_path(n)] = np.ascontiguousarray(feats[..., i])
            for k, v in truth.items():
                out[c.feature_path(k)] = v
            if not c.is_scalar:
                out[c.mask_path] = mask
    return out


def write_batches(path: str | Path, batches: Iterable[Batch], collections: Mapping[str, Collection], *,
                  metadata: Mapping | None = None, **writer_kw) -> Path:
    """Write batches to one file in each collection's layout, atomically."""
    with H5Writer(path, metadata=metadata, **writer_kw) as writer:
        for batch in batches:
            writer.append(batch_to_arrays(batch, collections))
    return Path(path)


# --------------------------------------------------------------------------- inspect


def inspect_file(path: str | Path, sets: Mapping[str, Mapping[str, Collection]] | None = None) -> dict:
    """What a file holds, and which configured collections (and features) it can serve."""
    path = Path(path)
    with open_h5(path) as f:
        datasets = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                entry = {"path": name, "shape": list(obj.shape), "dtype": str(obj.dtype) if obj.dtype.names is None else "compound",
                         "compression": obj.compression}
                if obj.dtype.names is not None:
                    entry["fields"] = {n: str(obj.dtype[n]) for n in obj.dtype.names}
                datasets.append(entry)

        f.visititems(visit)
        rows = max((d["shape"][0] for d in datasets if d["shape"]), default=0)
        serves: dict = {}
        for set_name, members in (sets or {}).items():
            serves[set_name] = {}
            for name, c in members.items():
                _, problems = check_collection(f, c)
                serves[set_name][name] = {"ok": not problems, "problems": problems}
        return {"file": str(path), "size_bytes": path.stat().st_size, "rows": rows, "datasets": datasets,
                "metadata": read_metadata(f), "serves": serves}


def format_inspection(report: Mapping) -> str:
    lines = [f"{report['file']}  ({report['size_bytes'] / 1e6:.2f} MB, {report['rows']} rows)"]
    if report["metadata"]:
        lines.append("metadata:")
        lines += [f"  {k} = {v}" for k, v in report["metadata"].items()]
    lines.append("datasets:")
    for d in report["datasets"]:
        shape = "(" + ", ".join(map(str, d["shape"])) + ")"
        lines.append(f"  {d['path']:<40} {d['dtype']:<10} {shape:<14} {d['compression'] or ''}")
        for n, dt in d.get("fields", {}).items():
            lines.append(f"      .{n:<36} {dt}")
    for set_name, members in report["serves"].items():
        ok = [n for n, r in members.items() if r["ok"]]
        lines.append(f"collection set '{set_name}': serves {len(ok)}/{len(members)}" + (f" ({', '.join(ok)})" if ok else ""))
        for name, r in members.items():
            for p in r["problems"]:
                lines.append(f"  - {p}")
    return "\n".join(lines)
