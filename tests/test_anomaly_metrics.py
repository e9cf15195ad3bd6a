"""Anomaly-score statistics on analytic cases: Gaussian scores shifted by one sigma, efficiencies at a fraction of
the standard model worked out from the normal distribution, a working point too far in the tail to quote, and the
reweighting control that matches a variable's distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from treasure_lib import metrics
from treasure_lib.anomaly import (
    MIN_SM_AT_CUT,
    anomaly_statistics,
    matched_weights,
    multiplicity,
    signal_efficiency_at,
)


def anomaly_summary(sm, sig, sm_weights=None, sig_weights=None, seed=0, n_boot=20) -> dict:
    """The chapter's numbers for one score and one seed: the paired bootstrap of `anomaly_statistics`."""
    labels = np.r_[np.zeros(len(sm), int), np.ones(len(sig), int)]
    w = np.r_[
        np.ones(len(sm)) if sm_weights is None else sm_weights,
        np.ones(len(sig)) if sig_weights is None else sig_weights,
    ]
    boot = metrics.paired_bootstrap(anomaly_statistics, labels, w, {"s": [np.r_[sm, sig]]}, n_boot=n_boot, seed=seed)
    return boot.summary("s")


def _gauss(n_sm=20_000, n_sig=20_000, shift=1.0, seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=n_sm), g.normal(shift, 1.0, size=n_sig)


def test_one_sigma_shift_gives_the_analytic_auc_within_its_error():
    sm, sig = _gauss()
    summary = anomaly_summary(sm, sig, seed=1, n_boot=50)
    expected = norm.cdf(1 / math.sqrt(2))  # P(sig > sm) for N(1, 1) against N(0, 1): 0.760
    assert abs(summary["auc"] - expected) < 3 * summary["auc_err"]
    assert 0.001 < summary["auc_err"] < 0.01  # ~ sqrt(A(1-A)/n) scale for 20k + 20k


def test_signal_efficiency_at_one_percent_of_the_standard_model_is_the_shifted_normal_tail():
    sm, sig = _gauss(200_000, 200_000)
    expected = norm.sf(norm.isf(0.01) - 1.0)  # cut at the SM 99% quantile, signal shifted by 1: 0.0924
    got = signal_efficiency_at(sm, sig, 0.01)
    assert got == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / 200_000) + 0.002)
    summary = anomaly_summary(sm[:50_000], sig[:50_000], seed=0, n_boot=20)
    assert summary["eff_at_1pc"] == pytest.approx(expected, abs=4 * summary["eff_at_1pc_err"])
    tail = norm.sf(norm.isf(0.001) - 1.0)  # 0.0183
    assert summary["eff_at_0p1pc"] == pytest.approx(tail, abs=4 * summary["eff_at_0p1pc_err"])


def test_efficiency_cut_is_the_weighted_sm_quantile_on_a_hand_case():
    sm = np.arange(100.0)  # keeping 10% of SM: the cut is at 90 (scores 90..99)
    sig = np.array([50.0, 89.0, 90.0, 95.0])
    assert signal_efficiency_at(sm, sig, 0.10) == pytest.approx(0.5)
    w = np.ones(100)
    w[95:] = 3.0  # now 95..99 alone carry 15 of 110: 10% of SM is kept by score >= 96 (4 x 3 = 12 >= 11)
    assert signal_efficiency_at(sm, sig, 0.10, sm_weights=w) == pytest.approx(0.0)
    assert signal_efficiency_at(sm, sig, 0.10, sm_weights=w, sig_weights=[1, 1, 1, 5]) == pytest.approx(0.0)
    # 20% of 110 is 22: scores 95..99 carry 15, with 88..94 it is 22, so the cut is at 88 (89, 90, 95 pass)
    assert signal_efficiency_at(sm, sig, 0.20, sm_weights=w, sig_weights=[1, 1, 1, 5]) == pytest.approx(7 / 8)


def test_a_working_point_with_too_few_standard_model_events_is_not_quoted():
    sm, sig = _gauss(5_000, 2_000)  # 0.1% of 5000 SM events is 5 events: below MIN_SM_AT_CUT
    summary = anomaly_summary(sm, sig, n_boot=10)
    assert 5_000 * 0.001 < MIN_SM_AT_CUT <= 5_000 * 0.01
    assert math.isnan(summary["eff_at_0p1pc"]) and math.isnan(summary["eff_at_0p1pc_err"])
    assert math.isfinite(summary["eff_at_1pc"]) and math.isfinite(summary["auc_err"])
    w = np.r_[np.full(10, 1000.0), np.ones(4_990)]  # the same rows, but weights spread: n_eff is ~100
    assert math.isnan(anomaly_summary(sm, sig, sm_weights=w, n_boot=5)["eff_at_1pc"])


