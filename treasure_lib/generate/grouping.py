"""Flat per-batch arrays grouped by event (or by jet), vectorised: the pairs within a group, and padding by group.

Why this module: the generator keeps every object type flat, one row per object with `evt` saying which event,
and answers "which tracks near which jet" or "the leading N of each event" with array operations instead of Python
loops over events. Used by tracks (isolation), jets (labels, track association, track variables) and the output
layouts (padding objects into [events, max] arrays).
"""

from __future__ import annotations

import numpy as np


def event_pairs(evt_a: np.ndarray, evt_b: np.ndarray, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with evt_a[i] == evt_b[j], without a Python loop over events."""
    order_b = np.argsort(evt_b, kind="stable")
    counts_b = np.bincount(evt_b, minlength=n_events)
    offs_b = np.concatenate([[0], np.cumsum(counts_b)])
    per_a = counts_b[evt_a]
    ia = np.repeat(np.arange(len(evt_a)), per_a)
    start = np.repeat(np.cumsum(per_a) - per_a, per_a)
    ib = order_b[offs_b[evt_a[ia]] + (np.arange(len(ia)) - start)]
    return ia, ib


def pad_by_group(group: np.ndarray, key: np.ndarray, n_groups: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [n_groups, width] of members of each group ordered by `key` ascending, and a mask."""
    order = np.lexsort((key, group))
    g = group[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    rank = np.arange(len(g)) - starts[g]
    keep = rank < width
    idx = np.zeros((n_groups, width), dtype=np.int64)
    mask = np.zeros((n_groups, width), dtype=bool)
    idx[g[keep], rank[keep]] = order[keep]
    mask[g[keep], rank[keep]] = True
    return idx, mask
