"""How well an anomaly score separates a signal it never saw from the standard model, with errors and controls.

A higher score is more anomalous. The working points are fractions of the standard-model (SM) weight kept: at 1% and
0.1% of SM, the signal efficiency is the weighted fraction of signal with score >= the weighted (1 - sm_eff) quantile
of the SM scores (the cut recomputed in every bootstrap replicate, as `metrics.binary_statistics` does: SM is its
background, the working point its background rejection 1 - sm_eff). A working point that keeps fewer than
`MIN_SM_AT_CUT` effective SM events measures the tail of a handful of events: its efficiency is NaN and flagged.

The control (`matched_weights`): reweight SM so that a variable the score might merely count (object multiplicity,
a jet pT) has the signal's distribution; a score whose AUC falls to 0.5 under those weights ranks by that variable.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..metrics import _checks, binary_statistics, n_effective
from ..metrics.flavour import percent

SM_EFFICIENCIES = {"1pc": 0.01, "0p1pc": 0.001}  # working points: the key suffix and the SM fraction kept
MIN_SM_AT_CUT = 10.0  # effective SM events a working point must keep for its signal efficiency to be quoted


def _stacked(sm_scores, sig_scores, sm_weights=None, sig_weights=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels: SM 0, signal 1; scores; weights) of both samples in one array each."""
    sm = _checks.column(sm_scores, "sm_scores")
    sig = _checks.column(sig_scores, "sig_scores")
    w_sm, w_sig = _checks.weights(sm_weights, sm.size), _checks.weights(sig_weights, sig.size)
    return np.r_[np.zeros(sm.size, np.int64), np.ones(sig.size, np.int64)], np.r_[sm, sig], np.r_[w_sm, w_sig]


def _efficiency_key(sm_eff: float) -> str:
    """The key `binary_statistics` names the signal efficiency at background rejection 1 - sm_eff by."""
    return f"signal_efficiency_at_rejection_{percent(1.0 - sm_eff)}"


def _check_sm_eff(sm_eff: float) -> float:
    if not 0.0 < float(sm_eff) <= 1.0:
        raise _checks.MetricInputError(f"sm_eff must be a fraction of the SM weight in (0, 1], got {sm_eff}")
    return float(sm_eff)


def signal_efficiency_at(sm_scores, sig_scores, sm_eff: float, sm_weights=None, sig_weights=None) -> float:
    """Weighted fraction of signal with score >= the weighted (1 - sm_eff) quantile of the SM scores (the largest
    cut keeping at least sm_eff of the SM weight)."""
    sm_eff = _check_sm_eff(sm_eff)
    labels, scores, weights = _stacked(sm_scores, sig_scores, sm_weights, sig_weights)
    return binary_statistics(labels, scores, weights, background_rejections=(1.0 - sm_eff,))[_efficiency_key(sm_eff)]


def anomaly_statistics(labels, score, weight=None) -> dict[str, float]:
    """`stat_fn` of `metrics.paired_bootstrap` (labels: SM 0, signal 1): auc and eff_at_<wp> for each working point
    of SM_EFFICIENCIES, one sort for all. Pair several scores (and seeds) on the same replicates with
    `metrics.paired_bootstrap(anomaly_statistics, labels, weights, {score: [per-seed scores]})`. A working point
    that keeps fewer than MIN_SM_AT_CUT effective SM events is NaN."""
    effs = list(SM_EFFICIENCIES.values())
    out = binary_statistics(labels, score, weight, background_rejections=[1.0 - e for e in effs])
    y = np.asarray(labels)
    w = np.ones(y.size) if weight is None else np.asarray(weight, dtype=np.float64)
    sm = n_effective(w[y == 0])  # a working point keeping fewer than MIN_SM_AT_CUT of these is not quoted
    stats = {"auc": out["auc"]}
    stats.update(
        {
            f"eff_at_{name}": out[_efficiency_key(e)] if sm * e >= MIN_SM_AT_CUT else float("nan")
            for name, e in SM_EFFICIENCIES.items()
        }
    )
    return stats


class MatchedWeights(NamedTuple):
    """SM weights reweighted to the signal's distribution of a control variable, the signal weights with the rows
    of bins that hold no SM set to 0, and the fraction of the signal weight so dropped."""

    sm_weights: np.ndarray
    sig_weights: np.ndarray
    dropped_fraction: float


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value among [-inf, edges..., inf] (underflow 0, overflow last); a value on an edge goes up."""
    return np.searchsorted(edges, values, side="right")


def matched_weights(sm_values, sig_values, bins=None, sm_weights=None, sig_weights=None) -> MatchedWeights:
    """Reweight SM rows bin by bin so the weighted histogram of a control variable (object multiplicity, jet pT)
    has the signal's shape, keeping the SM total weight. `bins`: increasing edges ([lo, hi) bins plus an underflow
    and an overflow bin), or None for one bin per distinct value (exact matching of an integer such as the
    multiplicity). Signal in bins with no (or non-positive) SM weight cannot be matched: its rows get weight 0 and
    their share of the signal weight is `dropped_fraction`."""
    sm, sig = _checks.column(sm_values, "sm_values"), _checks.column(sig_values, "sig_values")
    w_sm, w_sig = _checks.weights(sm_weights, sm.size), _checks.weights(sig_weights, sig.size)
    total_sm = _checks.positive_total(w_sm.sum(), "SM")
    total_sig = _checks.positive_total(w_sig.sum(), "signal")
    if bins is None:
        edges = np.unique(np.r_[sm, sig])[1:]  # every distinct value its own bin
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 1 or np.any(np.diff(edges) <= 0):
            raise _checks.MetricInputError(f"bins must be increasing edges, got {np.ravel(edges).tolist()}")
    i_sm, i_sig = _bin_index(sm, edges), _bin_index(sig, edges)
    n_bins = edges.size + 1
    per_bin_sm = np.bincount(i_sm, weights=w_sm, minlength=n_bins)
    per_bin_sig = np.bincount(i_sig, weights=w_sig, minlength=n_bins)
    usable = per_bin_sm > 0
    kept_sig = per_bin_sig[usable].sum()
    if not kept_sig > 0:
        raise _checks.MetricInputError("no bin of the control variable holds both SM and signal weight")
    factor = np.zeros(n_bins)
    factor[usable] = (per_bin_sig[usable] / kept_sig) / (per_bin_sm[usable] / total_sm)
    dropped = float(per_bin_sig[~usable].sum() / total_sig)
    return MatchedWeights(w_sm * factor[i_sm], np.where(usable[i_sig], w_sig, 0.0), dropped)