def test_the_auc_is_the_metrics_modules_weighted_auc():
    sm, sig = _gauss(3_000, 1_000, shift=0.5)
    w_sm = np.random.default_rng(1).uniform(0.5, 2.0, 3_000)
    labels = np.r_[np.zeros(3_000), np.ones(1_000)]
    expected = metrics.auc(labels, np.r_[sm, sig], np.r_[w_sm, np.ones(1_000)])
    assert anomaly_summary(sm, sig, sm_weights=w_sm, n_boot=5)["auc"] == pytest.approx(expected, abs=1e-12)


def test_matched_weights_make_the_weighted_histograms_equal():
    g = np.random.default_rng(5)
    sm_mult = g.poisson(4.0, 20_000)
    sig_mult = g.poisson(7.0, 5_000) + 1
    matched = matched_weights(sm_mult, sig_mult)
    values = np.arange(0, max(sm_mult.max(), sig_mult.max()) + 1)
    sm_hist = np.array([matched.sm_weights[sm_mult == v].sum() for v in values]) / matched.sm_weights.sum()
    sig_hist = np.array([matched.sig_weights[sig_mult == v].sum() for v in values]) / matched.sig_weights.sum()
    np.testing.assert_allclose(sm_hist, sig_hist, atol=1e-12)
    assert matched.sm_weights.sum() == pytest.approx(20_000), "the SM total weight is kept"
    unmatched = np.isin(sig_mult, np.unique(sm_mult), invert=True)
    assert matched.dropped_fraction == pytest.approx(unmatched.mean()) and (matched.sig_weights[unmatched] == 0).all()


def test_matched_weights_with_edges_and_physics_weights():
    sm = np.array([0.5, 1.5, 1.7, 2.5, 9.0])  # bins: (-inf, 1) [1, 2) [2, 3) [3, inf)
    w_sm = np.array([1.0, 1.0, 3.0, 2.0, 1.0])
    sig = np.array([0.2, 1.1, 2.2, 2.9, 3.5, -5.0])
    matched = matched_weights(sm, sig, bins=[1.0, 2.0, 3.0], sm_weights=w_sm)
    # signal per bin: 2 (0.2, -5.0), 1, 2, 1 of 6; SM per bin: 1, 4, 2, 1 of 8
    factors = np.array([2 / 6 / (1 / 8), 1 / 6 / (4 / 8), 1 / 6 / (4 / 8), 2 / 6 / (2 / 8), 1 / 6 / (1 / 8)])
    np.testing.assert_allclose(matched.sm_weights, w_sm * factors)
    assert matched.dropped_fraction == 0.0


def test_a_score_that_only_counts_objects_loses_its_separation_under_matched_weights():
    """The control's purpose: score = multiplicity + noise separates a busier signal, not once SM is reweighted."""
    g = np.random.default_rng(7)
    sm_mult, sig_mult = g.poisson(4.0, 20_000), g.poisson(6.0, 20_000)
    sm_score, sig_score = sm_mult + g.normal(0, 0.5, 20_000), sig_mult + g.normal(0, 0.5, 20_000)
    plain = anomaly_summary(sm_score, sig_score, n_boot=20)
    m = matched_weights(sm_mult, sig_mult)
    controlled = anomaly_summary(sm_score, sig_score, m.sm_weights, m.sig_weights, n_boot=20)
    assert plain["auc"] > 0.7
    assert abs(controlled["auc"] - 0.5) < 3 * controlled["auc_err"] + 0.01


def test_multiplicity_counts_object_positions():
    rows = {
        "type_ids": np.array([[0, 1, 2, 2, 0], [0, 1, 0, 0, 0]]),
        "mask": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool),
        "tokens": np.array([[[1], [9], [9], [4], [2]], [[1], [9], [2], [0], [0]]]),  # an EMPTY level-0 id is no object
    }
    np.testing.assert_array_equal(multiplicity(rows), [2, 1])
    np.testing.assert_array_equal(multiplicity({k: rows[k] for k in ("type_ids", "mask")}), [3, 1])
