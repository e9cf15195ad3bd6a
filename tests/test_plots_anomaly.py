"""The anomaly-detection chapter's figures from small synthetic inputs: labelled axes with units, the sample label
clear of the legend, and the efficiency curve of a score on known cases (random for identical samples, the normal
tail for a shifted one)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from scipy import stats

from treasure_lib import metrics, plots
from treasure_lib.formatting import fmt
from treasure_lib.metrics import sample_variables, two_sample
from treasure_lib.plots import anomaly

from .test_plots import check

matplotlib.use("Agg")


def _label_clears_legend(ax) -> bool:
    """Whether the sample label's text boxes and the legend's box do not intersect once drawn."""
    FigureCanvasAgg(ax.figure).draw()
    legend = ax.get_legend().get_window_extent()
    texts = [t for t in ax.texts if "Pythia 8" in t.get_text() or "TeV" in t.get_text()]
    return bool(texts) and not any(t.get_window_extent().overlaps(legend) for t in texts)


def test_identical_samples_give_the_random_guess_curve():
    sm = np.random.default_rng(0).normal(size=500)
    sm_eff, signal_eff = metrics.roc_points(sm, sm.copy())
    np.testing.assert_array_equal(sm_eff, signal_eff)
    assert sm_eff[0] == 0.0 and sm_eff[-1] == 1.0


def test_a_shifted_normal_passes_its_analytic_tail_at_one_percent_sm():
    """SM ~ N(0, 1), signal ~ N(2, 1): at 1% SM efficiency the threshold is z = 2.326, the signal passes
    1 - Phi(z - 2) = 0.372."""
    rng = np.random.default_rng(1)
    sm_eff, signal_eff = metrics.roc_points(rng.normal(0, 1, 400_000), rng.normal(2, 1, 400_000))
    expected = stats.norm.sf(stats.norm.isf(0.01) - 2.0)
    assert np.interp(0.01, sm_eff, signal_eff) == pytest.approx(expected, abs=0.005)


def test_weights_in_the_efficiency_curve_count_like_repeated_events():
    sm, signal = np.array([0.1, 0.5, 0.9]), np.array([0.4, 0.8])
    weighted = metrics.roc_points(sm, signal, sm_weight=[1.0, 2.0, 1.0], signal_weight=[3.0, 1.0])
    repeated = metrics.roc_points([0.1, 0.5, 0.5, 0.9], [0.4, 0.4, 0.4, 0.8])
    for a, b in zip(weighted, repeated):
        np.testing.assert_allclose(a, b)


def test_score_distributions_share_bins_and_keep_the_legend_below_the_label(tmp_path):
    rng = np.random.default_rng(2)
    scores = {"SM test": rng.normal(0, 1, 5000), "Dark shower, long-lived dark pions": rng.normal(2, 1, 500)}
    fig = anomaly.score_distributions(
        scores, {"SM test": rng.uniform(0.5, 1.5, 5000)}, "Mean surprise [nats]", save_to=tmp_path, name="scores"
    )
    check(fig, tmp_path, "scores", units=("nats",))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "Fraction of entries"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(scores) and _label_clears_legend(ax)
    with pytest.raises(ValueError, match="'SM test'"):
        anomaly.score_distributions({"signal": scores["SM test"]})


def test_roc_curves_on_log_axes_with_the_diagonal_and_the_working_points(tmp_path):
    rng = np.random.default_rng(3)
    sm = rng.normal(0, 1, 20_000)
    curves = {
        "Z' \u2192 tt": metrics.roc_points(sm, rng.normal(1.5, 1, 2_000)),
        "H \u2192 ZZ \u2192 4l (300 GeV)": metrics.roc_points(sm, rng.normal(3, 1, 2_000)),
    }
    fig = anomaly.roc_curves(curves, save_to=tmp_path, name="roc")
    check(fig, tmp_path, "roc")
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_xlim() == (1e-3, 1.0)
    assert ax.get_xlabel() == "SM efficiency" and ax.get_ylabel() == "Signal efficiency"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Random", *curves, "1% SM efficiency", "0.1% SM efficiency"]
    marked = [line for line in ax.lines if line.get_marker() in ("o", "s") and len(line.get_xdata()) == 1]
    assert sorted(float(line.get_xdata()[0]) for line in marked) == [1e-3, 1e-3, 1e-2, 1e-2]
    assert _label_clears_legend(ax)


def test_a_roc_curve_of_few_standard_model_rows_marks_only_what_they_resolve_and_stays_a_normal_figure(tmp_path):
    """305 SM jets resolve no 0.1% working point; a signal efficiency of 0 there once drew an unclipped marker at
    log(0) that stretched the saved PNG to 117,000 pixels."""
    rng = np.random.default_rng(4)
    sm = rng.normal(0, 1, 305)
    fig = anomaly.roc_curves({"signal": metrics.roc_points(sm, rng.normal(-1, 1, 400))}, save_to=tmp_path, name="few")
    ax = fig.axes[0]
    marked = [line for line in ax.lines if line.get_marker() in ("o", "s") and len(line.get_xdata()) == 1]
    assert all(float(line.get_xdata()[0]) >= 1 / 305 for line in marked)
    from PIL import Image

    width, height = Image.open(tmp_path / "few.png").size
    assert width < 3000 and height < 3000, (width, height)


def _jets(rng, n, shift=0.0):
    tracks = np.zeros((n, 6, 4))
    tracks[..., 0] = rng.exponential(3e3 * (1 + shift), (n, 6)) + 500.0
    tracks[..., 3] = rng.normal(0.5, 2.0, (n, 6))
    valid = np.arange(6)[None] < rng.integers(1, 7, n)[:, None]
    jets = np.stack([rng.exponential(40e3, n) + 20e3, rng.normal(size=n), rng.exponential(8e3, n)], -1)[:, None]
    names = {"jets": ["pt", "eta", "mass"], "tracks": ["pt", "d0", "d0Uncertainty", "lifetimeSignedD0Significance"]}
    return sample_variables.jet_variables({"jets": (jets, np.ones((n, 1), bool)), "tracks": (tracks, valid)}, names)


def test_generated_vs_test_has_a_panel_per_variable_with_its_unit_and_distance(tmp_path):
    rng = np.random.default_rng(4)
    test, generated, reference = _jets(rng, 2000), _jets(rng, 400, shift=0.3), _jets(rng, 2000)
    rows = two_sample.compare(generated, test, reference, n_resamples=3)
    fig = anomaly.generated_vs_test(
        {"test": test, "generated": generated, "reference": reference}, rows, save_to=tmp_path, name="gen"
    )
    check(fig, tmp_path, "gen", units=("GeV",))
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len(rows) == 5
    assert [ax.get_xlabel() for ax in panels] == [
        "Jet $p_{T}$ [GeV]",
        "Jet m [GeV]",
        "Number of tracks per jet",
        "Track $p_{T}$ [GeV]",
        "Track signed d0 / \u03c3(d0)",
    ]
    assert panels[3].get_ylabel() == "Fraction of tracks" and panels[0].get_ylabel() == "Fraction of jets"
    legend = [t.get_text() for t in panels[3].get_legend().get_texts()]
    assert legend[0] == "Test (SM)" and legend[1] == f"Generated, W1/\u03c3 = {fmt(rows[3]['w1_over_std'])}"
    assert legend[2].startswith("Independent SM sample, W1/\u03c3 floor ")
    label = [t.get_text() for ax in fig.axes if not ax.axison for t in ax.texts]
    assert any("Pythia 8" in t for t in label)  # the spare slot of the 2 x 3 grid holds the sample label
    without = anomaly.generated_vs_test({"test": test, "generated": generated})  # no distances: the test's variables
    assert len([ax for ax in without.axes if ax.axison]) == 5


def test_multiplicities_get_one_bin_per_integer():
    edges = anomaly.common_edges([np.array([1.0, 2.0, 5.0]), np.array([[3.0, np.nan]])])
    np.testing.assert_array_equal(edges, np.arange(0.5, 6.0))


def test_label_efficiency_takes_points_of_several_backbones(tmp_path):
    points = {
        "masked-token backbone": [(0.1, 0.70, 0.02), (0.5, 0.80, 0.01), (1.0, 0.82, 0.01)],
        "next-token backbone": [(0.1, 0.72, 0.02), (1.0, 0.83, 0.01)],
    }
    fractions, results = plots.from_points(points)
    np.testing.assert_array_equal(fractions, [0.1, 0.5, 1.0])
    mean, low, high = results["next-token backbone"]
    np.testing.assert_allclose(mean, [0.72, np.nan, 0.83])
    np.testing.assert_allclose(high - mean, [0.02, np.nan, 0.01])
    check(plots.label_efficiency(fractions, results, save_to=tmp_path), tmp_path, "label_efficiency")
