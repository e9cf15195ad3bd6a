"""The reconstruction metrics (`treasure_lib.metrics.reconstruction`): one implementation per number, checked on
inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.metrics import reconstruction as rm


def test_sigma68_of_a_gaussian_is_its_sigma_and_empty_gives_nan():
    x = np.random.default_rng(0).normal(3.0, 2.0, 400_000)
    assert rm.sigma68(x) == pytest.approx(2.0, rel=0.01)
    assert np.isnan(rm.sigma68([]))
    summary = rm.robust_summary(x)
    assert summary["n"] == x.size and summary["median"] == pytest.approx(3.0, abs=0.02)
    assert summary["iqr"] == pytest.approx(2 * 0.6745 * 2.0, rel=0.01) and summary["sigma68"] == rm.sigma68(x)
    assert rm.robust_summary(np.zeros(0)) == {"n": 0}


def test_response_median_and_iqr_over_median_of_known_ratios():
    orig = np.full(5, 10.0)
    reco = np.array([8.0, 9.0, 10.0, 11.0, 12.0])  # ratios 0.8 ... 1.2: quartiles 0.9 and 1.1
    r = rm.response(reco, orig)
    assert r["n"] == 5 and r["median"] == pytest.approx(1.0) and r["iqr_over_median"] == pytest.approx(0.2)
    assert r["iqr_over_median_err"] > 0
    assert rm.median_and_iqr_over_median(np.zeros(4)) == (0.0, pytest.approx(float("nan"), nan_ok=True))
    assert rm.response(np.array([1.0, 2.0]), np.array([0.0, 2.0])) == {"n": 1}, "orig <= 0 is left out"
    rows = rm.response_in_bins(np.array([5.0, 15.0, 15.0]), np.array([1.0, 2.0, 4.0]), np.ones(3) * 2, [0, 10, 20])
    assert [row["n"] for row in rows] == [1, 2] and rows[1]["median"] == pytest.approx(1.5)


def test_feature_summary_is_the_residual_and_response_numbers():
    orig = np.array([1.0, 2.0, 4.0, 8.0])
    numbers = rm.feature_summary(orig, orig * 1.5, categorical=False, log_scaled=True)
    assert numbers["bias"] == pytest.approx(np.mean(orig * 0.5)) and numbers["mae"] == numbers["bias"]
    assert numbers["resolution"] == rm.sigma68(orig * 0.5) and numbers["corr"] == pytest.approx(1.0)
    assert numbers["response_median"] == pytest.approx(1.5) and numbers["response_iqr_over_median"] == 0.0
    assert rm.feature_summary(orig, orig, categorical=True, log_scaled=False) == {"accuracy": 1.0}
    assert rm.feature_summary([], [], categorical=False, log_scaled=False) == {}


def test_level_metric_items_name_every_level_and_leave_the_last_unnamed():
    levels = {1: {"pt": {"mae": 3.0}}, 2: {"pt": {"mae": 1.0}}}
    assert rm.level_metric_items(levels, "tokenizer.jets.") == {
        "tokenizer.jets.pt.level_1.mae": 3.0,
        "tokenizer.jets.pt.level_2.mae": 1.0,
        "tokenizer.jets.pt.mae": 1.0,
    }
