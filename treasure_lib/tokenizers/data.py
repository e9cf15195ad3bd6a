"""Streaming training data for a tokenizer: scaled sets of one collection from H5 chunks.

Rows go to train or validation by a hash of (file, row) so the split is fixed whatever the
chunk size; rows without any valid object are skipped; batches are shuffled within a chunk
with a seeded generator (a new permutation each epoch), so memory stays one chunk.
"""
from __future__ import annotations

import zlib
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset

from ..io.batch import Batch
from ..preprocessing import CollectionScaler


def validation_rows(source_file: str, event_index: np.ndarray, fraction: float) -> np.ndarray:
    """A fixed pseudo-random `fraction` of rows, decided per (file name, row)."""
    salt = zlib.crc32(source_file.rsplit("/", 1)[-1].encode())
    h = (event_index.astype(np.uint64) * np.uint64(2654435761) + np.uint64(salt)) % np.uint64(1_000_003)
    return h < np.uint64(int(fraction * 1_000_003))


class CollectionSets(IterableDataset):
    """Yields (cont [B, N, Fc], cat [B, N, Fk], mask [B, N]) batches of one collection."""

    def __init__(self, batches: Callable[[], Iterator[Batch]], collection: str, scaler: CollectionScaler,
                 batch_size: int, split: str, val_fraction: float, seed: int, to_collection=None,
                 max_batches: int | None = None):
        super().__init__()
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be train, val or all; got {split!r}")
        self.batches = batches
        self.collection = collection
        self.scaler = scaler
        self.batch_size = batch_size
        self.split = split
        self.val_fraction = val_fraction
        self.seed = seed
        self.epoch = 0
        self.to_collection = to_collection  # optional Batch -> ObjectArrays (e.g. the combined event set)
        self.max_batches = max_batches      # per pass (Lightning's own limit skips validation on short iterables)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        produced = 0
        for batch in self.batches():
            oa = self.to_collection(batch) if self.to_collection else batch[self.collection]
            keep = oa.mask.any(axis=1)
            if self.split != "all":
                val = validation_rows(batch.source_file, batch.event_index, self.val_fraction)
                keep &= val if self.split == "val" else ~val
            rows = np.flatnonzero(keep)
            if self.split == "train":
                rows = rng.permutation(rows)
            cont, cat = self.scaler.transform(oa.features[rows], oa.mask[rows])
            mask = oa.mask[rows]
            for start in range(0, len(rows), self.batch_size):
                if self.max_batches is not None and produced >= self.max_batches:
                    return
                sl = slice(start, start + self.batch_size)
                produced += 1
                yield torch.from_numpy(cont[sl]), torch.from_numpy(cat[sl]), torch.from_numpy(mask[sl])
