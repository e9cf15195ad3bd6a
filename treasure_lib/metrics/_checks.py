"""Input checks shared by the metrics: one place that says what a metric accepts."""

from __future__ import annotations

import numpy as np

from ..errors import MetricInputError


def column(values, name: str, n: int | None = None, dtype=np.float64) -> np.ndarray:
    """A 1-d array of `n` finite values (named in the error when not)."""
    arr = np.asarray(values, dtype=dtype).reshape(-1) if np.ndim(values) <= 1 else None
    if arr is None:
        raise MetricInputError(f"'{name}' must be 1-d, got shape {np.shape(values)}")
    if n is not None and arr.size != n:
        raise MetricInputError(f"'{name}' has {arr.size} entries, expected {n} (one per event)")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise MetricInputError(f"'{name}' holds {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def weights(weight, n: int) -> np.ndarray:
    """Per-event weights as float64; None means 1 for every event."""
    return np.ones(n) if weight is None else column(weight, "weight", n)


def probabilities(probs, n: int | None = None) -> np.ndarray:
    """Class scores [n, C] as float64."""
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or (n is not None and arr.shape[0] != n):
        raise MetricInputError(f"'probs' must be [n_events, n_classes] with n_events={n}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"'probs' holds {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def class_labels(y_true, n_classes: int | None) -> np.ndarray:
    """Integer labels that index the columns of probs (any non-negative label when n_classes is None)."""
    y = column(y_true, "y_true", dtype=np.int64)
    top = np.iinfo(np.int64).max if n_classes is None else n_classes - 1
    if y.size and (y.min() < 0 or y.max() > top):
        raise MetricInputError(f"'y_true' must hold class indices 0..{top}, got {y.min()}..{y.max()}")
    return y


def positive_total(total: float, what: str) -> float:
    """A class total weight that can normalise an efficiency (> 0)."""
    if not total > 0:
        raise MetricInputError(f"{what} has total weight {total:g}; a metric needs it > 0")
    return float(total)
