"""Physics baselines: the m4l window as a score and the gradient-boosted classic-variable classifier."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.baselines import NO_QUADRUPLET_SCORE, gradient_boosted, mass_window_score
from treasure_lib.errors import ConfigError
from treasure_lib.metrics.roc import auc, roc_curve


def test_mass_window_score_traces_the_window_scan_roc():
    rng = np.random.default_rng(0)
    m4l = np.r_[rng.normal(125.0, 2.0, 2000), rng.uniform(110.0, 140.0, 2000), np.nan]
    label = np.r_[np.ones(2000), np.zeros(2001)]
    score = mass_window_score(m4l)
    assert score[-1] == NO_QUADRUPLET_SCORE and np.isfinite(score).all()
    fpr, tpr, thresholds = roc_curve(label, score)
    for half_width in (1.0, 2.5, 5.0):  # the ROC point at threshold -w is the window 125 +- w
        k = np.searchsorted(-thresholds[1:], half_width, side="right")
        in_window = np.abs(m4l - 125.0) <= half_width
        assert tpr[k] == pytest.approx(in_window[label == 1].mean())
        assert fpr[k] == pytest.approx(in_window[label == 0].mean())
    assert auc(label, score) > 0.85


def _rows(rng, n):
    label = rng.integers(0, 2, n)
    return {
        "separable": label + rng.normal(0, 0.1, n),
        "useless": rng.normal(0, 1, n),
        "label": label,
        "weight": rng.uniform(0.5, 1.5, n),
    }


def test_gradient_boosted_separates_a_separable_variable_and_not_a_useless_one():
    rng = np.random.default_rng(1)
    train, val, test = _rows(rng, 1500), _rows(rng, 500), _rows(rng, 1000)
    good = gradient_boosted(train, val, test, ["separable"], seed=0, max_iter=60, n_threads=1)
    assert auc(test["label"], good["test_score"], test["weight"]) > 0.99
    useless = gradient_boosted(train, val, test, ["useless"], seed=0, max_iter=300, n_iter_no_change=10, n_threads=1)
    assert abs(auc(test["label"], useless["test_score"], test["weight"]) - 0.5) < 0.05
    assert useless["early_stopped"] and useless["n_iter"] < 300, "noise stops improving the validation loss"
    assert len(useless["validation_loss"]) == useless["n_iter"] + 1
    again = gradient_boosted(train, val, test, ["useless"], seed=0, max_iter=300, n_iter_no_change=10, n_threads=1)
    np.testing.assert_array_equal(again["test_score"], useless["test_score"])


def test_gradient_boosted_stops_on_the_given_validation_rows():
    """Validation rows whose labels are shuffled: the validation loss never improves, whatever the training does."""
    rng = np.random.default_rng(2)
    train, val, test = _rows(rng, 2000), _rows(rng, 1000), _rows(rng, 500)
    shuffled = dict(val, label=rng.permutation(val["label"]))
    fit = dict(seed=0, max_iter=200, n_iter_no_change=5, n_threads=1)
    honest = gradient_boosted(train, val, test, ["separable"], **fit)
    fooled = gradient_boosted(train, shuffled, test, ["separable"], **fit)
    assert fooled["n_iter"] < honest["n_iter"]
    assert fooled["validation_loss"].min() > honest["validation_loss"].min()


def test_gradient_boosted_names_missing_columns():
    rng = np.random.default_rng(3)
    rows = _rows(rng, 50)
    with pytest.raises(ConfigError, match=r"the validation rows lack \['m4l'\]"):
        gradient_boosted(dict(rows, m4l=rows["useless"]), rows, rows, ["m4l"], seed=0, n_threads=1)
