"""In-memory form of one chunk of rows: every collection as padded arrays plus a mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ObjectArrays:
    """One collection for n rows: `features` float32 [n, max_n, F], `mask` bool [n, max_n].

    Scalar collections (one per row: MET, event info, the jet of a jet-level file) have
    max_n = 1 and an all-True mask. `truth` holds label fields, [n, max_n], native dtype.
    Padded entries have features 0.
    """

    features: np.ndarray
    mask: np.ndarray
    names: tuple[str, ...]
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)

    def feature(self, name: str) -> np.ndarray:
        """One feature, [n, max_n]."""
        return self.features[..., self.names.index(name)]

    def field(self, name: str) -> np.ndarray:
        """A feature or truth field by name, [n, max_n]."""
        return self.truth[name] if name in self.truth else self.feature(name)

    def take(self, rows: np.ndarray) -> ObjectArrays:
        return ObjectArrays(
            self.features[rows], self.mask[rows], self.names, {k: v[rows] for k, v in self.truth.items()}
        )

    @property
    def n_valid(self) -> int:
        return int(self.mask.sum())


@dataclass
class Batch:
    """A chunk of rows (events or jets) from one file."""

    collections: dict[str, ObjectArrays]
    labels: np.ndarray  # int64 [n], -1 where unlabelled
    weights: np.ndarray  # float32 [n]
    event_index: np.ndarray  # int64 [n], row in the source file
    source_file: str = ""
    metadata: dict = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)
    split: np.ndarray | None = None  # int8 [n]: 0 train, 1 val, 2 test (treasure_lib.splits)
    event_number: np.ndarray | None = None  # int64 [n]: the row's event number (its identity within the sample)

    def __len__(self) -> int:
        return len(self.event_index)

    def __getitem__(self, name: str) -> ObjectArrays:
        return self.collections[name]

    def scalars(self, name: str) -> np.ndarray:
        """A scalar collection as [n, F]."""
        return self.collections[name].features[:, 0, :]

    def take(self, rows: np.ndarray) -> Batch:
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return Batch(
            {k: v.take(rows) for k, v in self.collections.items()},
            self.labels[rows],
            self.weights[rows],
            self.event_index[rows],
            self.source_file,
            dict(self.metadata),
            dict(self.truncated),
            pick(self.split),
            pick(self.event_number),
        )


def concat(batches: Sequence[Batch]) -> Batch:
    """Join batches row-wise (for tests and small samples; streaming code never needs it)."""
    if not batches:
        raise ValueError("concat needs at least one batch")
    first = batches[0]
    cols = {}
    for name, oa in first.collections.items():
        parts = [b.collections[name] for b in batches]
        cols[name] = ObjectArrays(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.mask for p in parts]),
            oa.names,
            {k: np.concatenate([p.truth[k] for p in parts]) for k in oa.truth},
        )
    truncated: dict[str, int] = {}
    for b in batches:
        for k, v in b.truncated.items():
            truncated[k] = truncated.get(k, 0) + v
    sources = sorted({b.source_file for b in batches})

    def joined(name):
        if any(getattr(b, name) is None for b in batches):
            return None
        return np.concatenate([getattr(b, name) for b in batches])

    return Batch(
        cols,
        np.concatenate([b.labels for b in batches]),
        np.concatenate([b.weights for b in batches]),
        np.concatenate([b.event_index for b in batches]),
        ";".join(sources),
        dict(first.metadata),
        truncated,
        joined("split"),
        joined("event_number"),
    )


def join_padded(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Join (features [n, m, ...], mask [n, m]) chunks of one collection row-wise, padding every chunk to the widest
    m (features 0, mask False)."""
    feats, masks = zip(*parts)
    width = max(f.shape[1] for f in feats)

    def pad(a, value):
        return np.pad(a, ((0, 0), (0, width - a.shape[1])) + ((0, 0),) * (a.ndim - 2), constant_values=value)

    return np.concatenate([pad(f, 0) for f in feats]), np.concatenate([pad(m, False) for m in masks])
