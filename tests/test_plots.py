"""Figures: one style, labelled axes with units, PNGs written where asked, small random inputs."""

from __future__ import annotations

import matplotlib
import mplhep
import numpy as np
import pytest
from matplotlib.figure import Figure

from treasure_lib import diagnostics, metrics, plots
from treasure_lib.plots import style
from treasure_lib.study import display

matplotlib.use("Agg")  # the plots never touch pyplot; Agg keeps any other test's pyplot headless


def axis_labels(fig) -> list[str]:
    return [label for ax in fig.axes for label in (ax.get_xlabel(), ax.get_ylabel()) if label]


def check(fig, tmp_path, name, units=()):
    """A Figure with labelled axes (naming `units`) whose PNG is written, non-empty, under `name`."""
    assert isinstance(fig, Figure)
    labels = " | ".join(axis_labels(fig))
    assert labels, "figure has no axis labels"
    for unit in units:
        assert f"[{unit}]" in labels, f"no [{unit}] in axis labels: {labels}"
    png = tmp_path / f"{name}.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_style_is_mplhep_atlas_and_applied_once():
    style.use()
    for key in ("xtick.direction", "ytick.minor.visible", "xaxis.labellocation"):
        assert matplotlib.rcParams[key] == mplhep.style.ATLAS[key]
    assert matplotlib.rcParams["font.sans-serif"][0] == mplhep.style.ATLAS["font.sans-serif"][0]
    assert matplotlib.rcParams["savefig.dpi"] == style.DPI and style.is_applied()
    before = matplotlib.rcParams["figure.figsize"]
    try:
        matplotlib.rcParams["figure.figsize"] = (3.0, 2.0)
        style.use()  # already applied: a user's later setting survives
        assert tuple(matplotlib.rcParams["figure.figsize"]) == (3.0, 2.0)
        style.use(force=True)
        assert tuple(matplotlib.rcParams["figure.figsize"]) == tuple(mplhep.style.ATLAS["figure.figsize"])
    finally:
        matplotlib.rcParams["figure.figsize"] = before


