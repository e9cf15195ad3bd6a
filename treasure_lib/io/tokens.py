"""Token files: the vocabulary, token Parquet (one row per jet or event), heptokens-style npz.

Token Parquet columns (DESIGN.md): `tokens` (list<int32>, grouped [L][Q] or flat [L*Q]),
`type_ids`, `mask`, `label`, `weight`, `event_index`, `source_file`, and the sample
metadata. Sequences are padded to a fixed length L with PAD (id 0, mask False). The
vocabulary, layout and card hashes are in the Parquet schema metadata.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputFileError

SPECIAL_TOKENS = {"PAD": 0, "CLS": 1, "SEP": 2, "MASK": 3}
META_VOCAB = b"treasure.vocabulary"
META_LAYOUT = b"treasure.layout"
META_CARDS = b"treasure.cards"
META_LEVELS = b"treasure.levels"


@dataclass
class Vocabulary:
    """Special ids 0-3, then one contiguous id range per (collection, level); type ids per collection."""

    ranges: list = field(default_factory=list)     # {"collection", "level", "start", "size", "kind", "feature"}
    type_ids: dict = field(default_factory=lambda: {"special": 0})

    def add(self, collection: str, type_id: int, levels: int, size: int, kind: str = "vq",
            features: Sequence[str] | None = None) -> None:
        start = self.size
        for q in range(levels):
            self.ranges.append({"collection": collection, "level": q, "start": start, "size": int(size), "kind": kind,
                                "feature": features[q] if features else None})
            start += int(size)
        self.type_ids[collection] = int(type_id)

    @property
    def size(self) -> int:
        return max([r["start"] + r["size"] for r in self.ranges], default=len(SPECIAL_TOKENS))

    def offsets(self, collection: str) -> np.ndarray:
        """First id of each level of a collection, [Q]."""
        rows = sorted((r for r in self.ranges if r["collection"] == collection), key=lambda r: r["level"])
        if not rows:
            raise KeyError(f"collection '{collection}' has no range in the vocabulary")
        return np.array([r["start"] for r in rows], dtype=np.int64)

    def to_json(self) -> str:
        return json.dumps({"special": SPECIAL_TOKENS, "ranges": self.ranges, "type_ids": self.type_ids, "size": self.size})

    @classmethod
    def from_json(cls, text: str | bytes) -> "Vocabulary":
        data = json.loads(text)
        return cls(ranges=data["ranges"], type_ids=data["type_ids"])


def to_global(indices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Local indices [..., Q] (-1 = padding) -> vocabulary ids (PAD where padded)."""
    return np.where(indices >= 0, indices + offsets, SPECIAL_TOKENS["PAD"]).astype(np.int32)


def _list_array(values: np.ndarray, width: int) -> pa.Array:
    """Rows of `width` consecutive values as a list array, built without a Python loop."""
    n = len(values) // width if width else 0
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(values))


def token_table(tokens: np.ndarray, type_ids: np.ndarray, mask: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                event_index: np.ndarray, source_file: str, metadata: Mapping, layout: str) -> pa.Table:
    """One Arrow table of token rows. `tokens` [n, L, Q] global ids; `type_ids`, `mask` [n, L]."""
    n, L, Q = tokens.shape
    if layout == "grouped":
        inner = _list_array(tokens.reshape(-1), Q)
        tok = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * L), inner)
        types, masks = type_ids, mask
    elif layout == "flat":
        tok = _list_array(tokens.reshape(-1), L * Q)
        types, masks = np.repeat(type_ids, Q, axis=1), np.repeat(mask, Q, axis=1)
    else:
        raise ValueError(f"unknown token layout {layout!r}; use grouped or flat")
    cols = {"tokens": tok, "type_ids": _list_array(types.astype(np.int32).reshape(-1), types.shape[1]),
            "mask": _list_array(masks.astype(bool).reshape(-1), masks.shape[1]),
            "label": pa.array(labels.astype(np.int64)), "weight": pa.array(weights.astype(np.float32)),
            "event_index": pa.array(event_index.astype(np.int64)), "source_file": pa.array([source_file] * n, pa.string())}
    for key in ("dsid", "process", "cross_section_pb", "filter_efficiency", "k_factor", "sqrt_s_tev", "is_mc"):
        if key in metadata:
            value = metadata[key]
            cols[key] = pa.array([value] * n)
    return pa.table(cols)


class TokenWriter:
    """Parquet in row groups, under a temporary name until `close()` (atomic)."""

    def __init__(self, path: str | Path, vocabulary: Vocabulary, layout: str, cards: Mapping[str, str], levels: int,
                 row_group_size: int = 10_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.meta = {META_VOCAB: vocabulary.to_json().encode(), META_LAYOUT: layout.encode(),
                     META_CARDS: json.dumps(dict(cards)).encode(), META_LEVELS: str(levels).encode()}
        self.row_group_size = row_group_size
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            schema = table.schema.with_metadata(self.meta)
            self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self._writer.write_table(table.replace_schema_metadata(self._writer.schema.metadata), row_group_size=self.row_group_size)
        self.rows += table.num_rows

    def close(self) -> Path:
        if self._writer is None:
            raise InputFileError(f"{self.path}: no rows to write (every row failed the cuts?)")
        self._writer.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def read_vocabulary(path: str | Path) -> tuple[Vocabulary, str, dict]:
    """(vocabulary, layout, card hashes) from a token Parquet's schema metadata."""
    meta = pq.read_schema(path).metadata or {}
    if META_VOCAB not in meta:
        raise InputFileError(f"{path}: not a TREASURE token file (no vocabulary in the Parquet metadata)")
    return Vocabulary.from_json(meta[META_VOCAB]), meta[META_LAYOUT].decode(), json.loads(meta[META_CARDS])


def iter_tokens(path: str | Path, batch_size: int = 10_000, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a token Parquet in record batches (never the whole file)."""
    yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)


def tokens_array(batch: pa.RecordBatch | pa.Table, levels: int | None = None) -> np.ndarray:
    """The `tokens` column as a dense int32 array: grouped [n, L, Q], flat [n, L*Q]."""
    col = batch.column(batch.schema.get_field_index("tokens"))
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    flat = col.flatten()
    if pa.types.is_list(flat.type):
        L = len(flat) // max(n, 1)
        values = flat.flatten().to_numpy()
        return values.reshape(n, L, -1)
    return flat.to_numpy().reshape(n, -1)


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

    def close(self, codebooks: np.ndarray) -> Path:
        self._raw.close()
        tmp = self.tmp_dir / "out.npz"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("indices.npy", "w", force_zip64=True) as fh, open(self.tmp_dir / "indices.raw", "rb") as raw:
                np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int32)),
                                                          "fortran_order": False, "shape": (self.rows,) + self.shape})
                for block in iter(lambda: raw.read(self.BLOCK_BYTES), b""):
                    fh.write(block)
            for name, arr in (("labels", np.concatenate(self.labels) if self.labels else np.zeros(0, np.int64)),
                              ("codebooks", np.asarray(codebooks, dtype=np.float32))):
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
