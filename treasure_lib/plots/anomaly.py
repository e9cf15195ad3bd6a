"""Figures of the anomaly-detection chapter: an anomaly score's distributions (standard-model test sample and each
signal), signal against standard-model efficiency, and generated against test samples variable by variable.

    plots.anomaly.score_distributions({"SM test": s_sm, "Dark shower": s_hv}, xlabel="Mean token surprise")
    plots.anomaly.roc_curves({"Dark shower": metrics.roc_points(s_sm, s_hv)})
    plots.anomaly.generated_vs_test({"test": t, "generated": g, "reference": r}, metrics.two_sample.compare(g, t, r))

The label-efficiency curve of several backbones is `plots.label_efficiency(*plots.from_points(points))`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..formatting import fmt
from ..metrics.roc import fpr_at_tpr
from ..metrics.sample_variables import describe
from . import style

SM_TEST = "SM test"  # the standard-model test sample's entry in `score_distributions`
SM_COLOUR = "#BBBBBB"  # the standard-model test sample, filled, on every figure of the chapter
GENERATED_COLOUR = "#0072B2"
TAIL = 0.001  # common bins span the 0.1-99.9% quantiles of every sample (overflow into the edge bins)
ROC_RANGE = (1e-3, 1.0)  # efficiencies shown on the log-log ROC
ROC_MARKS = {0.01: "o", 0.001: "s"}  # SM efficiencies marked on every curve: 1% and 0.1%
SAMPLE_LABELS = {"test": "Test (SM)", "generated": "Generated", "reference": "Independent SM sample"}


def common_edges(samples: Sequence[np.ndarray], bins: int = 40, tail: float = TAIL) -> np.ndarray:
    """`bins` equal bins from the lowest `tail` quantile to the highest 1 - `tail` quantile of the samples; integer
    samples (multiplicities) of a range up to 4 x `bins` get one bin per integer."""
    flat = (np.asarray(s, dtype=np.float64).reshape(-1) for s in samples)
    finite = [v for v in (f[np.isfinite(f)] for f in flat) if v.size]
    if not finite:
        return np.linspace(0.0, 1.0, bins + 1)
    low = min(float(np.quantile(v, tail)) for v in finite)
    high = max(float(np.quantile(v, 1.0 - tail)) for v in finite)
    if all(np.all(v == np.rint(v)) for v in finite) and high - low <= 4 * bins:
        return np.arange(np.floor(low) - 0.5, np.ceil(high) + 1.5)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def _fractions(values, edges, weights=None) -> np.ndarray:
    """Fraction of the (weighted) entries in each bin, entries outside the range counted in the edge bins."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = np.isfinite(v)
    counts, _ = np.histogram(np.clip(v[ok], edges[0], edges[-1]), edges, weights=None if w is None else w[ok])
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


def _room(top: float, entries: int, per_entry: float) -> float:
    """`style.headroom`'s factor that keeps the data below a legend of `entries` lines hanging from `top` (axes
    fraction, each line `per_entry` tall)."""
    return 1.0 / max(top - per_entry * entries - 0.04, 0.3)


def _log_floor(ax, histograms) -> None:
    """The bottom of a log y axis: half the smallest non-empty bin (empty bins would pull it to nothing)."""
    positive = [h[h > 0] for h in histograms]
    smallest = min((float(p.min()) for p in positive if p.size), default=1e-3)
    ax.set_ylim(bottom=0.5 * smallest)


def score_distributions(
    scores: Mapping[str, np.ndarray],
    weights: Mapping[str, np.ndarray] | None = None,
    xlabel: str = "Anomaly score",
    *,
    sm: str = SM_TEST,
    bins: int = 40,
    logy: bool = True,
    ylabel: str = "Fraction of entries",
    save_to=None,
    name: str = "score_distributions",
):
    """Normalised histograms of an anomaly score: the standard-model test sample (entry `sm`, filled) and each
    signal (steps), on bins common to all (`common_edges`); `weights` {label: per-entry weights} where given."""
    if sm not in scores:
        raise ValueError(f"score_distributions needs the standard-model entry '{sm}', got {list(scores)}")
    weights = weights or {}
    edges = common_edges(list(scores.values()), bins)
    fig, ax = style.figure()
    drawn = []
    for k, (label, values) in enumerate(scores.items()):
        h = _fractions(values, edges, weights.get(label))
        drawn.append(h)
        if label == sm:
            ax.stairs(h, edges, fill=True, color=SM_COLOUR, label=label, zorder=1)
        else:
            ax.stairs(h, edges, color=style.colour(label, k), linewidth=2, label=label, zorder=2)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
        _log_floor(ax, drawn)
    style.headroom(ax, _room(0.84, len(scores), 0.06), log=logy)  # the legend hangs below the label
    style.study_label(ax)
    style.legend_below_label(ax, side="left")
    return style.finish(fig, save_to, name)


