"""Chapter 02's wording and tables, decided by small functions of numbers (synthetic numbers here)."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import metric_keys
from treasure_lib.diagnostics import reconstruction as reco
from treasure_lib.study import tokenization as tz


def test_every_metric_key_the_chapter_builds_is_documented():
    jet = {
        "pt_response": {"iqr_over_median": 0.18, "iqr_over_median_err": 0.005, "median": 1.03},
        "mass_response": {"iqr_over_median": 0.3},
        "eta_residual": {"sigma68": 0.01},
        "phi_residual": {"sigma68": 0.01},
    }
    bins = [{"low": 20.0, "high": 40.0, "median": 1.09, "iqr_over_median": 0.2, "n": 900}]
    leptons = {"mll": {"residual_gev": {"sigma68": 3.0}, "peak_shift_gev": 0.1, "n": 10}}
    keys = [
        tz.export_rate_key(),
        tz.tokenizer_key("tracks", "objects"),
        tz.tokenizer_key("tracks", "bits_per_object"),
        *tz.jet_metrics(jet, bins),
        *tz.lepton_metrics(leptons),
    ]
    metric_keys.check(keys)
    assert "tokenizer.jets.track_sum_pt.bin_20_40.response_median" in keys
    assert tz.lepton_mass_key("m4l", "peak_shift_gev") == "tokenizer.leptons.m4l.peak_shift_gev"


def test_a_falling_response_across_jet_pt_is_a_non_closure():
    assert tz.non_closure_trend([1.09, 1.06, 1.02, 0.95, 0.64]) == "falling"
    assert tz.non_closure_trend([0.9, 0.95, 1.1]) == "rising"
    assert tz.non_closure_trend([1.0, 1.3, 0.9]) == "mixed"
    assert tz.non_closure_trend([1.01, 0.995, 1.005]) == "flat"  # spread within 2%
    assert tz.non_closure_trend([0.95, 0.955, 0.951]) == "flat"  # flat, though offset from 1
    assert tz.non_closure_trend([1.0, np.nan]) == "undetermined"


def _bins(medians):
    edges = [20, 40, 60, 100, 150, 250, 400, 1000]
    return [
        {"low": float(lo), "high": float(hi), "median": m, "n": 100} for lo, hi, m in zip(edges, edges[1:], medians)
    ]


def test_jet_sentence_names_the_trend_the_overall_median_hides_and_the_worst_bin():
    overall = {"median": 1.033, "iqr_over_median": 0.17603, "iqr_over_median_err": 0.00497, "n": 3483}
    text = tz.jet_response_sentence(overall, _bins([1.09, 1.06, 1.02, 0.948, 0.897, 0.728, 0.641]))
    assert "0.1760 ± 0.0050" in text and "median response of 1.03 (3483 jets)" in text
    assert "falls with jet pT, a pT-dependent non-closure that the overall median hides" in text
    assert "soft jets come out too hard and hard jets too soft" in text  # the trend crosses 1
    assert "-35.9% in the 400–1000 GeV bin" in text


def test_jet_sentence_for_a_closing_scale_says_so_and_names_no_bias():
    text = tz.jet_response_sentence(
        {"median": 1.0, "iqr_over_median": 0.1, "iqr_over_median_err": 0.01, "n": 50}, _bins([1.005, 0.999, 1.01])
    )
    assert "flat within 2% and within 2% of 1, so the scale closes" in text
    assert "no bin is off by more than 2%" in text and "non-closure" not in text


def test_jet_sentence_for_a_falling_response_below_one_does_not_claim_soft_jets_too_hard():
    text = tz.jet_response_sentence({"median": 0.9, "n": 50}, _bins([0.97, 0.9, 0.8]))
    assert "falls with jet pT" in text and "too hard" not in text and "-20.0% in the 60–100 GeV bin" in text


@pytest.mark.parametrize(
    "sigma, width, words",
    [
        (0.5, 2.0, "the tokens keep the peak (smearing 0.250 times its width; the decoded peak is about 1.03 times"),
        (2.0, 2.0, "the tokens broaden the peak (smearing 1.00 times its width; the decoded peak is about 1.41 times"),
        (10.0, 2.0, "the tokens smear the resonance well beyond its width at this codebook size (smearing 5.00 times"),
        (np.nan, 2.0, "too few events"),
        (1.0, np.nan, "too few events"),
        (1.0, 0.0, "too few events"),
    ],
)
def test_mass_smearing_verdict_compares_the_decoded_smearing_with_the_peak_width(sigma, width, words):
    assert tz.mass_smearing_verdict(sigma, width).startswith(words)


def test_peak_width_is_sigma68_inside_the_window():
    rng = np.random.default_rng(3)
    z = np.r_[rng.normal(91.2, 2.5, 20000), rng.uniform(20, 200, 2000)]  # a Z peak on a flat background
    assert tz.peak_width(z, reco.Z_WINDOW_GEV) == pytest.approx(2.5, rel=0.1)


def test_lepton_sentence_quotes_both_masses_their_verdicts_and_peak_shifts():
    masses = {
        "mll": {"residual_gev": {"sigma68": 3.1}, "n": 812, "peak_shift_gev": -0.42},
        "m4l": {"residual_gev": {"sigma68": 9.5}, "n": 120, "peak_shift_gev": 1.3},
    }
    text = tz.lepton_mass_sentence(masses, {"mll": 2.4, "m4l": 2.1})
    assert text.startswith(
        "From decoded leptons, the Z-candidate mass m_ll has a residual (decoded − original) of "
        "σ68 = 3.10 GeV (812 events) against the original σ68 of 2.40 GeV of all events in 81–101 GeV "
        "(every sample; the signal-region peaks follow): the tokens broaden the peak"
    ), "the width is what the window holds (H and ZZ* together for m_4l), not called the H peak"
    assert "The four-lepton mass m_4l has" in text and "well beyond its width" in text
    assert (
        "The peak positions move: m_ll by -0.420 GeV (median in 81–101 GeV) and m_4l by +1.30 GeV (median in "
        "115–135 GeV); a window median barely reacts to smearing"
    ) in text
    assert tz.lepton_mass_sentence({}, {}) == ""


def test_a_peak_window_without_masses_is_said_so_not_printed_as_a_dash():
    masses = {
        "mll": {"residual_gev": {"sigma68": 3.0}, "n": 40, "peak_shift_gev": 0.2},
        "m4l": {"residual_gev": {"sigma68": 68.0}, "n": 144, "peak_shift_gev": float("nan")},
    }
    text = tz.peak_shift_sentence(masses)
    assert text == (
        "The peak positions move: m_ll by +0.200 GeV (median in 81–101 GeV); a window median barely "
        "reacts to smearing, the widths do. The m_4l peak cannot be placed: no original or no decoded "
        "mass in its 115–135 GeV window."
    )


def test_level_sentence_calls_refinement_only_when_every_level_improves():
    good = tz.level_refinement_sentence("tracks", "the pT response resolution", [0.506, 0.283, 0.197])
    assert good == (
        "tracks: the pT response resolution goes 0.506 → 0.283 → 0.197 after 1 → 3 levels; each level "
        "refines the code of the level before (residual quantization)."
    )
    bad = tz.level_refinement_sentence("tracks", "σ68", [0.5, 0.3, 0.31])
    assert "level 3 does not improve on the level before" in bad and "refines" not in bad
    assert "with all its quantities binned" in tz.level_refinement_sentence("jets", "σ68", [1.29])


def test_card_descriptions_say_levels_and_codes_or_quantities_and_bins():
    assert tz.card_description("tracks", "vqvae", 3, 512) == "`tracks` (VQ-VAE, 3 levels × 512 codes)"
    assert tz.card_description("jets", "binning", 3, 32) == "`jets` (binning, 3 quantities × 32 bins)"
    assert "1 level × 64 codes" in tz.card_description("e", "kmeans", 1, 64)


LEVELS = {
    q: {
        "pt": {"bias": -642.0 / q, "resolution": 1480.0 / q, "corr": 0.8, "response_iqr_over_median": 0.2 / q},
        "d0": {"bias": -0.002, "resolution": 0.05 / q, "corr": 0.84},
        "eta": {"bias": 0.0, "resolution": 0.03 / q, "corr": 0.99},
        "leptonID": {"accuracy": 0.99},
    }
    for q in (1, 2, 3)
}
UNITS = {"pt": "MeV", "d0": "mm"}


def test_feature_rows_show_energies_in_gev_with_units_and_physics_names():
    rows = tz.feature_rows(LEVELS, ["pt", "eta", "d0", "leptonID"], UNITS, categorical=["leptonID"])
    by = {r["Feature"]: r for r in rows}
    assert list(by) == ["pT [GeV]", "η", "d0 [mm]", "leptonID"]
    assert by["pT [GeV]"]["Bias"] == pytest.approx(-0.214)
    assert by["pT [GeV]"]["σ68, level 1 → Q"] == "1.48 → 0.740 → 0.493"
    assert by["pT [GeV]"]["Response IQR/median"] == pytest.approx(0.2 / 3)
    assert by["d0 [mm]"]["Bias"] == pytest.approx(-0.002) and by["η"]["Response IQR/median"] is None
    assert by["leptonID"]["Accuracy"] == 0.99 and by["leptonID"]["Bias"] is None


def test_summary_row_summarises_a_card_by_its_key_feature_in_gev():
    row = tz.summary_row("tracks", "vqvae", 3, 512, 27.0, 22526, LEVELS, "pt", "MeV")
    assert row["Key feature"] == "pT [GeV]" and row["σ68, level 1 → Q"] == "1.48 → 0.740 → 0.493"
    assert row["Tokenizer"] == "VQ-VAE" and row["Held-out objects"] == 22526
    assert tz.key_feature(["eta", "charge", "phi"], ["charge"]) == "eta" and tz.key_feature(["eta", "pt"]) == "pt"


def test_only_bins_with_enough_jets_are_quoted():
    bins = [{"n": 11}, {"n": 10}, {"n": 0, "error": "empty"}]
    assert tz.quoted_bins(bins) == [{"n": 11}]
