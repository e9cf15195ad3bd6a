"""Flat summaries of a classifier (short keys; the caller adds the metrics.json prefix) and
evaluation in bins of a variable (performance vs jet pT)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np

from . import _checks
from .roc import accuracy, bootstrap_auc, bootstrap_macro_auc, class_n_eff
from .uncertainty import hanley_mcneil


def binary_summary(y_true, score, weight=None, n_boot: int = 200, seed: int = 0) -> dict:
    """Signal (y_true == 1) vs background: auc, auc_err (Hanley-McNeil, n_eff), auc_boot_std,
    auc_boot_low / auc_boot_high (68% bootstrap interval), n_signal, n_background (events),
    n_eff_signal, n_eff_background."""
    y = _checks.column(y_true, "y_true", dtype=np.int64)
    boot = bootstrap_auc(y, score, weight, n_boot=n_boot, seed=seed)
    n_eff_s, n_eff_b = class_n_eff(y, weight)
    return {
        "auc": boot["value"],
        "auc_err": hanley_mcneil(boot["value"], n_eff_s, n_eff_b),
        "auc_boot_std": boot["std"],
        "auc_boot_low": boot["low"],
        "auc_boot_high": boot["high"],
        "n_signal": int(np.count_nonzero(y == 1)),
        "n_background": int(np.count_nonzero(y != 1)),
        "n_eff_signal": n_eff_s,
        "n_eff_background": n_eff_b,
    }


def multiclass_summary(
    y_true, probs, weight=None, class_names: Sequence[str] | None = None, n_boot: int = 200, seed: int = 0
) -> dict:
    """auc_macro, auc_macro_err (bootstrap std), accuracy, and per class present: auc_<name>,
    auc_<name>_err (Hanley-McNeil, n_eff), n_<name>. Default names are the class indices."""
    p = _checks.probabilities(probs)
    y = _checks.class_labels(y_true, p.shape[1])
    names = [str(c) for c in range(p.shape[1])] if class_names is None else list(class_names)
    if len(names) != p.shape[1]:
        raise _checks.MetricInputError(f"{len(names)} class_names for {p.shape[1]} columns of probs")
    boot = bootstrap_macro_auc(y, p, weight, n_boot=n_boot, seed=seed)
    out = {"auc_macro": boot["value"], "auc_macro_err": boot["std"], "accuracy": accuracy(y, p, weight)}
    for c, value in boot["per_class"].items():
        out[f"auc_{names[c]}"], out[f"auc_{names[c]}_err"] = value, boot["per_class_err"][c]
    for c, name in enumerate(names):
        out[f"n_{name}"] = int(np.count_nonzero(y == c))
    return out


def in_bins(x, bins, fn: Callable, *arrays) -> list[dict]:
    """`fn(*arrays)` on the events of each bin of `x`: a list of {low, high, n, **result}.

    Bins are [low, high), the last one [low, high] (as np.histogram); x and bins share units
    (jet_pt is MeV in the token Parquet: pass jet_pt / 1e3 for GeV edges). `fn` returns a flat dict
    (e.g. `lambda l, p, w: flavour_summary(l, p, w, n_boot=50)`) or a number (stored as `value`);
    `None` entries of `arrays` pass through. A bin where `fn` raises MetricInputError (no signal
    there, say) keeps only its edges, n and `error` (the message), so a plot can skip it.
    """
    x = _checks.column(x, "x")
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise _checks.MetricInputError(f"bins must be increasing edges, got {edges.tolist()}")
    given = [np.asarray(a) if a is not None else None for a in arrays]
    for a in given:
        if a is not None and len(a) != x.size:
            raise _checks.MetricInputError(f"in_bins: an array has {len(a)} rows, x has {x.size}")
    index = np.searchsorted(edges, x, side="right") - 1
    index[x == edges[-1]] = edges.size - 2
    rows = []
    for b, (low, high) in enumerate(pairwise(edges)):
        sel = index == b
        row = {"low": float(low), "high": float(high), "n": int(np.count_nonzero(sel))}
        try:
            result = fn(*(a[sel] if a is not None else None for a in given))
            row.update(result if isinstance(result, dict) else {"value": float(result)})
        except _checks.MetricInputError as err:
            row["error"] = str(err)
        rows.append(row)
    return rows