def roc_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    xlabel: str = "SM efficiency",
    ylabel: str = "Signal efficiency",
    save_to=None,
    name: str = "anomaly_roc",
):
    """Signal efficiency against standard-model efficiency (log-log, 1e-3 to 1), one curve per signal
    {label: (sm_eff, signal_eff)} as `metrics.roc_points` returns, with the random-guess diagonal and markers where
    1% and 0.1% of the standard model pass."""
    low, high = ROC_RANGE
    fig, ax = style.figure()
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="Random")
    for k, (label, (sm_eff, signal_eff)) in enumerate(curves.items()):
        x, y = np.asarray(sm_eff, dtype=np.float64), np.asarray(signal_eff, dtype=np.float64)
        colour = style.colour(label, k)
        shown = (x > 0) & (y > 0)
        ax.plot(x[shown], y[shown], color=colour, linewidth=2, label=label)
        at = np.array(list(ROC_MARKS))
        reached = x[x > 0].min() if (x > 0).any() else np.inf  # the smallest SM efficiency the sample resolves
        for where, mark, value in zip(at, ROC_MARKS.values(), fpr_at_tpr(y, x, at)):  # signal eff. where SM reaches
            if where >= reached and np.isfinite(value) and value >= low:  # no marker below what the sample resolves
                ax.plot([where], [value], marker=mark, color=colour)
    for sm_eff, mark in ROC_MARKS.items():
        ax.plot([], [], marker=mark, linestyle="none", color="black", label=f"{100 * sm_eff:g}% SM efficiency")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    style.headroom(ax, 1.45, log=True)  # the label above efficiency 1, where no curve goes
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.study_label(ax)
    ax.legend(loc="lower right")  # below the diagonal: empty for every signal the score sees
    return style.finish(fig, save_to, name)


def _distance_text(row: Mapping | None, floor: bool) -> str:
    """', W1/σ = 0.012' for the generated sample; ', floor 0.010 ± 0.002' for the reference."""
    if row is None:
        return ""
    if floor:
        value, spread = row.get("floor_w1_over_std", np.nan), row.get("floor_w1_over_std_spread", np.nan)
        return f", W1/\u03c3 floor {fmt(value, spread)}" if np.isfinite(value) else ""
    return f", W1/\u03c3 = {fmt(row['w1_over_std'])}"


def generated_vs_test(
    variables: Mapping[str, Mapping[str, np.ndarray]],
    distances: Sequence[Mapping] = (),
    *,
    labels: Mapping[str, str] | None = None,
    bins: int = 40,
    ncols: int = 3,
    save_to=None,
    name: str = "generated_vs_test",
):
    """One panel per variable: the test sample (filled), the generated one (step) and, when given, an independent
    standard-model sample (dashed), each normalised to unit area on common bins.

    `variables` {"test": {variable: array}, "generated": {...}[, "reference": {...}]} as `metrics.sample_variables`
    returns (NaN entries are no object); `distances` the rows of `metrics.two_sample.compare`, whose W1/σ (and the
    floor) the panels' legends quote. Panels follow the order of `distances`, else of the test variables; axes are
    named and united by `sample_variables.describe`. Log y where a histogram spans more than two decades."""
    for needed in ("test", "generated"):
        if needed not in variables:
            raise ValueError(f"generated_vs_test needs the samples 'test' and 'generated', got {list(variables)}")
    labels = {**SAMPLE_LABELS, **(labels or {})}
    by_variable = {r["variable"]: r for r in distances}
    names = list(by_variable) or list(variables["test"])
    ncols = max(1, min(ncols, len(names)))
    nrows = -(-len(names) // ncols)
    fig, axes = style.figure(nrows, ncols, squeeze=False, gridspec_kw={"hspace": 0.45, "wspace": 0.35})
    styles = {
        "test": {"fill": True, "color": SM_COLOUR},
        "generated": {"color": GENERATED_COLOUR, "linewidth": 2},
        "reference": {"color": "black", "linewidth": 1.5, "linestyle": "--"},
    }
    for ax, v in zip(axes.flat, names):
        samples = {s: variables[s][v] for s in ("test", "generated", "reference") if s in variables}
        edges = common_edges(list(samples.values()), bins)
        row = by_variable.get(v)
        drawn = []
        for s, values in samples.items():
            h = _fractions(values, edges)
            drawn.append(h)
            ax.stairs(h, edges, label=labels[s] + _distance_text(row, s == "reference") * (s != "test"), **styles[s])
        positive = np.concatenate([h[h > 0] for h in drawn])
        logy = positive.size > 0 and positive.max() > 100 * positive.min()
        if logy:
            ax.set_yscale("log")
            _log_floor(ax, drawn)
        described = describe(v)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(style.axis_label(described.name, described.unit), fontsize="medium")
        ax.set_ylabel(f"Fraction of {described.entries}", fontsize="medium")
        style.headroom(ax, _room(0.97, len(samples), 0.07), log=logy)
        ax.legend(loc="upper right", fontsize="x-small")
    style.grid_label(fig, axes, len(names))
    return style.finish(fig, save_to, name)
