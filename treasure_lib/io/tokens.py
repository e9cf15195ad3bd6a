"""Token files: token Parquet (one row per jet or event) and the heptokens-style npz.

Token Parquet columns (DESIGN.md): `tokens` (grouped list<list<int32>> [L][Q] or flat
list<int32> [L']), `type_ids`, `mask`, `label`, `weight`, `split`, `event_index`,
`event_number`, `source_file`, the sample metadata and normalisation (`n_events_generated`,
`sum_of_weights`), and study columns such as `jet_pt`. A features file holds `features`
[L][F] (float32) instead of `tokens`. The `TokenizerSet` (vocabulary, layout, cards), split
fractions, class names and library versions are in the Parquet schema metadata under
`treasure.*` keys, so a reader needs nothing else.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputFileError

META_PREFIX = "treasure."
SAMPLE_COLUMNS = ("dsid", "process", "cross_section_pb", "filter_efficiency", "k_factor", "sqrt_s_tev", "is_mc")


def _list_array(values: np.ndarray, width: int) -> pa.Array:
    """Rows of `width` consecutive values as a list array, built without a Python loop."""
    n = len(values) // width if width else 0
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(values))


def nested_list(values: np.ndarray) -> pa.Array:
    """[n, L] -> list<v>, [n, L, Q] -> list<list<v>> (fixed widths, no Python loop)."""
    n = values.shape[0]
    if values.ndim == 2:
        return _list_array(values.reshape(-1), values.shape[1])
    inner = _list_array(values.reshape(-1), values.shape[2])
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * values.shape[1]), inner)


def ragged_list(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """[n, L, F] stored at the mask-True positions only: list<list<v>> with a variable number of positions per row.

    Raw features are mostly padding (a jet has ~7 of 40 track slots filled); `dense_features` restores [n, L, F].
    """
    width = values.shape[-1]
    inner = _list_array(np.ascontiguousarray(values[mask]).reshape(-1), width)
    offsets = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def token_table(
    sequence_column: str,
    values: np.ndarray,
    type_ids: np.ndarray,
    mask: np.ndarray,
    columns: Mapping[str, np.ndarray],
    constants: Mapping[str, object],
) -> pa.Table:
    """One Arrow table of rows: the sequence (`tokens`, or `features` stored ragged), type ids, mask, other columns."""
    n = len(mask)
    sequence = ragged_list(values, mask) if sequence_column == "features" else nested_list(values)
    cols = {
        sequence_column: sequence,
        "type_ids": nested_list(type_ids.astype(np.int32)),
        "mask": nested_list(mask.astype(bool)),
    }
    for key, value in columns.items():
        cols[key] = pa.array(value)
    for key, value in constants.items():
        cols[key] = pa.array([value] * n)
    return pa.table(cols)


class TokenWriter:
    """Parquet in row groups, under a temporary name until `close()` (atomic). `metadata`: treasure.* key -> JSON text.

    Rows are buffered into full row groups of `row_group_size` (the last one holds the rest), so the file's bytes do
    not depend on how the rows arrived (the chunk size of the H5 read, the export batch size)."""

    def __init__(self, path: str | Path, metadata: Mapping[str, str], row_group_size: int = 10_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.meta = {(META_PREFIX + k).encode(): v.encode() for k, v in metadata.items()}
        self.row_group_size = row_group_size
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            schema = table.schema.with_metadata(self.meta)
            self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self._pending.append(table.replace_schema_metadata(self._writer.schema.metadata))
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= self.row_group_size:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        """Write the buffered rows as full row groups (and, when `final`, the rest as the last one)."""
        if not self._pending:
            return
        rows = pa.concat_tables(self._pending).combine_chunks()
        full = rows.num_rows if final else rows.num_rows // self.row_group_size * self.row_group_size
        if full:
            self._writer.write_table(rows.slice(0, full), row_group_size=self.row_group_size)
        rest = rows.slice(full)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> Path:
        if self._writer is None:
            raise InputFileError(f"{self.path}: no rows to write (every row failed the cuts?)")
        self._flush(final=True)
        self._writer.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The treasure.* schema metadata of a token Parquet (keys without the prefix), or an error naming the file."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
    out = {k.decode()[len(META_PREFIX) :]: v.decode() for k, v in meta.items() if k.decode().startswith(META_PREFIX)}
    if "vocabulary" not in out:
        raise InputFileError(f"{path}: not a TREASURE token file (no treasure.vocabulary in the Parquet metadata)")
    return out


def read_json_metadata(path: str | Path, key: str, default=None):
    meta = read_metadata(path)
    return json.loads(meta[key]) if key in meta else default


def iter_tokens(
    path: str | Path, batch_size: int = 10_000, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream a token Parquet in record batches (never the whole file)."""
    yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)


