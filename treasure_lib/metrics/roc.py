"""Weighted ROC curves and AUCs (equal to scikit-learn's with sample_weight), and their bootstrap.

Signal is `y_true == 1`, everything else is background. Events with equal scores form one ROC
point (as in sklearn), so a tie between a signal and a background event counts one half in the
AUC. Weights enter as they are, negative ones included (the sums stay unbiased estimates; the
curve may then step backwards); a class whose total weight is not positive is an error.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .uncertainty import check_level, hanley_mcneil, n_effective, resample_counts, summarise_replicates


class RankedScores:
    """Events sorted by descending score once, so every weighting (bootstrap counts) costs O(n)."""

    def __init__(self, y_true, score, weight=None):
        score = _checks.column(score, "score")
        y = _checks.column(y_true, "y_true", score.size, dtype=np.int64)
        w = _checks.weights(weight, score.size)
        self.order = np.ascontiguousarray(np.argsort(score)[::-1])  # tie order is irrelevant: ties form one point
        self.score = score[self.order]
        self.signal = y[self.order] == 1
        self.weight = w[self.order]
        # last event of each group of equal scores: one ROC point per distinct score
        self.ends = np.r_[np.flatnonzero(np.diff(self.score)), score.size - 1] if score.size else np.zeros(0, int)
        self.distinct = self.ends.size == score.size  # no ties: no gather at the group ends

    def cumulative(self, counts=None):
        """Weighted signal and background passing each distinct threshold, with a leading 0.

        `counts` [n] (row multiplicities in the caller's original order) weights a bootstrap replicate.
        """
        w = self.weight if counts is None else counts[self.order] * self.weight
        tps, fps = np.zeros(self.ends.size + 1), np.zeros(self.ends.size + 1)
        signal_w = w * self.signal  # exact: w * 1 and w - w * 1 are w and 0 in floats
        for passed, mine in ((tps, signal_w), (fps, w - signal_w)):
            if self.distinct:
                np.cumsum(mine, out=passed[1:])
            else:
                passed[1:] = np.cumsum(mine)[self.ends]
        return tps, fps

    def n_eff(self) -> tuple[float, float]:
        """Effective numbers of (signal, background) events."""
        return n_effective(self.weight[self.signal]), n_effective(self.weight[~self.signal])

    def totals(self):
        """Total (signal, background) weight, checked positive."""
        return (
            _checks.positive_total(self.weight[self.signal].sum(), "signal (y_true == 1)"),
            _checks.positive_total(self.weight[~self.signal].sum(), "background (y_true != 1)"),
        )


def _area(tps, fps):
    """Trapezoid AUC from cumulative counts; nan when a class has no weight (a bootstrap replicate)."""
    p, n = tps[-1], fps[-1]
    area = np.sum(np.diff(fps) * (tps[1:] + tps[:-1])) / 2.0
    return float(area / (p * n)) if p > 0 and n > 0 else float("nan")


def roc_curve(y_true, score, weight=None):
    """(fpr, tpr, thresholds): one point per distinct score, starting at (0, 0) with threshold inf.

    Equals sklearn.metrics.roc_curve(..., sample_weight=weight, drop_intermediate=False);
    an event passes a threshold when score >= threshold.
    """
    ranked = RankedScores(y_true, score, weight)
    p, n = ranked.totals()
    tps, fps = ranked.cumulative()
    return fps / n, tps / p, np.r_[np.inf, ranked.score[ranked.ends]]


def roc_points(sm_scores, signal_scores, sm_weight=None, signal_weight=None) -> tuple[np.ndarray, np.ndarray]:
    """(sm_eff, signal_eff) of an anomaly score (higher = more anomalous), one point per distinct score from
    (0, 0): the fractions of the standard-model and signal samples at or above each threshold (`roc_curve` with
    the signal as class 1)."""
    sm, signal = _checks.column(sm_scores, "sm_scores"), _checks.column(signal_scores, "signal_scores")
    weight = None
    if sm_weight is not None or signal_weight is not None:
        weight = np.r_[_checks.weights(sm_weight, sm.size), _checks.weights(signal_weight, signal.size)]
    fpr, tpr, _ = roc_curve(
        np.r_[np.zeros(sm.size, np.int64), np.ones(signal.size, np.int64)], np.r_[sm, signal], weight
    )
    return fpr, tpr


def auc(y_true, score, weight=None) -> float:
    """Weighted ROC AUC: the weighted probability that signal outscores background, ties counting 1/2."""
    ranked = RankedScores(y_true, score, weight)
    ranked.totals()
    return float(_area(*ranked.cumulative()))


def class_n_eff(y_true, weight=None) -> tuple[float, float]:
    """Effective numbers of (signal, background) events, signal = y_true == 1."""
    y = _checks.column(y_true, "y_true", dtype=np.int64)
    w = _checks.weights(weight, y.size)
    return n_effective(w[y == 1]), n_effective(w[y != 1])


def auc_uncertainty(y_true, score, weight=None) -> float:
    """Hanley-McNeil standard error of the AUC with each class's effective number of events."""
    return hanley_mcneil(auc(y_true, score, weight), *class_n_eff(y_true, weight))


def bootstrap_auc(y_true, score, weight=None, n_boot: int = 200, seed: int = 0, level: float = 0.68) -> dict:
    """`bootstrap(auc, y_true, score, weight)` without re-sorting: the same replicates, O(n) each."""
    level = check_level(level)
    ranked = RankedScores(y_true, score, weight)
    ranked.totals()
    reps = [_area(*ranked.cumulative(c)) for c in resample_counts(ranked.score.size, n_boot, seed)]
    return summarise_replicates(_area(*ranked.cumulative()), reps, level)


def _one_vs_rest_ranked(y_true, probs, weight, classes) -> dict[int, RankedScores]:
    """Each class present (with other events beside it) ranked by its own column."""
    p = _checks.probabilities(probs)
    y = _checks.class_labels(y_true, p.shape[1] if classes is None else None)
    if classes is not None and any(not 0 <= c < p.shape[1] for c in classes):
        raise _checks.MetricInputError(f"classes {list(classes)} must index the {p.shape[1]} columns of probs")
    w = _checks.weights(weight, y.size)
    out = {}
    for c in range(p.shape[1]) if classes is None else classes:
        if 0 < np.count_nonzero(y == c) < y.size:
            out[int(c)] = ranked = RankedScores((y == c).astype(np.int64), p[:, c], w)
            ranked.totals()
    return out


def one_vs_rest_aucs(y_true, probs, weight=None, classes=None) -> dict[int, float]:
    """{class: AUC of probs[:, class] for that class against all others}; classes with no events, or
    no other events, are skipped (so a sample without tau jets simply has no tau entry).

    Labels index the columns of probs; with explicit `classes`, labels outside them (e.g. tau jets
    for a 3-class tagger) are background to every class.
    """
    return {c: _area(*r.cumulative()) for c, r in _one_vs_rest_ranked(y_true, probs, weight, classes).items()}


def macro_auc(y_true, probs, weight=None, classes=None) -> float:
    """Unweighted mean of the one-vs-rest weighted AUCs over the classes present in y_true.

    With all classes present this equals sklearn's roc_auc_score(multi_class="ovr", average="macro").
    """
    return bootstrap_macro_auc(y_true, probs, weight, classes, n_boot=0)["value"]


def bootstrap_macro_auc(
    y_true, probs, weight=None, classes=None, n_boot: int = 200, seed: int = 0, level: float = 0.68
) -> dict:
    """`bootstrap(macro_auc, ...)` with one sort per class; a replicate missing a class is dropped.

    Besides value/std/low/high: `per_class` {class: AUC} and `per_class_err` {class: Hanley-McNeil}.
    """
    level = check_level(level)
    ranked = _one_vs_rest_ranked(y_true, probs, weight, classes)
    if not ranked:
        raise _checks.MetricInputError("macro AUC: no class has both its own events and others in y_true")
    aucs = {c: _area(*r.cumulative()) for c, r in ranked.items()}
    errs = {c: hanley_mcneil(aucs[c], *r.n_eff()) for c, r in ranked.items()}
    n = next(iter(ranked.values())).score.size
    reps = [
        np.mean([_area(*r.cumulative(counts)) for r in ranked.values()]) for counts in resample_counts(n, n_boot, seed)
    ]
    out = summarise_replicates(np.mean(list(aucs.values())), reps, level)
    return {**out, "per_class": aucs, "per_class_err": errs}


def accuracy(y_true, probs, weight=None) -> float:
    """Weighted fraction of events whose highest-scoring class (lowest index on ties) is the true one.

    A 1-d `probs` is read as the probability of class 1 of a binary task (class 1 when > 0.5).
    """
    if np.ndim(probs) == 1:
        predicted = (_checks.column(probs, "probs") > 0.5).astype(np.int64)
    else:
        predicted = np.argmax(_checks.probabilities(probs), axis=1)
    y = _checks.column(y_true, "y_true", predicted.size, dtype=np.int64)
    w = _checks.weights(weight, y.size)
    return float(np.sum(w[predicted == y]) / _checks.positive_total(w.sum(), "the sample"))


def fpr_at_tpr(fpr, tpr, tpr_grid) -> np.ndarray:
    """Background efficiency where the ROC first reaches each signal efficiency of `tpr_grid`,
    interpolated linearly between ROC points (so flat stretches give their lowest fpr)."""
    fpr, grid = np.asarray(fpr, dtype=np.float64), np.asarray(tpr_grid, dtype=np.float64)
    tpr = np.maximum.accumulate(np.asarray(tpr, dtype=np.float64))  # negative weights may step back
    k = np.clip(np.searchsorted(tpr, grid, side="left"), 1, tpr.size - 1)
    step = tpr[k] - tpr[k - 1]
    frac = np.clip(np.divide(grid - tpr[k - 1], step, out=np.ones_like(grid), where=step > 0), 0.0, 1.0)
    return fpr[k - 1] + frac * (fpr[k] - fpr[k - 1])


def roc_band(y_true, score, weight=None, n_boot: int = 100, seed: int = 0, grid=None, level: float = 0.68) -> dict:
    """Bootstrap band of the ROC for plotting: fpr on a tpr grid, with its central `level` interval.

    Returns dict(tpr_grid, fpr, fpr_low, fpr_high); default grid: 101 points from 0 to 1.
    """
    level = check_level(level)
    grid = np.linspace(0.0, 1.0, 101) if grid is None else np.asarray(grid, dtype=np.float64)
    ranked = RankedScores(y_true, score, weight)
    p, n = ranked.totals()
    tps, fps = ranked.cumulative()
    value = fpr_at_tpr(fps / n, tps / p, grid)
    reps = []
    for counts in resample_counts(ranked.score.size, n_boot, seed):
        tps, fps = ranked.cumulative(counts)
        ok = tps[-1] > 0 and fps[-1] > 0  # a replicate without one class is dropped
        reps.append(fpr_at_tpr(fps / fps[-1], tps / tps[-1], grid) if ok else np.full(grid.size, np.nan))
    band = summarise_replicates(value, reps if reps else np.zeros((0, grid.size)), level)
    return {"tpr_grid": grid, "fpr": band["value"], "fpr_low": band["low"], "fpr_high": band["high"]}
