"""Streaming training data for a tokenizer: scaled sets of one collection, mixed across files.

Training rows come from the train split only and are interleaved across files with a bounded
shuffle buffer (`io.mixing`), in a new order every epoch; validation rows come from the val
split in a fixed order. Batches are formed by object count, not row count, so every collection
brings the same number of objects per code per step. Rows without a valid object are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset

from ..io import mixing
from ..io.batch import Batch, ObjectArrays
from ..io.reader import H5Stream
from ..preprocessing import CollectionScaler


class CollectionSets(IterableDataset):
    """Yields (cont [B, N, Fc], cat [B, N, Fk], mask [B, N]) batches of one collection.

    `stream` should select one split (H5Stream(select_split=...)). With `shuffle` the files are
    read in interleaved blocks of `block_rows` and rows pass a shuffle buffer of `buffer_rows`;
    without, files are read in order (validation: the same batches every epoch).
    `to_collection` turns a Batch into the ObjectArrays to train on (default: the named collection).
    With `cache_rows` > 0, a complete pass of at most that many rows is kept in memory and later
    epochs draw from it (a full shuffle of every row, no I/O); larger sets keep streaming.

    Under DDP every rank forms the same sequence of batches (same files, seed and epoch) and keeps
    every world-th one, dropping an incomplete last round: the ranks see disjoint batches and take
    the same number of steps. `rank`/`world_size` override what torch.distributed says (world 1:
    all batches, e.g. the main process re-validating after training).
    """

    def __init__(
        self,
        stream: H5Stream,
        collection: str,
        scaler: CollectionScaler,
        objects_per_batch: int,
        *,
        shuffle: bool,
        seed: int = 0,
        buffer_rows: int = 20_000,
        block_rows: int = 256,
        to_collection: Callable[[Batch], ObjectArrays] | None = None,
        max_batches: int | None = None,
        cache_rows: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__()
        self._rank, self._world = rank, world_size
        self.stream = stream
        self.collection = collection
        self.scaler = scaler
        self.objects_per_batch = objects_per_batch
        self.shuffle = shuffle
        self.seed = seed
        self.buffer_rows = buffer_rows
        self.block_rows = block_rows
        self.to_collection = to_collection
        self.max_batches = max_batches  # per pass (Lightning's own limit skips validation on short iterables)
        self.cache_rows = cache_rows
        self._cache: dict | None = None
        self.epoch = 0

    def _parts(self, blocks) -> Iterator[dict]:
        for i, start, stop in blocks:
            batch = self.stream.read_block(i, start, stop)
            if batch is None:
                continue
            oa = self.to_collection(batch) if self.to_collection else batch[self.collection]
            rows = np.flatnonzero(oa.mask.any(axis=1))
            if not len(rows):
                continue
            cont, cat = self.scaler.transform(oa.features[rows], oa.mask[rows], where=batch.source_file)
            yield {
                "cont": cont,
                "cat": cat,
                "mask": oa.mask[rows],
                "file": np.full(len(rows), i, np.int32),
                "event_number": batch.event_number[rows],
            }

    def arrays(self) -> Iterator[dict]:
        """One pass as dicts of numpy arrays (with the source file index of each row): what __iter__ batches."""
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        if self._cache is not None:
            order = rng.permutation(len(self._cache["mask"])) if self.shuffle else slice(None)
            parts = iter([{k: v[order] for k, v in self._cache.items()}])
            yield from self._batches(parts)
            return
        sizes = [self.stream.n_rows(i) for i in range(len(self.stream.files))]
        if self.shuffle:
            parts = mixing.shuffled(
                self._parts(mixing.interleaved_blocks(sizes, self.block_rows, rng)), self.buffer_rows, rng
            )
        else:
            chunk = self.stream.chunk_size
            parts = self._parts((i, s, min(s + chunk, n)) for i, n in enumerate(sizes) for s in range(0, n, chunk))
        yield from self._batches(self._caching(parts))

    def _caching(self, parts: Iterator[dict]) -> Iterator[dict]:
        """Pass parts through, keeping them when the whole pass fits `cache_rows`."""
        kept, rows = [], 0
        for part in parts:
            rows += len(part["mask"])
            if rows <= self.cache_rows:
                kept.append(part)
            yield part
        if kept and rows <= self.cache_rows:
            self._cache = {k: np.concatenate([p[k] for p in kept]) for k in kept[0]}

    def placement(self) -> tuple[int, int]:
        """(rank, world size) of this process: as given, else torch.distributed's, else (0, 1)."""
        if self._world is not None:
            return self._rank or 0, self._world
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _batches(self, parts: Iterator[dict]) -> Iterator[dict]:
        rank, world = self.placement()
        produced, pending = 0, []
        for batch in mixing.by_objects(parts, self.objects_per_batch):
            if world > 1:  # a round of `world` batches: this rank's is number `rank`
                pending.append(batch)
                if len(pending) < world:
                    continue
                batch, pending = pending[rank], []
            if self.max_batches is not None and produced >= self.max_batches:
                return
            produced += 1
            yield batch

    def __iter__(self):
        for b in self.arrays():
            yield torch.from_numpy(b["cont"]), torch.from_numpy(b["cat"]), torch.from_numpy(b["mask"])
