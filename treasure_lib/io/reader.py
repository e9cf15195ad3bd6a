"""The streaming H5 reader: rows of one or many files, in chunks or in arbitrary row blocks.

Every row leaves the reader with the same treatment whichever stage asks and whichever subset of
collections it wants: objects ordered by pt and truncated, cuts applied, phi in the event frame,
and its train / val / test assignment. Collections that decide any of these (cuts, labels,
weights, the leading object, the event number) are read even when the caller did not ask for
them, so a tracks-only reader and a full reader see identical rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import h5py
import numpy as np
from numpy.lib import recfunctions as rfn

from .. import splits
from ..config import DataParams
from ..errors import ConfigError, InputFileError
from ..object_collections import Collection
from .batch import Batch, ObjectArrays, concat
from .h5 import NAN_POLICIES, _Source, check_collection, expand_files, open_h5, read_metadata
from .objects import PHI_REFERENCES, leading_phi, reference_collections, rotate_phi, sort_and_truncate
from .selection import Cut, _check_label_spec, _label_fields, map_flavour

log = logging.getLogger(__name__)


def identity_source(collections: Mapping[str, Collection]) -> str | None:
    """The scalar collection whose `eventNumber` identifies rows (the first that declares one)."""
    for name, c in collections.items():
        if c.is_scalar and any(f in c.truth for f in splits.EVENT_NUMBER_FIELDS):
            return name
    return None


class _OpenFile:
    """One file, opened and checked once: its sources, metadata and row count."""

    def __init__(self, path: Path, handle: h5py.File, sources: dict[str, _Source], metadata: dict, n_rows: int):
        self.path, self.handle, self.sources, self.metadata, self.n_rows = path, handle, sources, metadata, n_rows


class H5Stream:
    """Stream one or many files in chunks of rows, one `Batch` per chunk (never across files).

    Memory stays flat: one chunk per collection is in memory at a time. `stats` counts rows
    read and kept, objects truncated beyond `max_objects`, and NaN/inf entries handled.
    `context` is the whole collection set (defaults to `collections`): cut, label, weight,
    phi-reference and event-number collections are taken from it and read along.
    `select_split` keeps only rows of one split (0 train, 1 val, 2 test).
    """

    def __init__(
        self,
        files: Iterable[str | Path],
        collections: Mapping[str, Collection],
        *,
        chunk_size: int = 10_000,
        cuts: Iterable[str] = (),
        nan_policy: str = "error",
        label: Mapping | None = None,
        weight: Mapping | None = None,
        max_rows: int | None = None,
        split: splits.SplitSpec | None = None,
        select_split: int | None = None,
        context: Mapping[str, Collection] | None = None,
        phi_reference: str = "none",
        phi_reference_collections: list[str] | None = None,
    ):
        self.files = expand_files(files)
        if not self.files:
            raise InputFileError("no input files given (data.files is empty)")
        if not collections:
            raise ConfigError("no collections to read")
        if nan_policy not in NAN_POLICIES:
            raise ConfigError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        if phi_reference not in PHI_REFERENCES:
            raise ConfigError(f"data.phi_reference must be one of {PHI_REFERENCES}, got {phi_reference!r}")
        self.collections = dict(collections)
        universe = {**self.collections, **dict(context or {})}
        self.chunk_size = int(chunk_size)
        self.cuts = [Cut.parse(c, universe) for c in cuts]
        self.nan_policy = nan_policy
        self.label = dict(label or {})
        self.weight = dict(weight or {})
        _check_label_spec(self.label, self.weight, universe)
        self.max_rows = max_rows
        self.split = split or splits.SplitSpec()
        self.select_split = select_split
        self.phi_reference = phi_reference
        self.identity = identity_source(universe)
        self.phi_collections = []
        if phi_reference == "leading":
            self.phi_collections = list(phi_reference_collections or reference_collections(universe))
            bad = [n for n in self.phi_collections if n not in reference_collections(universe)]
            if bad:
                raise ConfigError(
                    f"data.phi_reference_collections: {bad} are not object collections with pt and phi; "
                    f"candidates: {', '.join(reference_collections(universe))}"
                )
        needed = [c.collection for c in self.cuts] + list(_label_fields(self.label, self.weight)) + self.phi_collections
        needed += [self.identity] if self.identity else []
        self.read_collections = {**self.collections, **{n: universe[n] for n in needed if n not in self.collections}}
        self.stats = {
            "rows_read": 0,
            "rows_kept": 0,
            "truncated": {c: 0 for c in self.collections},
            "nan_entries": {},
            "files": len(self.files),
        }
        self._open: dict[int, _OpenFile] = {}

    @classmethod
    def from_data(
        cls,
        data: DataParams,
        collections: Mapping[str, Collection] | None = None,
        files: Iterable[str | Path] | None = None,
        select_split: int | None = None,
    ) -> H5Stream:
        from ..object_collections import from_data, load_collections

        universe = load_collections(data.objects_file, data.collection_set)
        return cls(
            files if files is not None else data.files,
            collections or from_data(data),
            chunk_size=data.chunk_size,
            cuts=data.cuts,
            nan_policy=data.nan_policy,
            label=data.label,
            weight=data.weight,
            max_rows=data.max_rows,
            split=splits.SplitSpec.from_data(data),
            select_split=select_split,
            context=universe,
            phi_reference=data.phi_reference,
            phi_reference_collections=data.phi_reference_collections,
        )

    # -- files
    def _check_file(self, path: Path, f: h5py.File) -> _OpenFile:
        extra = _label_fields(self.label, self.weight)
        for cut in self.cuts:
            c = self.read_collections[cut.collection]
            if cut.feature not in c.features:
                extra.setdefault(cut.collection, []).append(cut.feature)
        sources, problems = {}, []
        for name, c in self.read_collections.items():
            src, errs = check_collection(f, c, extra.get(name, ()))
            problems += errs
            if src is not None:
                sources[name] = src
        if problems:
            raise InputFileError(f"{path}: " + "\n  ".join(problems))
        rows = {name: s.n_rows for name, s in sources.items()}
        if len(set(rows.values())) != 1:
            raise InputFileError(f"{path}: collections disagree on the number of rows: {rows}")
        n_rows = next(iter(rows.values()))
        if n_rows == 0:
            raise InputFileError(f"{path}: zero rows in {', '.join(rows)}; nothing to read")
        meta = read_metadata(f)
        if "metadata" in self.label and self.label["metadata"] not in meta:
            raise InputFileError(
                f"{path}: data.label needs metadata attribute '{self.label['metadata']}'; "
                f"the file has: {', '.join(sorted(meta)) or '(nothing)'}"
            )
        if self.max_rows is not None:
            n_rows = min(n_rows, self.max_rows)
        return _OpenFile(path, f, sources, meta, n_rows)

    def open_file(self, i: int) -> _OpenFile:
        """File `i`, opened and checked once (kept open until `close`)."""
        if i not in self._open:
            path = self.files[i]
            handle = open_h5(path)
            try:
                self._open[i] = self._check_file(path, handle)
            except BaseException:
                handle.close()
                raise
        return self._open[i]

    def n_rows(self, i: int) -> int:
        return self.open_file(i).n_rows

    def close(self) -> None:
        for f in self._open.values():
            f.handle.close()
        self._open.clear()

    # -- rows
    def _read_collection(self, path: Path, f: h5py.File, src: _Source, start: int, stop: int) -> ObjectArrays:
        c = src.collection
        try:
            if c.layout == "compound":
                raw = f[c.path][start:stop]  # whole rows: each gzip chunk is decompressed once
                feats = np.ascontiguousarray(
                    rfn.structured_to_unstructured(raw[list(src.fields)], dtype=np.float32, copy=False)
                )
                truth = {t: raw[t] for t in src.truth}
                mask = np.ones(raw.shape, dtype=bool) if c.is_scalar else raw[c.valid]
            else:
                group = f[c.path]
                feats = np.stack([group[n][start:stop] for n in src.fields], axis=-1).astype(np.float32, copy=False)
                truth = {t: group[t][start:stop] for t in src.truth}
                mask = np.ones(feats.shape[:-1], dtype=bool) if c.is_scalar else group[c.mask][start:stop]
        except OSError as exc:
            raise InputFileError(
                f"{path}: collection '{c.name}': reading rows {start}-{stop} failed; the file is "
                f"truncated or corrupt ({exc})"
            ) from None
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
            raise InputFileError(
                f"{path}: collection '{name}': NaN/inf in valid entries of feature(s) {worst} "
                f"in rows {start}-{stop}; set data.nan_policy to 'zero' or 'drop' to accept them"
            )
        if self.nan_policy == "zero":
            oa.features[bad] = 0.0
        else:  # drop: the object, or the whole row for a scalar collection
            bad_obj = bad.any(axis=-1)
            if self.read_collections[name].is_scalar:
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
                raise InputFileError(
                    f"{path}: metadata {self.label['metadata']}={value!r} is not among the label "
                    f"classes {dict(classes)}"
                )
            labels[:] = int(classes[value])
        weights = np.ones(n, dtype=np.float32)
        if "collection" in self.weight:
            weights = cols[self.weight["collection"]].field(self.weight["field"])[:, 0].astype(np.float32)
        return labels, weights

    def read_block(self, i: int, start: int, stop: int) -> Batch | None:
        """Rows [start, stop) of file `i` as a Batch (None when no row survives cuts and split selection)."""
        of = self.open_file(i)
        path, f = of.path, of.handle
        n = stop - start
        keep = np.ones(n, dtype=bool)
        cols = {name: self._read_collection(path, f, src, start, stop) for name, src in of.sources.items()}
        for name, oa in cols.items():
            self._handle_nan(path, name, oa, start, stop, keep)
            oa.features[~oa.mask] = 0.0
        for cut in self.cuts:
            oa = cols[cut.collection]
            passed = cut.apply(oa.field(cut.feature))
            if self.read_collections[cut.collection].is_scalar:
                keep &= passed[:, 0]
            else:
                oa.mask &= passed
                oa.features[~oa.mask] = 0.0
        truncated = {}
        for name in cols:
            cols[name], truncated[name] = sort_and_truncate(cols[name], self.read_collections[name])
            if name in self.collections:
                self.stats["truncated"][name] += truncated[name]
        if self.phi_collections:
            rotate_phi(cols, self.read_collections, leading_phi(cols, self.phi_collections, n))
        labels, weights = self._labels_weights(path, cols, of.metadata, n)
        event_index = np.arange(start, stop, dtype=np.int64)
        numbers = None
        if self.identity is not None:
            truth = cols[self.identity].truth
            numbers = next((truth[k][:, 0].astype(np.int64) for k in splits.EVENT_NUMBER_FIELDS if k in truth), None)
        sample = splits.sample_key(path, of.metadata, numbers is not None)
        split = splits.assign(sample, numbers if numbers is not None else event_index, self.split)
        batch = Batch(
            {name: cols[name] for name in self.collections},
            labels,
            weights,
            event_index,
            str(path),
            of.metadata,
            {k: v for k, v in truncated.items() if k in self.collections},
            split,
            numbers if numbers is not None else event_index.copy(),
        )
        if self.select_split is not None:
            keep &= split == self.select_split
        self.stats["rows_read"] += n
        if not keep.all():
            batch = batch.take(np.flatnonzero(keep))
        self.stats["rows_kept"] += len(batch)
        return batch if len(batch) else None

    def iter_file(self, i: int) -> Iterator[Batch]:
        n_rows = self.n_rows(i)
        for start in range(0, n_rows, self.chunk_size):
            batch = self.read_block(i, start, min(start + self.chunk_size, n_rows))
            if batch is not None:
                yield batch

    def __iter__(self) -> Iterator[Batch]:
        try:
            for i in range(len(self.files)):
                yield from self.iter_file(i)
                self._open.pop(i).handle.close()
        finally:
            self.close()
        for name, n in self.stats["truncated"].items():
            if n:
                log.warning(
                    "collection '%s': %d objects beyond max_objects=%d were truncated",
                    name,
                    n,
                    self.collections[name].max_objects,
                )

    def read_all(self) -> Batch:
        """Everything at once (small files and tests only: streaming code iterates instead)."""
        batches = list(self)
        if not batches:
            raise InputFileError(f"{', '.join(map(str, self.files))}: no rows pass the cuts {[c for c in self.cuts]}")
        return concat(batches)


def stream(files: Iterable[str | Path], collections: Mapping[str, Collection], **kw) -> H5Stream:
    """Shorthand for `H5Stream(files, collections, **kw)`."""
    return H5Stream(files, collections, **kw)


def read_split_rows(data: DataParams, split: str = "test", max_rows: int = 20_000) -> Batch:
    """Rows of one split (all collections of the study), in file order, up to `max_rows` per file, as one batch.

    The held-out sample that chapter 02 and chapter 03 measure tokens on: `data.max_rows` does not cap it."""
    stream = H5Stream.from_data(data, select_split=splits.parse(split))
    stream.max_rows = None
    parts, per_file = [], {}
    for batch in stream:
        taken = per_file.get(batch.source_file, 0)
        if taken >= max_rows:
            continue
        batch = batch.take(np.arange(min(len(batch), max_rows - taken)))
        per_file[batch.source_file] = taken + len(batch)
        parts.append(batch)
    return concat(parts)
