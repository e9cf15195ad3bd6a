"""Mixing rows across files for training, in bounded memory.

Each input file usually holds one process, so reading files in order (or shuffling within a
chunk) trains on one process at a time and initialises codebooks on whatever comes first. A pass
here reads small blocks of rows in an order where every file's blocks are spread evenly over the
pass (so any stretch of the pass holds every file in proportion to its size), and a shuffle buffer
of a bounded number of rows mixes rows across those blocks. The order is new every epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def interleaved_blocks(
    sizes: list[int], block_rows: int, rng: np.random.Generator, keep_order: bool = False
) -> list[tuple[int, int, int]]:
    """(file, start, stop) blocks of every file, ordered so each file's blocks spread evenly over the pass.

    A file with b blocks puts its k-th block (in a random order) at position (k + u) / b with u uniform,
    so the blocks of all files interleave in proportion to their sizes. `keep_order` visits a file's
    blocks in file order from a random starting block (readers that cache one chunk per file).
    """
    blocks, keys = [], []
    for i, n in enumerate(sizes):
        starts = np.arange(0, int(n), block_rows)
        if not len(starts):
            continue
        starts = (
            np.roll(starts, -int(rng.integers(len(starts)))) if keep_order else starts[rng.permutation(len(starts))]
        )
        keys.append((np.arange(len(starts)) + rng.random(len(starts))) / len(starts))
        blocks += [(i, int(s), int(min(s + block_rows, n))) for s in starts]
    if not blocks:
        return []
    order = np.argsort(np.concatenate(keys), kind="stable")
    return [blocks[j] for j in order]


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _rows(part: dict) -> int:
    return len(next(iter(part.values())))


def shuffled(parts: Iterable[dict], capacity: int, rng: np.random.Generator) -> Iterator[dict]:
    """Rows of dict-of-array `parts` in a random order, holding at most ~`capacity` rows (plus one part).

    Fill the buffer, shuffle it, hand out half, keep the other half and refill: every row handed out
    was drawn from a buffer of at least capacity / 2 rows from many blocks.
    """
    buffer: list[dict] = []
    held = 0
    for part in parts:
        if not _rows(part):
            continue
        buffer.append(part)
        held += _rows(part)
        if held >= capacity:
            rows = _concat(buffer)
            perm = rng.permutation(held)
            keep = capacity // 2
            yield {k: v[perm[keep:]] for k, v in rows.items()}
            buffer, held = [{k: v[perm[:keep]] for k, v in rows.items()}], keep
    if held:
        rows = _concat(buffer)
        perm = rng.permutation(held)
        yield {k: v[perm] for k, v in rows.items()}


def by_objects(
    parts: Iterable[dict], objects_per_batch: int, mask_key: str = "mask", drop_last: bool = False
) -> Iterator[dict]:
    """Re-batch rows so each batch holds at least `objects_per_batch` valid objects (rows are never split).

    Batching by objects, not rows, keeps the number of objects per code per step the same for
    frequent and rare collections, which is what codebook statistics are normalised to.
    """
    carry: dict | None = None
    for part in parts:
        rows = part if carry is None else _concat([carry, part])
        counts = rows[mask_key].reshape(len(rows[mask_key]), -1).sum(axis=1)
        total = np.cumsum(counts)
        start = 0
        while start < len(total):  # one step per batch, not per row
            before = total[start - 1] if start else 0
            end = int(np.searchsorted(total, before + objects_per_batch, side="left")) + 1
            if end > len(total):
                break
            yield {k: v[start:end] for k, v in rows.items()}
            start = end
        carry = {k: v[start:] for k, v in rows.items()} if start < len(counts) else None
    if carry is not None and not drop_last and _rows(carry):
        yield carry
