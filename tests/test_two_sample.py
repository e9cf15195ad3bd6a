"""Generated against test samples: the earth mover's and Kolmogorov-Smirnov distances on known cases, the
statistical floor of an independent sample (it shrinks with the sample's size, it draws whole jets), and the
verdict sentence for each of its branches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from treasure_lib.errors import MetricInputError
from treasure_lib.metrics import two_sample


def test_earth_movers_distance_of_two_normals_shifted_by_d_is_d():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 200_000), rng.normal(0.7, 1.0, 200_000)
    assert two_sample.wasserstein(a, b) == pytest.approx(0.7, abs=0.01)
    assert two_sample.wasserstein([0.0], [3.0]) == pytest.approx(3.0)  # two point masses: the distance between them


def test_distances_equal_scipy_with_and_without_weights():
    rng = np.random.default_rng(1)
    a, b = rng.exponential(2.0, 300), rng.gamma(2.0, 1.0, 500)
    wa, wb = rng.uniform(0.1, 2.0, 300), rng.uniform(0.1, 2.0, 500)
    assert two_sample.wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)
    assert two_sample.wasserstein(a, b, wa, wb) == pytest.approx(stats.wasserstein_distance(a, b, wa, wb), rel=1e-12)
    assert two_sample.ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, rel=1e-12)


def test_weights_count_like_repeated_entries():
    a, b = np.array([0.0, 1.0, 4.0]), np.array([0.5, 2.0])
    repeated = np.array([0.0, 0.0, 1.0, 4.0, 4.0, 4.0])
    weights = np.array([2.0, 1.0, 3.0])
    assert two_sample.wasserstein(a, b, weights) == pytest.approx(two_sample.wasserstein(repeated, b))
    assert two_sample.ks_statistic(a, b, weights) == pytest.approx(two_sample.ks_statistic(repeated, b))


def test_identical_samples_are_at_distance_zero():
    a = np.random.default_rng(2).normal(size=1000)
    assert two_sample.ks_statistic(a, a.copy()) == 0.0 and two_sample.wasserstein(a, a[::-1]) == 0.0


def test_a_sample_without_entries_or_with_nan_is_an_error():
    with pytest.raises(MetricInputError, match="entries in both"):
        two_sample.wasserstein([], [1.0])
    with pytest.raises(MetricInputError, match="non-finite"):
        two_sample.ks_statistic([np.nan, 1.0], [1.0])


def _sample(rng, n, shift=0.0):
    """Jets with a per-jet pt and 5 tracks each that share their jet's displacement (correlated within the jet)."""
    displacement = rng.exponential(1.0, n)[:, None] + rng.normal(0.0, 0.05, (n, 5))
    return {"jet_pt": rng.normal(50.0 + shift, 10.0, n), "track_ip": displacement + shift / 10.0}


def test_compare_reports_scale_free_distances_and_the_floor():
    rng = np.random.default_rng(3)
    test, reference = _sample(rng, 20_000), _sample(rng, 20_000)
    rows = two_sample.compare(_sample(rng, 2_000, shift=5.0), test, reference, n_resamples=4)
    pt = rows[0]
    assert [r["variable"] for r in rows] == ["jet_pt", "track_ip"]
    assert pt["n_generated"] == 2_000 and rows[1]["n_generated"] == 10_000  # the tracks' entries
    assert pt["w1_over_std"] == pytest.approx(pt["w1"] / pt["test_std"]) and pt["w1_over_std"] == pytest.approx(
        0.5, abs=0.06
    )
    assert pt["generated_mean"] - pt["test_mean"] == pytest.approx(5.0, abs=0.6)
    assert pt["floor_rows"] == 2_000 and not pt["floor_replacement"]
    assert pt["floor_w1_over_std"] < 0.1 and pt["floor_w1_over_std_spread"] > 0
    assert not two_sample.is_close(pt)


def test_the_floor_shrinks_with_the_generated_sample_size():
    rng = np.random.default_rng(4)
    test, reference = _sample(rng, 20_000), _sample(rng, 20_000)
    small = two_sample.compare(_sample(rng, 100), test, reference, n_resamples=6)[0]
    large = two_sample.compare(_sample(rng, 10_000), test, reference, n_resamples=6)[0]
    assert large["floor_w1_over_std"] < small["floor_w1_over_std"] / 4  # ~ 1 / sqrt(rows): 10 x fewer rows
    assert large["floor_ks"] < small["floor_ks"] / 4