def list_column(batch: pa.RecordBatch | pa.Table, name: str) -> np.ndarray:
    """A fixed-width list column as a dense array: list<v> -> [n, L], list<list<v>> -> [n, L, Q]."""
    col = batch.column(batch.schema.get_field_index(name))
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    flat = col.flatten()
    if pa.types.is_list(flat.type):
        L = len(flat) // max(n, 1)
        values = flat.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(n, L, -1)
    return flat.to_numpy(zero_copy_only=False).reshape(n, -1)


def dense_features(batch: pa.RecordBatch | pa.Table, mask: np.ndarray | None = None) -> np.ndarray:
    """The ragged `features` column back to float32 [n, L, F] (zeros where mask is False)."""
    mask = list_column(batch, "mask").astype(bool) if mask is None else mask
    col = batch.column(batch.schema.get_field_index("features"))
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    inner = col.flatten()
    width = len(inner.flatten()) // max(len(inner), 1)
    out = np.zeros(mask.shape + (width,), dtype=np.float32)
    out[mask] = inner.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    return out


def tokens_array(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """The `tokens` column as a dense int32 array: grouped [n, L, Q], flat [n, L']."""
    return list_column(batch, "tokens")


class NpzWriter:
    """The heptokens-style npz (`indices [N, M, Q]` with -1 padding, `labels [N]`, `codebooks [Q, K, D]`).

    Index blocks are appended to a plain temporary file (not a memory map, whose touched
    pages would count as resident memory), so memory stays flat however large the export;
    the npz is assembled from it at the end under a temporary name, then renamed.
    """

    BLOCK_BYTES = 1 << 24

    def __init__(self, path: str | Path, width: int, levels: int):
        self.path = Path(path)
        self.tmp_dir = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.shape = (width, levels)
        self._raw = open(self.tmp_dir / "indices.raw", "wb")
        self.labels: list[np.ndarray] = []
        self.rows = 0

    def write(self, indices: np.ndarray, labels: np.ndarray) -> None:
        if indices.shape[1:] != self.shape:
            raise ValueError(f"{self.path}: index rows have shape {indices.shape[1:]}, expected {self.shape}")
        self._raw.write(np.ascontiguousarray(indices, dtype=np.int32).tobytes())
        self.labels.append(labels.astype(np.int64))
        self.rows += len(indices)

    def close(self, codebooks: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> Path:
        self._raw.close()
        tmp = self.tmp_dir / "out.npz"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("indices.npy", "w", force_zip64=True) as fh, open(self.tmp_dir / "indices.raw", "rb") as raw:
                np.lib.format.write_array_header_1_0(
                    fh,
                    {
                        "descr": np.lib.format.dtype_to_descr(np.dtype(np.int32)),
                        "fortran_order": False,
                        "shape": (self.rows,) + self.shape,
                    },
                )
                for block in iter(lambda: raw.read(self.BLOCK_BYTES), b""):
                    fh.write(block)
            arrays = [
                ("labels", np.concatenate(self.labels) if self.labels else np.zeros(0, np.int64)),
                ("codebooks", np.asarray(codebooks, dtype=np.float32)),
            ] + list((extra or {}).items())
            for name, arr in arrays:
                with zf.open(f"{name}.npy", "w") as fh:
                    np.lib.format.write_array(fh, arr, allow_pickle=False)
        os.replace(tmp, self.path)
        self.abort()
        return self.path

    def abort(self) -> None:
        import shutil

        if not self._raw.closed:
            self._raw.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
