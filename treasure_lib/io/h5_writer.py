"""Writing ATLAS-style H5 files: an atomic, chunked, compressed writer in either layout."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import h5py
import numpy as np

from ..object_collections import Collection
from .batch import Batch
from .h5 import METADATA_GROUP


class H5Writer:
    """Append row blocks to chunked, compressed, resizable datasets; atomic on close.

    The file is written under a temporary name beside the target and renamed only when
    `close()` succeeds; an exception inside `with H5Writer(...)` removes the temporary file,
    so nothing half-written is ever left under the target name.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        compression: str | None = "gzip",
        compression_opts: int | None = 4,
        chunk_rows: int = 1000,
        metadata: Mapping | None = None,
    ):
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
                self._file.create_dataset(
                    key,
                    shape=(0,) + arr.shape[1:],
                    maxshape=(None,) + arr.shape[1:],
                    dtype=arr.dtype,
                    chunks=chunks,
                    compression=self.compression,
                    compression_opts=self.compression_opts,
                )
        elif keys != self._keys:
            raise ValueError(
                f"{self.path}: appended datasets {list(keys)} differ from the first block's {list(self._keys)}"
            )
        n = next(iter(lengths.values()), 0)
        for key, arr in arrays.items():
            ds = self._file[key]
            arr = np.asarray(arr)
            if arr.shape[1:] != ds.shape[1:]:
                raise ValueError(
                    f"{self.path}: '{key}' rows have shape {arr.shape[1:]}, the dataset's are {ds.shape[1:]}"
                )
            ds.resize(self.rows + n, axis=0)
            ds[self.rows : self.rows + n] = arr
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

    def __enter__(self) -> H5Writer:
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


def write_batches(
    path: str | Path,
    batches: Iterable[Batch],
    collections: Mapping[str, Collection],
    *,
    metadata: Mapping | None = None,
    **writer_kw,
) -> Path:
    """Write batches to one file in each collection's layout, atomically."""
    with H5Writer(path, metadata=metadata, **writer_kw) as writer:
        for batch in batches:
            writer.append(batch_to_arrays(batch, collections))
    return Path(path)