def test_the_floor_draws_whole_jets_so_correlated_tracks_stay_together():
    """Tracks of one jet share its displacement: five tracks carry hardly more information than one, so the floor
    of 1000 jets' tracks is about sqrt(5) x that of 5000 independent tracks (what drawing tracks alone would give)."""
    rng = np.random.default_rng(5)
    test, reference = _sample(rng, 20_000), _sample(rng, 20_000)
    row = two_sample.compare(_sample(rng, 1_000), test, reference, n_resamples=20)[1]
    flat, test_tracks = reference["track_ip"].reshape(-1), test["track_ip"].reshape(-1)
    draws = [flat[rng.choice(flat.size, 5_000, replace=False)] for _ in range(20)]
    independent = np.mean([two_sample.wasserstein(d, test_tracks) for d in draws]) / np.std(test_tracks)
    assert row["floor_w1_over_std"] > 1.4 * independent


def test_a_generated_sample_from_the_test_distribution_is_as_close_as_an_independent_one():
    rng = np.random.default_rng(6)
    test, reference = _sample(rng, 20_000), _sample(rng, 20_000)
    rows = two_sample.compare(_sample(rng, 2_000), test, reference)
    assert all(two_sample.is_close(r) for r in rows)


def test_a_small_reference_is_drawn_with_replacement():
    rng = np.random.default_rng(7)
    row = two_sample.compare(_sample(rng, 500), _sample(rng, 2_000), _sample(rng, 300), n_resamples=3)[0]
    assert row["floor_rows"] == 500 and row["floor_replacement"] and row["n_reference"] == 300


def test_compare_names_what_is_missing_and_what_disagrees():
    rng = np.random.default_rng(8)
    test = _sample(rng, 100)
    with pytest.raises(MetricInputError, match="jet_pt"):
        two_sample.compare({"track_ip": test["track_ip"]}, test)
    with pytest.raises(MetricInputError, match="share their rows"):
        two_sample.compare({"jet_pt": test["jet_pt"], "track_ip": test["track_ip"][:50]}, test)
    with pytest.raises(MetricInputError, match="test variable 'jet_pt' has no entries"):
        two_sample.compare(test, {"jet_pt": np.full(10, np.nan)})


def test_an_object_never_generated_gets_no_distance_and_says_so():
    rng = np.random.default_rng(9)
    test, reference = _sample(rng, 1_000), _sample(rng, 1_000)
    generated = {**_sample(rng, 200), "track_ip": np.full((200, 5), np.nan)}
    rows = two_sample.compare(generated, test, reference, n_resamples=3)
    assert rows[1]["n_generated"] == 0 and np.isnan(rows[1]["w1_over_std"]) and not two_sample.is_close(rows[1])
    assert "track_ip: never generated (5000 test entries)" in two_sample.generation_verdict(rows)


def test_without_a_reference_there_is_no_floor_and_no_verdict():
    rng = np.random.default_rng(10)
    rows = two_sample.compare(_sample(rng, 300), _sample(rng, 1_000))
    assert np.isnan(rows[0]["floor_w1_over_std"]) and not two_sample.is_close(rows[0])
    text = two_sample.generation_verdict(rows)
    assert text.startswith("No verdict on the generated sample: no independent standard-model sample gave a floor.")
    assert "jet_pt: W1/σ" in text and "no floor" in text


def _row(variable, distance, floor=0.01, spread=0.002):
    return {
        "variable": variable,
        "n_generated": 100,
        "n_test": 100,
        "w1_over_std": distance,
        "floor_w1_over_std": floor,
        "floor_w1_over_std_spread": spread,
    }


def test_verdict_every_variable_within_the_floor():
    text = two_sample.generation_verdict([_row("jet_pt", 0.012), _row("track_pt", 0.016)])  # 0.016 = 0.01 + 3 x 0.002
    assert text.startswith(
        "The generated sample is as close to the test sample as an independent standard-model "
        "sample in every variable (2):"
    )
    assert "jet_pt: as close as an independent sample (W1/σ 0.0120, floor 0.0100 ± 0.0020)" in text


def test_verdict_counts_the_variables_within_and_says_how_many_times_the_floor_the_others_are():
    text = two_sample.generation_verdict([_row("jet_pt", 0.012), _row("track_pt", 0.05)])
    assert "in 1 of 2 variables (jet_pt)" in text and "track_pt: 5.00 times the floor" in text


def test_verdict_when_no_variable_is_within_the_floor():
    text = two_sample.generation_verdict([_row("jet_pt", 0.03), _row("track_pt", 0.05)])
    assert text.startswith(
        "The generated sample is further from the test sample than an independent standard-model "
        "sample in every variable (2):"
    )
    assert "jet_pt: 3.00 times the floor" in text


def test_verdict_without_rows():
    assert two_sample.generation_verdict([]).startswith("No generated-versus-test comparison")