def test_roc_curves_with_bootstrap_bands_as_rejection_and_roc(rng, tmp_path):
    y = rng.integers(0, 2, 400)
    curves = {"tokens": (y, y + rng.normal(size=400), rng.uniform(0.5, 1.5, 400)), "raw": (y, rng.normal(size=400))}
    fig = plots.roc_curves(curves, n_boot=10, save_to=tmp_path, name="roc")
    check(fig, tmp_path, "roc")
    assert fig.axes[0].get_yscale() == "log" and "rejection" in fig.axes[0].get_ylabel()
    assert any("AUC" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    both = plots.roc_curves(curves, kind="both", n_boot=10, save_to=tmp_path, name="roc_both")
    check(both, tmp_path, "roc_both")
    assert "False positive rate" in both.axes[1].get_xlabel()


def test_roc_curves_accept_a_precomputed_band(tmp_path):
    grid = np.linspace(0, 1, 21)
    band = {"tpr_grid": grid, "fpr": grid**2, "fpr_low": 0.9 * grid**2, "fpr_high": 1.1 * grid**2}
    check(plots.roc_curves({"given": band}, kind="roc", save_to=tmp_path, name="band"), tmp_path, "band")


def test_flavour_rejection_vs_efficiency_has_a_panel_per_background(rng, tmp_path):
    labels = rng.integers(0, 4, 600)
    probs = rng.dirichlet(np.ones(4), 600)
    probs[np.arange(600), labels] += 1.0
    probs /= probs.sum(1, keepdims=True)
    fig = plots.rejection_vs_efficiency(
        {"tokens": (labels, probs), "raw": (labels, np.full((600, 4), 0.25))},
        efficiencies=np.linspace(0.6, 0.9, 7),
        save_to=tmp_path,
    )
    check(fig, tmp_path, "rejection_vs_efficiency")
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert any("$c$-jet rejection" in y for y in ylabels) and any("Light-jet rejection" in y for y in ylabels)
    assert all("efficiency" in ax.get_xlabel() for ax in fig.axes[len(fig.axes) // 2 :])


def test_performance_vs_jet_pt_in_gev(tmp_path, jet_collections):
    jet_pt = display.feature_label(jet_collections["jets"], "pt")  # the stored MeV shown in GeV
    fig = plots.performance_vs_variable(
        [20, 50, 100, 250],
        {"tokens": [10, 20, np.nan], "raw": [12, 25, 30]},
        {"tokens": [1, 2, 3], "raw": [1, 1, 1]},
        xlabel=jet_pt,
        logy=True,
        save_to=tmp_path,
    )
    check(fig, tmp_path, "performance_vs_variable", units=["GeV"])
    rows = [
        {"low": 20.0, "high": 50.0, "n": 9, "light_rejection_at_77": 10.0, "light_rejection_at_77_err": 1.0},
        {"low": 50.0, "high": 100.0, "n": 0, "error": "no b jets"},
    ]  # as metrics.in_bins writes them
    edges, values, errs = plots.from_bins(rows, "light_rejection_at_77")
    np.testing.assert_array_equal(edges, [20, 50, 100])
    assert values[0] == 10.0 and np.isnan(values[1]) and errs[0] == 1.0
    check(
        plots.performance_vs_variable(edges, values, errs, xlabel=jet_pt, save_to=tmp_path, name="from_bins"),
        tmp_path,
        "from_bins",
        units=["GeV"],
    )


def test_label_efficiency_uses_a_log_fraction_axis(tmp_path):
    f = np.array([0.01, 0.1, 1.0])
    fig = plots.label_efficiency(f, {"pretrained": (f * 0 + 0.8, f * 0 + 0.78, f * 0 + 0.82)}, save_to=tmp_path)
    check(fig, tmp_path, "label_efficiency")
    assert fig.axes[0].get_xscale() == "log"


def test_training_curves(tmp_path):
    epochs = np.arange(1, 6)
    fig = plots.training_curves({"train": (epochs, 1 / epochs), "val": (epochs, 1.2 / epochs)}, save_to=tmp_path)
    check(fig, tmp_path, "training_curves")


def test_reconstruction_figures_name_their_units(rng, tmp_path):
    orig = rng.exponential(10, 500) + 1.0
    reco = orig * rng.normal(1, 0.05, 500)
    fig = plots.distributions(orig, reco, "Track $p_T$", "GeV", 20, save_to=tmp_path, filename="pt")
    check(fig, tmp_path, "pt", units=["GeV"])
    assert fig.axes[0].get_legend() is not None and len(fig.axes) == 2  # overlay + ratio panel
    res = {
        "pt": reco - orig,
        "phi": rng.normal(0, 0.01, 500),
        "d0": rng.normal(0, 0.02, 500),
        "eta": rng.normal(size=500),
    }
    fig = plots.residuals(res, {"pt": "GeV", "phi": "rad", "d0": "mm"}, save_to=tmp_path)
    check(fig, tmp_path, "residuals", units=["GeV", "rad", "mm"])
    check(
        plots.correlation_2d(orig, reco, "Track $p_T$", "GeV", save_to=tmp_path, filename="corr"),
        tmp_path,
        "corr",
        units=["GeV"],
    )
    fig = plots.response_vs_pt(
        [1, 5, 20, 100],
        {"1 level": [0.2, 0.1, 0.05], "3 levels": [0.1, 0.05, 0.02]},
        {"1 level": [0.01, 0.0, -0.01], "3 levels": [0.0, 0.0, 0.0]},
        xlabel="Track $p_{T}$ [GeV]",
        logx=True,
        save_to=tmp_path,
    )
    check(fig, tmp_path, "response_vs_pt", units=["GeV"])


def test_codebook_figures_from_health_reports(rng, tmp_path):
    health = {
        "tracks": diagnostics.codebook_health(rng.integers(0, 40, (300, 3)), 64),
        "electrons": diagnostics.codebook_health(rng.integers(0, 5, (30, 2)), 16),
    }
    fig = plots.codebook_usage(health, save_to=tmp_path)
    check(fig, tmp_path, "codebook_usage")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["tracks", "electrons"]
    check(plots.codebook_usage({"jets": [0.5, 0.25]}, save_to=tmp_path, name="usage_list"), tmp_path, "usage_list")
    fig = plots.token_frequency(health, save_to=tmp_path)
    check(fig, tmp_path, "token_frequency")
    assert fig.axes[0].get_yscale() == "log" and "rank" in fig.axes[0].get_xlabel()
    assert len(fig.axes[0].get_legend().get_texts()) == 5  # 3 track levels + 2 electron levels


def test_leakage_table_renders_as_a_figure(tmp_path):
    table = diagnostics.leakage_table({"multiplicity": (0.7, 0.01), "tokens": (0.9, 0.004)})
    fig = plots.table_figure(
        table,
        ["row", "name", "auc_text"],
        "Leakage checks",
        headers=["#", "Input", "AUC"],
        save_to=tmp_path,
        name="leakage",
    )
    png = tmp_path / "leakage.png"
    assert isinstance(fig, Figure) and png.stat().st_size > 1000
    texts = {cell.get_text().get_text() for cell in fig.axes[0].tables[0].get_celld().values()}
    # the book's one rule (`formatting.fmt`): the uncertainty to two significant figures, the value to match
    assert {"Input", "Full tokens", "0.9000 ± 0.0040", "\u2014"} <= texts


def test_nothing_is_saved_without_save_to(tmp_path):
    fig = plots.training_curves({"train": ([1, 2], [1.0, 0.5])})
    assert isinstance(fig, Figure) and not any(tmp_path.iterdir())


def test_chapter_figures_reach_the_notebook_as_png_pictures(monkeypatch, rng):
    """A pyplot-free Figure displays as its repr only; chapters (show_when_made) must emit image/png outputs."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    style.show_when_made(True)
    try:
        plots.distributions(rng.normal(50, 10, 500), rng.normal(50, 11, 500), "$p_T$", "GeV")
    finally:
        style.show_when_made(False)
    assert len(shown) == 1, "each figure is shown once, as it is made"
    assert isinstance(shown[0], IPython.display.Image) and shown[0].format == "png"
    assert shown[0].data[:8] == b"\x89PNG\r\n\x1a\n" and len(shown[0].data) > 1000


def test_a_model_has_one_colour_on_every_figure(rng, tmp_path):
    """Raw features, decoded tokens and each token model keep their colour across ROC, rejection, pT and
    label-efficiency figures, whatever order a chapter passes them in."""
    y = rng.integers(0, 2, 400)
    score = y + rng.normal(0, 1, 400)
    roc = plots.roc_curves({"tokens, fine-tuned": (y, score), "raw features": (y, score + 0.1)}, n_boot=5)
    pt = plots.performance_vs_variable(
        [20, 50, 100], {"raw features": [3, 4], "tokens, fine-tuned": [2, 3]}, xlabel="Jet $p_{T}$ [GeV]"
    )
    eff = plots.label_efficiency([0.1, 1.0], {"raw features": ([0.7, 0.8], [0.6, 0.7], [0.8, 0.9])})
    roc_colours = {
        line.get_label().split(" (")[0]: matplotlib.colors.to_hex(line.get_color()) for line in roc.axes[0].get_lines()
    }
    assert roc_colours["raw features"] == "#000000" and roc_colours["tokens, fine-tuned"] == "#d55e00"
    pt_colours = {c.get_label(): matplotlib.colors.to_hex(c.lines[0].get_color()) for c in pt.axes[0].containers}
    assert pt_colours == {"raw features": "#000000", "tokens, fine-tuned": "#d55e00"}
    assert matplotlib.colors.to_hex(eff.axes[0].get_lines()[0].get_color()) == "#000000"
    assert style.colour("tokens, fine-tuned (10% of labels)") == style.colour("tokens, fine-tuned")
    assert style.colour("tested on ttbar", 0) != style.colour("tested on Z'", 1), "other labels still differ"


def test_no_ratio_panel_for_a_background_of_a_handful_of_jets(rng):
    n = 2000
    labels = np.where(rng.random(n) < 0.02, 3, rng.integers(0, 3, n))  # ~40 tau jets, hundreds of the others
    probs = rng.dirichlet(np.ones(4), n)
    probs[np.arange(n), labels] += 1.0
    probs /= probs.sum(1, keepdims=True)
    curves = {
        m: metrics.flavour_rejection_curves(labels, probs * s, efficiencies=np.linspace(0.6, 0.9, 7))
        for m, s in (("raw features", 1.0), ("tokens, from scratch", 0.9))
    }
    assert 20 < curves["raw features"]["n_background"]["tau"] < 100 < curves["raw features"]["n_background"]["light"]
    fig = plots.rejection_vs_efficiency(curves, backgrounds=["light", "tau"], efficiencies=np.linspace(0.6, 0.9, 7))
    light_ratio, tau_ratio = fig.axes[2], fig.axes[3]  # row 2 of the 2 x 2 grid
    assert len(light_ratio.get_lines()) == 2 and not tau_ratio.get_lines()
    assert any("no ratio" in t.get_text() for t in tau_ratio.texts)


def test_on_a_log_axis_lower_error_bars_stop_above_zero_so_the_range_fits_the_data():
    """Light rejection per pT bin with an error as large as the value: the lower bar stops at a tenth of it
    instead of dragging the log axis down to 1e-1 or below."""
    fig = plots.performance_vs_variable(
        [20, 50, 100],
        {"raw features": [80.0, 20.0]},
        {"raw features": [90.0, 5.0]},
        xlabel="Jet $p_{T}$ [GeV]",
        logy=True,
    )
    ax = fig.axes[0]
    low = ax.get_ylim()[0]
    assert low >= 1.0, f"the axis reaches {low}: an error bar crossed zero"
    segments = ax.containers[0].lines[2][1].get_segments()  # the y error bars
    assert min(seg[:, 1].min() for seg in segments) == pytest.approx(8.0), "80 - 90 stops at 80 / 10"


def test_every_model_name_has_its_colour():
    """A renamed model in study.names would otherwise fall back silently to a spare colour."""
    from treasure_lib.study import names

    assert set(style.MODEL_COLOURS) == set(names.MODELS.values())


def test_a_legend_entry_written_upper_case_keeps_its_models_colour_and_no_two_scores_share_one():
    """Chapter 08's ROC legend writes 'Masked-token pseudo-likelihood' (`first_upper`): it must keep the model's
    colour, not fall to a spare one that another curve of the same figure already has."""
    from treasure_lib.study import names

    scores = ["masked", "masked_per_object", "next_token", "next_token_per_object", "reconstruction", "autoencoder"]
    scores += ["supervised", "objects", "jet_pt"]
    shown = [names.first_upper(names.model(s)) for s in scores]
    assert [style.colour(label, k) for k, label in enumerate(shown)] == [
        style.MODEL_COLOURS[names.model(s)] for s in scores
    ]
    assert len({style.colour(label) for label in shown}) == len(shown)
