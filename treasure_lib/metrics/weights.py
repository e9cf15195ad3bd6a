"""Weight helpers: rescale MC weights to a mean of 1, optionally balancing classes."""

from __future__ import annotations

import numpy as np

from . import _checks


def normalise_weights(weights, labels=None, balance: bool = False) -> np.ndarray:
    """Weights scaled to sum to the number of events (mean 1), keeping their ratios.

    With `balance=True` (needs `labels`) each class present is scaled separately to the same total,
    n_events / n_classes, so a loss or a metric sees the classes equally. Negative weights keep their
    sign; a class (or the sample) whose total weight is not positive is an error.
    """
    w = _checks.column(weights, "weights")
    if not balance:
        return w * (w.size / _checks.positive_total(w.sum(), "the sample"))
    if labels is None:
        raise _checks.MetricInputError("normalise_weights(balance=True) needs labels")
    y = _checks.column(labels, "labels", w.size, dtype=np.int64)
    classes, group = np.unique(y, return_inverse=True)
    totals = np.bincount(group, weights=w, minlength=classes.size)
    for c, t in zip(classes, totals):
        _checks.positive_total(t, f"class {c}")
    return w * (w.size / classes.size / totals[group])
