"""Batches of a split that fits in memory: a full shuffle every epoch, rows of similar length batched together.

A CPU study's splits are small (tens of thousands of sequences), so reading the Parquet files once and
drawing every epoch from memory costs less than decoding them again each epoch. Sequences vary a lot
in length (a jet has 2 to 40 tracks) while a batch is as long as its longest row, so rows are sorted
by length within windows of `window` batches of a shuffled epoch (length bucketing): batches are
shorter, and which rows meet in a batch still changes every epoch. The batch order is shuffled too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

WINDOW_BATCHES = 16  # batches per length-sorting window: wide enough to cut padding, narrow enough to keep mixing


def batch_indices(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
    *,
    shard: int = 0,
    shards: int = 1,
    equal: bool = False,
    window: int = WINDOW_BATCHES,
) -> list[np.ndarray]:
    """Row indices of each batch of one epoch for one shard.

    `rng` None: no shuffling (validation), rows sorted by length. Shards (DDP ranks x workers) take
    interleaved rows of one common permutation, so they are disjoint and equally sized to within one
    row; `equal` drops each shard's last partial batch so every shard yields the same number of batches.
    """
    n = len(lengths)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    order = order[shard::shards]
    if rng is None:
        order = order[np.argsort(lengths[order], kind="stable")]
    else:
        span = max(batch_size * window, 1)
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            order[start : start + span] = chunk[np.argsort(lengths[chunk], kind="stable")]
    per_shard = n // shards if equal else len(order)
    stop = per_shard // batch_size * batch_size if equal else len(order)
    batches = [order[s : s + batch_size] for s in range(0, stop, batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def sequence_lengths(mask: np.ndarray) -> np.ndarray:
    """Positions up to the last valid one of each row (what a trimmed batch keeps)."""
    valid = mask.reshape(len(mask), -1)
    last = valid.shape[1] - np.argmax(valid[:, ::-1], axis=1)
    return np.where(valid.any(1), last, 0)


def take(rows: Mapping[str, np.ndarray], idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in rows.items()}


def epoch(
    rows: Mapping[str, np.ndarray],
    lengths: np.ndarray,
    batch_size: int,
    rng,
    *,
    shard: int = 0,
    shards: int = 1,
    equal: bool = False,
    max_batches: int | None = None,
) -> Iterator[dict]:
    """One epoch's batches (dicts of arrays) for one shard."""
    for i, idx in enumerate(batch_indices(lengths, batch_size, rng, shard=shard, shards=shards, equal=equal)):
        if max_batches and i >= max_batches:
            return
        yield take(rows, idx)
