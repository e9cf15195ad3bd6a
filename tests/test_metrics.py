"""Classifier metrics: weighted values against hand computations and scikit-learn, their errors,
the bootstrap, flavour-tagging working points and summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from treasure_lib import metrics
from treasure_lib.errors import TreasureError
from treasure_lib.metrics import MetricInputError

# Six events: signal scores 0.9, 0.6, 0.4 (weights 1, 2, 1); background 0.7, 0.4, 0.1 (weights 1, 1, 2).
Y6 = np.array([1, 1, 1, 0, 0, 0])
S6 = np.array([0.9, 0.6, 0.4, 0.7, 0.4, 0.1])
W6 = np.array([1.0, 2.0, 1.0, 1.0, 1.0, 2.0])


def _pairwise_auc(y, s, w):
    """The definition: weighted P(signal outscores background), ties 1/2, by an explicit double loop."""
    num = sum(
        wi * wj * (1.0 if si > sj else 0.5 if si == sj else 0.0)
        for si, wi, yi in zip(s, w, y)
        if yi == 1
        for sj, wj, yj in zip(s, w, y)
        if yj != 1
    )
    return num / (w[y == 1].sum() * w[y != 1].sum())


def _sample(n=4000, sep=1.0, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(sep * y, 1.0)
    return y, (np.round(s, 1) if ties else s), rng.exponential(1.0, n)


def _flavour_sample(n=6000, seed=0, strength=0.3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    probs = rng.dirichlet(np.ones(4), n)
    probs[np.arange(n), labels] += strength
    return labels, probs / probs.sum(axis=1, keepdims=True), rng.exponential(1.0, n)


# --- AUC and ROC -------------------------------------------------------------------------------


def test_weighted_auc_matches_hand_computation_and_sklearn():
    # pairs: 0.9 beats all (1*4); 0.6 beats 0.4, 0.1 (2*3); 0.4 ties 0.4 (1/2) and beats 0.1 (2) -> 12.5 / 16
    assert metrics.auc(Y6, S6, W6) == pytest.approx(12.5 / 16, abs=1e-15)
    assert metrics.auc(Y6, S6, W6) == pytest.approx(roc_auc_score(Y6, S6, sample_weight=W6), abs=1e-15)


def test_heavy_misranked_background_lowers_auc_by_hand_computed_amount():
    w = W6.copy()
    w[3] = 5.0  # the background at 0.7 outscores the signal at 0.6 and 0.4: (8 + 6 + 2.5) / (4 * 8)
    assert metrics.auc(Y6, S6, w) == pytest.approx(16.5 / 32, abs=1e-15)
    assert metrics.auc(Y6, S6, W6) - metrics.auc(Y6, S6, w) == pytest.approx(12.5 / 16 - 16.5 / 32, abs=1e-15)


def test_integer_weights_equal_duplicated_rows():
    y, s, _ = _sample(500, ties=True)
    k = np.random.default_rng(1).integers(1, 4, y.size)
    assert metrics.auc(y, s, k) == pytest.approx(metrics.auc(np.repeat(y, k), np.repeat(s, k)), abs=1e-12)
    f, t, th = metrics.roc_curve(y, s, k)
    f2, t2, th2 = metrics.roc_curve(np.repeat(y, k), np.repeat(s, k))
    np.testing.assert_allclose(f, f2, atol=1e-12)
    np.testing.assert_allclose(t, t2, atol=1e-12)
    np.testing.assert_array_equal(th, th2)


def test_roc_curve_with_ties_equals_sklearn_without_dropped_points():
    y, s, w = _sample(3000, ties=True)
    fpr, tpr, thr = metrics.roc_curve(y, s, w)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    np.testing.assert_array_equal(thr, sk_thr)
    assert np.unique(s).size + 1 == thr.size  # one point per distinct score, plus (0, 0)


def test_roc_curve_of_six_events_by_hand():
    fpr, tpr, thr = metrics.roc_curve(Y6, S6, W6)
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.7, 0.6, 0.4, 0.1])
    np.testing.assert_allclose(tpr, [0, 0.25, 0.25, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(fpr, [0, 0, 0.25, 0.25, 0.5, 1.0])


def test_auc_with_negative_weights_keeps_the_pairwise_definition():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.2, 0.5, 0.5, 0.3, 0.8, 0.7, 0.1])
    w = np.array([1.0, 2.0, -0.5, 1.5, -0.4, 1.0, 0.7, 2.0])
    assert metrics.auc(y, s, w) == pytest.approx(_pairwise_auc(y, s, w), abs=1e-14)


def test_class_without_positive_weight_is_an_error_not_a_nan():
    with pytest.raises(MetricInputError, match="signal"):
        metrics.auc([0, 0, 1], [0.1, 0.2, 0.3], [1.0, 1.0, -1.0])
    with pytest.raises(MetricInputError, match="background"):
        metrics.auc([1, 1], [0.1, 0.2])
    with pytest.raises(MetricInputError, match="score"):
        metrics.auc([0, 1], [0.1, np.nan])
    with pytest.raises(MetricInputError, match="weight"):
        metrics.auc([0, 1], [0.1, 0.2], [1.0])
    assert issubclass(MetricInputError, TreasureError)


# --- statistical errors ------------------------------------------------------------------------


def test_n_eff_is_n_for_equal_weights_and_shrinks_for_spread_weights():
    assert metrics.n_effective(np.full(37, 0.3)) == pytest.approx(37)
    assert metrics.n_effective([1, 1, 2, 2]) == pytest.approx(36 / 10)
    assert metrics.n_effective([1.0, -1.0, 1.0]) == pytest.approx(1 / 3)


def test_hanley_mcneil_matches_the_formula():
    a, ns, nb = 0.8, 50, 100
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    expected = math.sqrt((a * (1 - a) + (ns - 1) * (q1 - a * a) + (nb - 1) * (q2 - a * a)) / (ns * nb))
    assert metrics.hanley_mcneil(a, ns, nb) == pytest.approx(expected, rel=1e-12)
    assert metrics.hanley_mcneil(a, ns, nb) == pytest.approx(0.0412473, rel=1e-5)
    assert metrics.hanley_mcneil(1.0, ns, nb) == 0.0


def test_auc_uncertainty_uses_effective_numbers_of_weighted_events():
    y, s, w = _sample(2000)
    a = metrics.auc(y, s, w)
    expected = metrics.hanley_mcneil(a, metrics.n_effective(w[y == 1]), metrics.n_effective(w[y == 0]))
    assert metrics.auc_uncertainty(y, s, w) == pytest.approx(expected, rel=1e-12)
    # equal weights of any size: the unweighted counts
    assert metrics.auc_uncertainty(y, s, np.full(y.size, 7.5)) == pytest.approx(
        metrics.hanley_mcneil(metrics.auc(y, s), (y == 1).sum(), (y == 0).sum()), rel=1e-12
    )
    # spread weights carry less information than as many equal ones
    assert metrics.auc_uncertainty(y, s, w) > metrics.auc_uncertainty(y, s)


def test_bootstrap_is_deterministic_for_a_seed_and_covers_the_value():
    y, s, w = _sample(1500)
    a = metrics.bootstrap(metrics.auc, y, s, w, n_boot=60, seed=3)
    b = metrics.bootstrap(metrics.auc, y, s, w, n_boot=60, seed=3)
    c = metrics.bootstrap(metrics.auc, y, s, w, n_boot=60, seed=4)
    assert a == b and a["std"] != c["std"]
    assert a["value"] == metrics.auc(y, s, w)
    assert a["low"] < a["value"] < a["high"]


def test_bootstrap_std_agrees_with_hanley_mcneil_on_a_large_sample():
    y, s, w = _sample(4000)
    boot = metrics.bootstrap_auc(y, s, w, n_boot=150)
    assert boot["std"] == pytest.approx(metrics.auc_uncertainty(y, s, w), rel=0.3)


def test_fast_auc_bootstraps_reproduce_the_generic_bootstrap():
    y, s, w = _sample(800, ties=True)
    generic = metrics.bootstrap(metrics.auc, y, s, w, n_boot=40, seed=5)
    fast = metrics.bootstrap_auc(y, s, w, n_boot=40, seed=5)
    for key in ("value", "std", "low", "high"):
        assert fast[key] == pytest.approx(generic[key], abs=1e-12)
    labels, probs, wf = _flavour_sample(800)
    generic = metrics.bootstrap(metrics.macro_auc, labels, probs, wf, n_boot=20, seed=2)
    fast = metrics.bootstrap_macro_auc(labels, probs, wf, n_boot=20, seed=2)
    for key in ("value", "std", "low", "high"):
        assert fast[key] == pytest.approx(generic[key], abs=1e-12)


def test_bootstrap_of_a_curve_returns_arrays_and_passes_none_weights():
    y, s, _ = _sample(600)
    grid = np.array([0.3, 0.6])

    def fpr_on_grid(y, s, w):
        fpr, tpr, _ = metrics.roc_curve(y, s, w)
        return metrics.fpr_at_tpr(fpr, tpr, grid)

    out = metrics.bootstrap(fpr_on_grid, y, s, None, n_boot=30)
    assert out["value"].shape == (2,) and np.all(out["low"] <= out["high"])
    with pytest.raises(MetricInputError, match="one length"):
        metrics.bootstrap(metrics.auc, y, s[:-1])


def test_bootstrap_drops_replicates_that_lose_a_class():
    y = np.array([1, 0, 0, 0, 0, 0])  # one signal event: many replicates draw none
    out = metrics.bootstrap(metrics.auc, y, np.arange(6.0), n_boot=50)
    assert out["value"] == 0.0 and np.isfinite(out["std"])


# --- ROC band ----------------------------------------------------------------------------------


def test_fpr_at_tpr_interpolates_and_takes_the_first_crossing():
    fpr, tpr = np.array([0, 0, 0.5, 1.0]), np.array([0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(metrics.fpr_at_tpr(fpr, tpr, [0.0, 0.25, 0.5, 0.75, 1.0]), [0, 0, 0, 0.75, 1.0])


def test_roc_band_brackets_the_curve_and_is_deterministic():
    y, s, w = _sample(2000)
    band = metrics.roc_band(y, s, w, n_boot=40, grid=np.linspace(0.1, 0.9, 9))
    fpr, tpr, _ = metrics.roc_curve(y, s, w)
    np.testing.assert_allclose(band["fpr"], metrics.fpr_at_tpr(fpr, tpr, band["tpr_grid"]))
    assert np.all(band["fpr_low"] <= band["fpr"]) and np.all(band["fpr"] <= band["fpr_high"])
    assert np.all(band["fpr_high"] - band["fpr_low"] > 0)
    again = metrics.roc_band(y, s, w, n_boot=40, grid=np.linspace(0.1, 0.9, 9))
    np.testing.assert_array_equal(band["fpr_low"], again["fpr_low"])


# --- multi-class -------------------------------------------------------------------------------


def test_macro_auc_is_one_for_separated_classes_and_half_for_random_scores():
    labels = np.repeat(np.arange(4), 50)
    assert metrics.macro_auc(labels, np.eye(4)[labels]) == 1.0
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 20_000)
    assert metrics.macro_auc(labels, rng.dirichlet(np.ones(4), labels.size)) == pytest.approx(0.5, abs=0.01)


def test_macro_auc_equals_sklearn_one_vs_rest_with_weights():
    labels, probs, w = _flavour_sample(3000)
    expected = roc_auc_score(labels, probs, multi_class="ovr", average="macro", sample_weight=w)
    assert metrics.macro_auc(labels, probs, w) == pytest.approx(expected, abs=1e-12)


def test_macro_auc_skips_classes_absent_from_labels():
    labels, probs, w = _flavour_sample(2000)
    keep = labels != 3  # no tau jets
    per_class = metrics.one_vs_rest_aucs(labels[keep], probs[keep], w[keep])
    assert sorted(per_class) == [0, 1, 2]
    assert metrics.macro_auc(labels[keep], probs[keep], w[keep]) == pytest.approx(np.mean(list(per_class.values())))


def test_weighted_accuracy_by_hand():
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0])  # right, right, wrong, right (a tie goes to the lower class)
    assert metrics.accuracy(y, probs, [1.0, 2.0, 3.0, 4.0]) == pytest.approx(7 / 10)
    assert metrics.accuracy(y, probs[:, 1], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(7 / 10)


# --- flavour tagging ---------------------------------------------------------------------------


def test_discriminant_b_by_hand_and_finite_at_zero_probabilities():
    probs = np.array(
        [
            [0.5, 0.25, 0.25, 0.0],  # denominator 0.2*0.25 + 0.8*0.25 = 0.25
            [0.8, 0.1, 0.1, 0.0],  # 0.1
            [0.1, 0.5, 0.4, 0.0],  # 0.42
            [0.0, 0.5, 0.5, 0.0],  # p_b = 0
            [1.0, 0.0, 0.0, 0.0],
        ]
    )  # denominator 0
    d = metrics.discriminant_b(probs, f_c=0.2)
    np.testing.assert_allclose(d[:3], np.log([2.0, 8.0, 0.1 / 0.42]), rtol=1e-8)
    assert np.all(np.isfinite(d)) and d[3] < -20 and d[4] > 20
    # a tau fraction takes its share from the light term
    with_tau = metrics.discriminant_b(np.array([[0.4, 0.2, 0.2, 0.2]]), f_c=0.2, f_tau=0.1)
    np.testing.assert_allclose(with_tau, np.log(0.4 / (0.2 * 0.2 + 0.1 * 0.2 + 0.7 * 0.2)), rtol=1e-8)


def test_rejection_at_working_point_by_hand():
    sig_d, sig_w = np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)
    bkg_d, bkg_w = np.array([0.5, 1.5, 2.5, 3.5, 4.5]), np.array([2.0, 1.0, 1.0, 1.0, 1.0])
    disc, w = np.r_[sig_d, bkg_d], np.r_[sig_w, bkg_w]
    is_sig = np.r_[np.ones(4, bool), np.zeros(5, bool)]
    out = metrics.rejection_at_efficiency(disc, is_sig, ~is_sig, (0.5, 0.7, 0.75, 1.0), w)
    # 75% and 70%: cut at 2 keeps 3/4 of the signal; background above: 2.5, 3.5, 4.5 = 3 of 6 -> R = 2
    n_eff = 36 / 8
    err = math.sqrt(0.5 * 0.5 / n_eff) / 0.5**2
    assert out[0.75] == pytest.approx((2.0, err, 2.0)) and out[0.7] == pytest.approx((2.0, err, 2.0))
    # 50%: cut at 3, background 3.5 and 4.5 = 2 of 6 -> R = 3
    assert out[0.5][0] == pytest.approx(3.0) and out[0.5][2] == 3.0
    # 100%: cut at the lowest signal, 1.0; background 1.5 .. 4.5 = 4 of 6
    assert out[1.0][0] == pytest.approx(1.5) and out[1.0][2] == 1.0


def test_working_point_threshold_is_the_weighted_signal_quantile():
    disc = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    is_sig = np.array([True, True, True, True, False])
    w = np.array([1.0, 1.0, 1.0, 5.0, 1.0])  # signal total 8: >= 4 keeps 5/8, >= 3 6/8, >= 2 7/8
    thr = metrics.efficiency_thresholds(disc, is_sig, (0.6, 0.625, 0.7, 0.75, 0.77, 0.9), w)
    np.testing.assert_array_equal(thr, [4.0, 4.0, 3.0, 3.0, 2.0, 1.0])


def test_no_background_passing_gives_infinite_rejection_and_nan_error():
    disc = np.array([5.0, 6.0, 7.0, 1.0, 2.0])
    is_sig = np.array([True, True, True, False, False])
    rej, err, thr = metrics.rejection_at_efficiency(disc, is_sig, ~is_sig, (0.7,))[0.7]
    assert rej == math.inf and math.isnan(err) and thr == 5.0  # >= 6 would keep only 2/3 of the signal


def test_rejection_agrees_with_atlas_ftag_tools():
    ftag_metrics = pytest.importorskip("ftag.utils.metrics")
    labels, probs, w = _flavour_sample(20_000)
    disc = metrics.discriminant_b(probs, f_c=0.2)
    ours = metrics.rejection_at_efficiency(disc, labels == 0, labels == 2, weight=w)
    theirs = ftag_metrics.calculate_rejection(
        disc[labels == 0],
        disc[labels == 2],
        np.array(metrics.WORKING_POINTS),
        sig_weights=w[labels == 0],
        bkg_weights=w[labels == 2],
    )
    np.testing.assert_allclose([ours[e][0] for e in metrics.WORKING_POINTS], theirs, rtol=0.02)


def test_flavour_summary_keys_and_values():
    labels, probs, w = _flavour_sample(3000)
    out = metrics.flavour_summary(labels, probs, w, n_boot=20)
    disc = metrics.discriminant_b(probs, f_c=0.2)
    light = metrics.rejection_at_efficiency(disc, labels == 0, labels == 2, weight=w)[0.77]
    assert out["light_rejection_at_77"] == pytest.approx(light[0])
    assert out["light_rejection_at_77_err"] == pytest.approx(light[1])
    assert out["threshold_at_77"] == light[2]
    assert out["b_efficiency_at_77"] == pytest.approx(0.77, abs=0.01) and out["b_efficiency_at_77"] >= 0.77 - 1e-9
    assert out["auc_macro"] == pytest.approx(metrics.macro_auc(labels, probs, w))
    assert 0 < out["auc_macro_err"] < 0.02
    for nn in (70, 77, 80, 85):
        for flav in ("c", "light", "tau"):
            assert f"{flav}_rejection_at_{nn}" in out and f"{flav}_rejection_at_{nn}_err" in out
    assert out["light_rejection_at_70"] > out["light_rejection_at_85"]  # tighter cut, more rejection
    assert out["n_b"] + out["n_c"] + out["n_light"] + out["n_tau"] == labels.size
    assert all(isinstance(v, (int, float)) for v in out.values())


def test_flavour_summary_leaves_out_keys_of_absent_flavours():
    labels, probs, w = _flavour_sample(2000)
    keep = labels != 3
    out = metrics.flavour_summary(labels[keep], probs[keep], w[keep], n_boot=0)
    assert "tau_rejection_at_77" not in out and "auc_tau" not in out and out["n_tau"] == 0
    assert "light_rejection_at_77" in out
    # a 3-class tagger (no tau column) still gets a summary, tau jets counting as background
    three = metrics.flavour_summary(labels, probs[:, :3], w, n_boot=0)
    assert "tau_rejection_at_77" in three and "auc_tau" not in three


def test_rejection_curves_pass_through_the_working_points_of_the_summary():
    """The curve a chapter draws and the numbers its table quotes are one computation: at 70/77/85% b-efficiency
    the curve's light and c rejections (and errors) are the summary's, and jets without tau skip the tau curve."""
    labels, probs, w = _flavour_sample(3000)
    keep = labels != 3
    curves = metrics.flavour_rejection_curves(labels[keep], probs[keep], w[keep], efficiencies=[0.70, 0.77, 0.85])
    summary = metrics.flavour_summary(labels[keep], probs[keep], w[keep], n_boot=0)
    assert set(curves["rejection"]) == {"c", "light"} and list(curves["efficiency"]) == [0.70, 0.77, 0.85]
    for flavour in ("c", "light"):
        for k, nn in enumerate((70, 77, 85)):
            assert curves["rejection"][flavour][k] == pytest.approx(summary[f"{flavour}_rejection_at_{nn}"])
            assert curves["rejection_err"][flavour][k] == pytest.approx(summary[f"{flavour}_rejection_at_{nn}_err"])
    assert curves["n_background"]["light"] == pytest.approx(metrics.n_effective(w[labels == 2]))


# --- summaries, bins, weights ------------------------------------------------------------------


def test_binary_summary_values():
    y, s, w = _sample(2000)
    out = metrics.binary_summary(y, s, w, n_boot=50)
    assert out["auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert out["auc_err"] == pytest.approx(metrics.auc_uncertainty(y, s, w))
    assert out["auc_boot_low"] < out["auc"] < out["auc_boot_high"]
    assert (out["n_signal"], out["n_background"]) == ((y == 1).sum(), (y == 0).sum())
    assert out["n_eff_signal"] == pytest.approx(metrics.n_effective(w[y == 1]))


def test_multiclass_summary_per_class_aucs():
    labels, probs, w = _flavour_sample(2000)
    out = metrics.multiclass_summary(labels, probs, w, class_names=["H", "Z", "W", "top"], n_boot=20)
    assert out["auc_Z"] == pytest.approx(roc_auc_score(labels == 1, probs[:, 1], sample_weight=w))
    assert out["accuracy"] == pytest.approx(metrics.accuracy(labels, probs, w))
    assert out["auc_macro"] == pytest.approx(np.mean([out[f"auc_{n}"] for n in ("H", "Z", "W", "top")]))
    assert out["auc_macro_err"] > 0


def test_in_bins_evaluates_each_bin_on_its_own_events():
    y, s, w = _sample(3000)
    pt_gev = np.random.default_rng(2).uniform(20, 250, y.size)
    pt_gev[0] = 250.0  # the last edge belongs to the last bin
    rows = metrics.in_bins(pt_gev, [20, 50, 100, 250], metrics.auc, y, s, w)
    assert [(r["low"], r["high"]) for r in rows] == [(20, 50), (50, 100), (100, 250)]
    assert sum(r["n"] for r in rows) == y.size
    sel = (pt_gev >= 50) & (pt_gev < 100)
    assert rows[1]["value"] == pytest.approx(metrics.auc(y[sel], s[sel], w[sel]))
    # a bin with no events keeps its edges and says why it has no value
    empty = metrics.in_bins(pt_gev, [0, 10, 300], lambda *a: metrics.binary_summary(*a, n_boot=5), y, s, w)
    assert empty[0]["n"] == 0 and "error" in empty[0] and "auc" in empty[1]


def test_normalise_weights_balances_classes():
    w = np.array([1.0, 3.0, 2.0, 2.0, 2.0])
    labels = np.array([0, 0, 1, 1, 1])
    plain = metrics.normalise_weights(w)
    assert plain.sum() == pytest.approx(5) and plain[1] / plain[0] == pytest.approx(3)
    balanced = metrics.normalise_weights(w, labels, balance=True)
    assert balanced[labels == 0].sum() == pytest.approx(2.5) and balanced[labels == 1].sum() == pytest.approx(2.5)
    with pytest.raises(MetricInputError, match="class 1"):
        metrics.normalise_weights([1.0, -1.0], [0, 1], balance=True)
