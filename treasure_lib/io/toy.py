"""Random but schema-valid rows for tests and benchmarks (the generator makes realistic ones)."""

from __future__ import annotations

import numpy as np

from treasure_lib.io.batch import Batch, ObjectArrays

FLAVOURS = np.array([0, 4, 5, 15])


def make_batch(collections, n: int, seed: int = 0, width: dict | None = None, start: int = 0) -> Batch:
    """Random but plausible rows: pt in MeV (log-normal), object counts varying per row.

    Objects are written unsorted so that the reader's ordering is exercised.
    """
    rng = np.random.default_rng(seed)
    cols = {}
    for name, c in collections.items():
        m = 1 if c.is_scalar else (width or {}).get(name, c.max_objects)
        feats = rng.normal(size=(n, m, len(c.features))).astype(np.float32)
        for i, f in enumerate(c.features):
            if f in c.log_features or f == "pt":
                feats[..., i] = np.exp(rng.normal(10.0, 1.0, size=(n, m))).astype(np.float32)
            if f in c.categorical:
                feats[..., i] = rng.integers(0, 3, size=(n, m))
        if c.is_scalar:
            mask = np.ones((n, 1), dtype=bool)
        else:
            counts = rng.integers(0, m + 1, size=n)
            mask = np.arange(m)[None, :] < counts[:, None]
            mask = np.take_along_axis(mask, rng.permuted(np.tile(np.arange(m), (n, 1)), axis=1), axis=1)
        feats[~mask] = 0.0
        truth = {}
        for t in c.truth:
            if t == "HadronConeExclTruthLabelID":
                truth[t] = rng.choice(FLAVOURS, size=(n, m)).astype(np.int32)
            elif t == "eventNumber":  # unique per row, as in real files
                truth[t] = np.repeat((start + np.arange(n))[:, None], m, axis=1).astype(np.int64)
            elif t == "mcEventWeight":
                truth[t] = rng.uniform(0.5, 1.5, size=(n, m)).astype(np.float32)
            else:
                truth[t] = rng.integers(0, 8, size=(n, m)).astype(np.int32)
        cols[name] = ObjectArrays(feats, mask, c.features, truth)
    return Batch(cols, np.full(n, -1), np.ones(n, np.float32), np.arange(start, start + n))
