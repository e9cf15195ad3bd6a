"""Figures say what made the samples (Pythia 8 + a parametric emulation, not ATLAS simulation) and call tokens
turned back into features "decoded"; residual panels show the core and count what falls outside."""

from __future__ import annotations

import matplotlib
import numpy as np

from treasure_lib import plots
from treasure_lib.plots import style

matplotlib.use("Agg")


def _texts(fig) -> str:
    return " | ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def test_every_figure_label_is_honest_about_the_samples(tmp_path):
    rng = np.random.default_rng(2)
    figs = [
        plots.distributions(rng.normal(50, 10, 500), rng.normal(50, 11, 500), "$p_T$", "GeV"),
        plots.correlation_2d(rng.normal(size=300), rng.normal(size=300), "η", None),
        plots.response_vs_pt([20, 40, 60], [0.2, 0.1], [0.05, -0.05], xlabel="Jet $p_{T}$ [GeV]"),
        plots.roc_curves({"tokens": (rng.integers(0, 2, 200), rng.normal(size=200))}, n_boot=2),
        plots.codebook_usage({"jets": [0.5, 0.25]}),
    ]
    for fig in figs:
        text = _texts(fig)
        assert "Pythia 8 + parametric detector emulation" in text
        assert "ATLAS" not in text and "Simulation" not in text and "Internal" not in text
    assert "\u221as = 13.6 TeV" in _texts(figs[0])


def test_distributions_compare_original_with_decoded():
    rng = np.random.default_rng(3)
    fig = plots.distributions(rng.normal(50, 10, 500), rng.normal(50, 11, 500), "$p_T$", "GeV")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["Original", "Decoded"] and fig.axes[1].get_ylabel() == "Decoded / orig."
    assert "reco" not in _texts(fig).lower()


def test_residual_panels_span_the_core_and_count_what_falls_outside():
    rng = np.random.default_rng(4)
    core = rng.normal(0, 1.0, 9900)
    tails = np.r_[np.full(50, 40.0), np.full(50, -60.0)]  # 1% far outside
    fig = plots.residuals({"pT": np.r_[core, tails], "η": rng.normal(0, 0.01, 1000)}, {"pT": "GeV"})
    low, high = fig.axes[0].get_xlim()
    assert -6 < low < -4 and 4 < high < 6, "median ± 5 sigma68, not stretched by the tails"
    text = _texts(fig)
    assert "outside: 100 (1.00%)" in text and "pT: decoded \u2212 original [GeV]" in text


def test_a_grid_with_a_spare_slot_puts_the_label_there_and_a_full_grid_above_it():
    rng = np.random.default_rng(5)
    five = plots.residuals({f"f{i}": rng.normal(size=200) for i in range(5)})
    spare = five.axes[5]
    assert not spare.axison and "Pythia 8" in " ".join(t.get_text() for t in spare.texts)
    six = plots.residuals({f"f{i}": rng.normal(size=200) for i in range(6)})
    assert any("Pythia 8" in t.get_text() for t in six.texts) and all(ax.axison for ax in six.axes)
    assert style.atlas_label is style.study_label  # the former name writes the honest label


def test_long_legend_entries_never_run_into_the_sample_label():
    """The events ROC and the label-efficiency curves had legend entries written over the sample label."""
    rng = np.random.default_rng(3)
    long = "gradient-boosted trees, high-level variables, seed 1"
    labels = rng.integers(0, 2, 400)
    rocs = plots.roc_curves(
        {long: (labels, rng.normal(size=400) + labels), "m4l window": (labels, rng.normal(size=400))}
    )
    f = np.array([0.1, 0.3, 1.0])
    curves = {
        "tokens, from scratch": (f * 10 + 5, f * 10 + 4, f * 10 + 6),
        "tokens, fine-tuned from the next-token backbone": (f * 10 + 8, f * 10 + 7, f * 10 + 9),
    }
    for fig in (rocs, plots.label_efficiency(f, curves, ylabel="Light-jet rejection")):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            label = [t for t in ax.texts if "Pythia 8" in t.get_text() or "TeV" in t.get_text()]
            if legend is None or not label:
                continue
            box = legend.get_window_extent(renderer)
            assert not any(box.overlaps(t.get_window_extent(renderer)) for t in label), ax.get_ylabel()
