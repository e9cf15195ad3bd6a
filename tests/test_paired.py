"""Paired comparisons over training seeds: statistics that recompute their working point, the paired bootstrap
(one draw of test rows for every model and seed), the one significance rule and the verdict sentence."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

from treasure_lib import metrics
from treasure_lib.formatting import fmt
from treasure_lib.metrics import MetricInputError
from treasure_lib.metrics.uncertainty import resample_indices

B, C, LIGHT, TAU = range(4)
FRACTIONS = (0.2125, 0.15, 0.6, 0.0375)  # 850 b jets in 4000, as in the book's test split


def _jets(n=4000, seed=0, strength=0.25, columns=4):
    """Labels b/c/light/tau and a tagger whose probs lean towards the true class by `strength`."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(4, n, p=FRACTIONS)
    probs = rng.dirichlet(np.ones(columns), n)
    probs[np.arange(n), np.minimum(labels, columns - 1)] += strength
    return labels, probs / probs.sum(axis=1, keepdims=True)


def _events(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, rng.normal(labels, 1.0), rng


# --- the statistics of one prediction ------------------------------------------------------------


def test_perfect_tagger_rejects_every_background_jet():
    labels, _ = _jets()
    stats = metrics.flavour_statistics(labels, np.eye(4)[labels])
    for nn in (70, 77, 85):
        assert stats[f"light_rejection_at_{nn}"] == math.inf
        assert stats[f"c_rejection_at_{nn}"] == math.inf
        assert stats[f"tau_rejection_at_{nn}"] == math.inf
    assert stats["auc_b"] == 1.0 and stats["auc_macro"] == 1.0


def test_constant_tagger_passes_every_jet_so_rejects_nothing():
    labels, _ = _jets()
    stats = metrics.flavour_statistics(labels, np.full((labels.size, 4), 0.25))
    assert {stats[f"{f}_rejection_at_{nn}"] for f in ("c", "light", "tau") for nn in (70, 77, 85)} == {1.0}
    assert stats["auc_b"] == 0.5 and stats["auc_macro"] == 0.5


def test_random_tagger_light_rejection_is_one_over_b_efficiency():
    rng = np.random.default_rng(1)
    labels = rng.choice(4, 40_000, p=FRACTIONS)
    stats = metrics.flavour_statistics(labels, rng.dirichlet(np.ones(4), labels.size))  # unrelated to the labels
    for eff in (0.70, 0.77, 0.85):
        assert stats[f"light_rejection_at_{round(100 * eff)}"] == pytest.approx(1 / eff, rel=0.03)
    assert stats["auc_b"] == pytest.approx(0.5, abs=0.01)


def test_flavour_statistics_agree_with_flavour_summary_at_the_same_working_points():
    labels, probs = _jets(strength=0.4)
    weight = np.random.default_rng(2).exponential(1.0, labels.size)
    stats = metrics.flavour_statistics(labels, probs, weight, f_c=0.2, f_tau=0.01)
    summary = metrics.flavour_summary(labels, probs, weight, 0.2, (0.70, 0.77, 0.85), f_tau=0.01, n_boot=0)
    for key in [k for k in stats if "rejection" in k or k.startswith("threshold")] + ["auc_macro"]:
        assert stats[key] == pytest.approx(summary[key], rel=1e-12), key
    assert stats["auc_b"] == pytest.approx(metrics.auc(labels == B, metrics.discriminant_b(probs, 0.2, 0.01), weight))


def test_three_column_tagger_works_with_f_tau_zero_and_refuses_a_tau_fraction():
    labels, probs = _jets(columns=3)
    stats = metrics.flavour_statistics(labels, probs, f_tau=0.0)
    assert stats["tau_rejection_at_77"] > 1.0  # tau jets are still background to D_b
    assert stats["auc_macro"] == pytest.approx(metrics.macro_auc(labels, probs, classes=range(3)))
    with pytest.raises(MetricInputError, match="f_tau=0.01 needs a tau column"):
        metrics.flavour_statistics(labels, probs)


def test_tau_keys_appear_only_when_tau_jets_are_present():
    labels, probs = _jets()
    keep = labels != TAU
    assert not any(k.startswith("tau_") for k in metrics.flavour_statistics(labels[keep], probs[keep]))


def test_missing_light_jets_raise_naming_them():
    labels, probs = _jets()
    keep = labels != LIGHT
    with pytest.raises(MetricInputError, match="light jets"):
        metrics.flavour_statistics(labels[keep], probs[keep])


def test_binary_statistics_match_hand_computation():
    # signal 0.9, 0.6, 0.4 (w 1, 2, 1); background 0.7, 0.4, 0.1 (w 1, 1, 2). Keeping >= 50% of the background
    # weight needs the cut at 0.4 (all signal passes); keeping >= 10% needs 0.7 (only the 0.9 signal, 1 of 4).
    y, s, w = [1, 1, 1, 0, 0, 0], [0.9, 0.6, 0.4, 0.7, 0.4, 0.1], [1.0, 2.0, 1.0, 1.0, 1.0, 2.0]
    stats = metrics.binary_statistics(y, s, w)
    assert stats == pytest.approx(
        {"auc": 12.5 / 16, "signal_efficiency_at_rejection_50": 1.0, "signal_efficiency_at_rejection_90": 0.25},
        abs=1e-15,
    )


def test_binary_statistics_of_a_random_score_keep_one_minus_the_rejection():
    rng = np.random.default_rng(3)
    stats = metrics.binary_statistics(rng.integers(0, 2, 40_000), rng.random(40_000))
    assert stats["signal_efficiency_at_rejection_50"] == pytest.approx(0.5, abs=0.02)
    assert stats["signal_efficiency_at_rejection_90"] == pytest.approx(0.1, abs=0.01)


def test_multiclass_statistics_are_the_one_vs_rest_aucs():
    labels, probs = _jets(strength=0.3)
    stats = metrics.multiclass_statistics(labels, probs)
    aucs = metrics.one_vs_rest_aucs(labels, probs)
    expected = {"auc_macro": np.mean(list(aucs.values())), **{f"auc_{k}": v for k, v in aucs.items()}}
    assert stats == pytest.approx(expected) and set(stats) == {"auc_macro", "auc_0", "auc_1", "auc_2", "auc_3"}


# --- the paired bootstrap ------------------------------------------------------------------------


def test_recomputed_working_point_widens_the_light_rejection_error():
    labels, probs = _jets()
    threshold = metrics.efficiency_thresholds(metrics.discriminant_b(probs, 0.2, 0.01), labels == B, [0.77])[0]

    def cut_held_fixed(y, p, w):
        disc = metrics.discriminant_b(p, 0.2, 0.01)
        return {"light_rejection_at_77": 1.0 / metrics.passing_fraction(disc, y == LIGHT, [threshold], w)[0]}

    moving = metrics.paired_bootstrap(metrics.flavour_statistics, labels, None, {"m": [probs]}, n_boot=200)
    fixed = metrics.paired_bootstrap(cut_held_fixed, labels, None, {"m": [probs]}, n_boot=200)
    thresholds = moving.replicates["m"][:, 0, moving.stats.index("threshold_at_77")]
    assert len(np.unique(thresholds)) > 20 and moving.summary("m")["threshold_at_77_err"] > 0.01  # the cut moves
    assert fixed.summary("m")["light_rejection_at_77"] == moving.summary("m")["light_rejection_at_77"]
    assert moving.summary("m")["light_rejection_at_77_err"] > 1.3 * fixed.summary("m")["light_rejection_at_77_err"]


def test_identical_models_are_not_significantly_different():
    labels, probs = _jets()
    boot = metrics.paired_bootstrap(
        metrics.flavour_statistics, labels, None, {"a": [probs], "b": [probs.copy()]}, n_boot=50
    )
    comparison = boot.compare("a", "b", "light_rejection_at_77")
    assert (comparison.diff, comparison.err_test, comparison.err) == (0.0, 0.0, 0.0)
    assert not comparison.significant and math.isnan(comparison.z)


def test_pairing_finds_a_difference_that_unpaired_errors_in_quadrature_miss():
    labels, score, rng = _events()
    noisy = score + rng.normal(0.0, 0.3, score.size)  # the same model, blurred: slightly worse on every replicate
    boot = metrics.paired_bootstrap(metrics.binary_statistics, labels, None, {"a": [score], "b": [noisy]})
    comparison = boot.compare("a", "b", "auc")
    unpaired = math.hypot(boot.summary("a")["auc_err"], boot.summary("b")["auc_err"])
    assert comparison.diff > 0 and comparison.significant and comparison.z > 3
    assert not metrics.significance(comparison.diff, unpaired)
    assert comparison.err_test < unpaired / 3


def test_seed_spread_enters_the_error():
    labels, score, rng = _events()
    seeds_a = [score + rng.normal(0.0, s, score.size) for s in (0.2, 0.5, 0.8)]  # seeds of very different quality
    seeds_b = [score + rng.normal(0.0, s, score.size) for s in (0.4, 0.5)]
    boot = metrics.paired_bootstrap(metrics.binary_statistics, labels, None, {"a": seeds_a, "b": seeds_b}, n_boot=100)
    comparison = boot.compare("a", "b", "auc")
    aucs_a = [metrics.auc(labels, s) for s in seeds_a]
    aucs_b = [metrics.auc(labels, s) for s in seeds_b]
    assert comparison.diff == pytest.approx(np.mean(aucs_a) - np.mean(aucs_b), abs=1e-15)
    assert comparison.err_seed == pytest.approx(math.sqrt(np.var(aucs_a, ddof=1) / 3 + np.var(aucs_b, ddof=1) / 2))
    assert comparison.err == pytest.approx(math.hypot(comparison.err_test, comparison.err_seed))
    assert comparison.err_seed > comparison.err_test  # the seeds, not the test sample, dominate here
    summary = boot.summary("a")
    assert summary["auc_seed_std"] == pytest.approx(np.std(aucs_a, ddof=1)) and summary["n_seeds"] == 3


def test_a_single_seed_has_no_seed_spread():
    labels, score, rng = _events()
    boot = metrics.paired_bootstrap(
        metrics.binary_statistics,
        labels,
        None,
        {"a": [score], "b": [score + rng.normal(0.0, 0.3, score.size)]},
        n_boot=50,
    )
    assert math.isnan(boot.summary("a")["auc_seed_std"])
    comparison = boot.compare("a", "b", "auc")
    assert comparison.err_seed == 0.0 and comparison.err == comparison.err_test


def test_paired_bootstrap_equals_a_brute_force_loop():
    rng = np.random.default_rng(5)
    labels, weight = rng.integers(0, 2, 60), rng.exponential(1.0, 60)
    predictions = {"a": [rng.random(60), rng.random(60)], "b": [rng.random(60), rng.random(60)]}
    boot = metrics.paired_bootstrap(metrics.binary_statistics, labels, weight, predictions, n_boot=25, seed=7)
    for name, seeds in predictions.items():
        expected = np.full((25, 2, len(boot.stats)), np.nan)
        for i, idx in enumerate(resample_indices(60, 25, 7)):
            for s, score in enumerate(seeds):
                try:
                    values = metrics.binary_statistics(labels[idx], score[idx], weight[idx])
                    expected[i, s] = [values[k] for k in boot.stats]
                except MetricInputError:
                    pass
        np.testing.assert_array_equal(boot.replicates[name], expected)
    j = boot.stats.index("auc")
    paired = boot.replicates["a"][:, :, j].mean(axis=1) - boot.replicates["b"][:, :, j].mean(axis=1)
    assert boot.compare("a", "b", "auc").err_test == np.std(paired, ddof=1)


def test_prediction_with_wrong_rows_names_model_and_seed():
    labels, score, _ = _events(n=100)
    with pytest.raises(MetricInputError, match=r"model 'tokens' seed 1: .* expected 100 rows"):
        metrics.paired_bootstrap(metrics.binary_statistics, labels, None, {"tokens": [score, score[:99]]})


def test_bootstrap_is_deterministic_for_a_seed():
    labels, probs = _jets(n=1000)
    run = partial(metrics.paired_bootstrap, metrics.flavour_statistics, labels, None, {"m": [probs]}, n_boot=20)
    np.testing.assert_array_equal(run(seed=3).replicates["m"], run(seed=3).replicates["m"])
    assert not np.array_equal(run(seed=3).replicates["m"], run(seed=4).replicates["m"])


def test_replicates_without_signal_are_nan_and_void_the_error():
    rng = np.random.default_rng(6)
    labels = np.zeros(30, dtype=int)
    labels[0] = 1  # one signal event: about a third of the replicates draw none
    boot = metrics.paired_bootstrap(
        metrics.binary_statistics, labels, None, {"a": [rng.random(30)], "b": [rng.random(30)]}, n_boot=100
    )
    assert 0.1 < np.isnan(boot.replicates["a"][:, 0, 0]).mean() < 0.6
    comparison = boot.compare("a", "b", "auc")
    assert comparison.dropped_fraction > 0.1 and math.isnan(comparison.err) and not comparison.significant
    assert math.isnan(boot.summary("a")["auc_err"]) and math.isfinite(boot.summary("a")["auc"])


def test_unknown_model_or_statistic_is_named():
    labels, score, _ = _events(n=200)
    boot = metrics.paired_bootstrap(metrics.binary_statistics, labels, None, {"a": [score]}, n_boot=5)
    with pytest.raises(MetricInputError, match="no model 'b'"):
        boot.compare("a", "b", "auc")
    with pytest.raises(MetricInputError, match="no statistic 'light_rejection_at_77'"):
        boot.compare("a", "a", "light_rejection_at_77")


# --- the rule and the sentence -------------------------------------------------------------------


def test_significance_is_two_sigma_inclusive_and_silent_without_an_error():
    assert metrics.SIGNIFICANCE_THRESHOLD == 2.0
    assert metrics.significance(2.0, 1.0) and metrics.significance(-3.0, 1.0)
    assert not metrics.significance(1.99, 1.0)
    assert not metrics.significance(5.0, math.nan) and not metrics.significance(5.0, 0.0)
    assert not metrics.significance(math.inf, 1.0)
    assert metrics.significance(1.5, 1.0, threshold=1.0)


def _comparison(**changes):
    base = dict(
        a="ft",
        b="tok",
        stat="light_rejection_at_77",
        diff=2.2,
        err_test=0.6,
        err_seed=0.5,
        err=math.hypot(0.6, 0.5),
        z=2.2 / math.hypot(0.6, 0.5),
        significant=True,
        value_a=12.3,
        err_a=1.1,
        n_seeds_a=3,
        value_b=10.1,
        err_b=0.9,
        n_seeds_b=3,
        dropped_fraction=0.0,
    )
    return metrics.Comparison(**{**base, **changes})


def test_sentence_states_who_is_ahead_by_how_much_and_how_it_was_measured():
    c = _comparison()
    text = metrics.difference_sentence(c, "tokens, fine-tuned", "tokens", "light-jet rejection at 77% b-efficiency")
    assert text == (
        f"By light-jet rejection at 77% b-efficiency, tokens, fine-tuned ({fmt(12.3, 1.1)}) is ahead of "
        f"tokens ({fmt(10.1, 0.9)}) by {fmt(2.2, c.err)} (2.8 sigma; paired bootstrap over the same test "
        "jets, 3 seeds each)."
    )
    behind = metrics.difference_sentence(c, "A", "B", "validation loss", higher_is_better=False, rows="events")
    assert " A (" in behind and " is behind B (" in behind and "same test events" in behind


def test_sentence_for_an_insignificant_or_unmeasurable_difference():
    quiet = _comparison(diff=0.3, z=0.3 / 0.78, significant=False, n_seeds_b=1)
    text = metrics.difference_sentence(quiet, "A", "B", "AUC")
    assert text == (
        f"By AUC, A ({fmt(12.3, 1.1)}) is not significantly different from B ({fmt(10.1, 0.9)}): the "
        f"difference is {fmt(0.3, quiet.err)} (0.4 sigma; paired bootstrap over the same test jets, "
        "3 and 1 seeds)."
    )
    void = _comparison(err_test=math.nan, err=math.nan, z=math.nan, significant=False, dropped_fraction=0.3)
    assert "cannot be compared: over 10% of the bootstrap replicates give no finite value" in (
        metrics.difference_sentence(void, "A", "B", "AUC")
    )


def test_seeds_that_agree_exactly_have_a_spread_of_exactly_zero():
    """A deterministic model (gradient-boosted trees without subsampling) gives the same scores for every seed: its
    seed spread is 0, not the 1e-16 of a floating-point mean."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    score = y + rng.normal(0, 1, 300)
    from treasure_lib.metrics import paired

    boot = paired.paired_bootstrap(
        paired.binary_statistics, y, None, {"gbdt": [score, score.copy(), score.copy()]}, n_boot=20, seed=1
    )
    summary = boot.summary("gbdt")
    assert summary["signal_efficiency_at_rejection_50_seed_std"] == 0.0 and summary["auc_seed_std"] == 0.0


def test_one_seed_has_no_spread_and_no_numpy_warning():
    import warnings

    from treasure_lib.metrics import paired

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    boot = paired.paired_bootstrap(
        paired.binary_statistics, y, None, {"tokens": [y + rng.normal(0, 1, 200)]}, n_boot=10, seed=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a page must not show numpy's degrees-of-freedom warning
        summary = boot.summary("tokens")
    assert math.isnan(summary["auc_seed_std"]) and summary["n_seeds"] == 1
