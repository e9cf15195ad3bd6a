"""Classifier performance figures: ROC / rejection curves with bootstrap bands, flavour rejections,
performance in bins of a variable, label efficiency and training curves.

    plots.roc_curves({"tokens": (y, score, w), "raw": (y, raw_score, w)}, save_to=run / "figures")
    plots.rejection_vs_efficiency({"tokens": (labels, probs, w)})          # b-tagging: c and light

Curves given as arrays are evaluated here through `treasure_lib.metrics`; precomputed results
(dicts as `metrics.roc_band` returns) are plotted as they are.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np

from ..formatting import fmt
from ..metrics.flavour import CURVE_EFFICIENCIES, flavour_rejection_curves
from . import style

FLAVOUR_LABELS = {"b": "$b$-jet", "c": "$c$-jet", "light": "Light-jet", "tau": "$\\tau$-jet"}
ROC_GRID = np.linspace(0.0, 1.0, 101)  # signal efficiencies where the bootstrap band is evaluated
MIN_EFFICIENCY = 0.1  # rejection curves start here (below it 1/FPR is a handful of events)
LOG_FLOOR = 0.1  # on a log axis a lower error bar stops at this fraction of the value (it reaches zero or below)
MIN_RATIO_JETS = 100  # fewer background jets than this: a ratio of rejections is noise, no ratio panel


def _band(curve, n_boot: int, seed: int, grid) -> dict:
    """roc_band dict (+ auc when computed) from (y, score[, weight]) or a precomputed dict."""
    if isinstance(curve, Mapping):
        return dict(curve)
    from .. import metrics

    y, score, weight = (tuple(curve) + (None,))[:3]
    band = metrics.roc_band(y, score, weight, n_boot=n_boot, seed=seed, grid=grid)
    return {**band, "auc": metrics.auc(y, score, weight)}


def _inverse(x):
    """1 / x where x > 0, else NaN (nothing passes: an infinite rejection is not drawn)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, 1.0 / x, np.nan)


def _finite(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isfinite(x) & (x > 0), x, np.nan)


def _wrapped(text: str, width: int = 24) -> str:
    """A ratio panel's label on short lines: a long model name would run past the panel's height."""
    return "\n".join(textwrap.wrap(text, width))


def _ratio(x, reference):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(x) / reference


def _ratio_limits(ax, curves) -> None:
    """y range of a ratio panel from its central curves (bands may run wild where statistics vanish)."""
    values = np.concatenate([np.ravel(c) for c in curves]) if curves else np.zeros(0)
    values = values[np.isfinite(values)]
    if values.size:
        low, high = values.min(), values.max()
        pad = max(0.1 * (high - low), 0.05)
        ax.set_ylim(max(low - pad, 0.0), high + pad)


def roc_curves(
    curves: Mapping,
    *,
    kind: str = "rejection",
    n_boot: int = 100,
    seed: int = 0,
    grid=ROC_GRID,
    min_efficiency: float = MIN_EFFICIENCY,
    signal: str = "Signal",
    background: str = "background",
    save_to=None,
    name: str = "roc",
):
    """ROC curves with 68% bootstrap bands (`metrics.roc_band`), one per entry of `curves`.

    `curves` {label: (y, score) | (y, score, weight) | dict(tpr_grid, fpr, fpr_low, fpr_high[, auc])};
    signal is y == 1. kind "rejection": background rejection 1/FPR (log y) vs signal efficiency, with
    a ratio panel to the first curve when there are several, from `min_efficiency` on; "roc": FPR vs
    TPR (the classic ROC, with the random-guess diagonal); "both": the two side by side. `grid` is
    the signal-efficiency grid of the bands. The legend quotes the AUC when it is known.
    """
    if kind not in ("rejection", "roc", "both"):
        raise ValueError(f"kind must be 'rejection', 'roc' or 'both', got {kind!r}")
    bands = {label: _band(c, n_boot, seed, grid) for label, c in curves.items()}
    if kind == "rejection" and len(bands) > 1:
        fig, (ax_rej, ax_ratio) = style.ratio_figure()
        ax_roc = None
    elif kind == "both":
        fig, (ax_rej, ax_roc) = style.figure(1, 2)
        ax_ratio = None
    else:
        fig, ax = style.figure()
        ax_rej, ax_roc, ax_ratio = (ax, None, None) if kind == "rejection" else (None, ax, None)
    reference, ratios = None, []
    for k, (label, band) in enumerate(bands.items()):
        text = f"{label} (AUC = {fmt(band['auc'])})" if "auc" in band else label
        colour = style.colour(label, k)
        tpr = np.asarray(band["tpr_grid"])
        if ax_rej is not None:
            shown = tpr >= min_efficiency
            x = tpr[shown]
            rej, low, high = (_inverse(np.asarray(band[k])[shown]) for k in ("fpr", "fpr_high", "fpr_low"))
            (line,) = ax_rej.plot(x, rej, label=text, color=colour)
            ax_rej.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
            if ax_ratio is not None:
                reference = rej if reference is None else reference
                ratios.append(_ratio(rej, reference))
                ax_ratio.plot(x, ratios[-1], color=line.get_color())
                ax_ratio.fill_between(
                    x, _ratio(low, reference), _ratio(high, reference), color=line.get_color(), alpha=0.25, linewidth=0
                )
        if kind != "rejection":
            (line,) = ax_roc.plot(band["fpr"], tpr, label=text, color=colour)
            ax_roc.fill_betweenx(
                tpr, band["fpr_low"], band["fpr_high"], color=line.get_color(), alpha=0.25, linewidth=0
            )
    if ax_rej is not None:
        ax_rej.set_yscale("log")
        ax_rej.set_ylabel(f"{style.first_upper(background)} rejection")
        (ax_ratio or ax_rej).set_xlabel(f"{signal} efficiency")
        if ax_ratio is not None:
            ax_ratio.set_ylabel(_wrapped(f"Ratio to {next(iter(bands))}"), fontsize="small")
            _ratio_limits(ax_ratio, ratios)
        ax_rej.set_xlim(min_efficiency, 1.0)
        style.headroom(ax_rej, 1.4 + 0.12 * len(bands), log=True)  # the label and one legend line per curve
        style.atlas_label(ax_rej)
        style.legend_below_label(ax_rej, fontsize="small")  # rejection falls with efficiency: upper right is free
    if ax_roc is not None:
        ax_roc.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="Random")
        ax_roc.set_xlabel(f"False positive rate ({background} efficiency)")
        ax_roc.set_ylabel(f"True positive rate ({signal.lower()} efficiency)")
        ax_roc.set_xlim(0, 1)
        ax_roc.set_ylim(0, 1.3)
        style.atlas_label(ax_roc)
        ax_roc.legend(loc="lower right")
    return style.finish(fig, save_to, name)


def rejection_vs_efficiency(
    curves: Mapping,
    *,
    backgrounds=None,
    efficiencies=CURVE_EFFICIENCIES,
    f_c: float = 0.2,
    signal: str = "$b$-jet",
    min_ratio_jets: float = MIN_RATIO_JETS,
    save_to=None,
    name: str = "rejection_vs_efficiency",
):
    """Flavour-tagging rejection vs b-jet efficiency, one column per background flavour, with
    binomial error bands and a ratio panel to the first model.

    `curves` {model: (labels, probs[, weight]) | dict(efficiency, rejection {flavour: array},
    rejection_err {flavour: array})}; arrays go through `metrics.flavour_rejection_curves`.
    `backgrounds` defaults to the flavours of the first model (c, light, tau order). A column whose background
    has fewer than `min_ratio_jets` (effective) test jets (`n_background` of a curve) gets no ratio panel.
    """
    data = {
        m: dict(c)
        if isinstance(c, Mapping)
        else flavour_rejection_curves(*(tuple(c) + (None,))[:3], efficiencies=efficiencies, f_c=f_c)
        for m, c in curves.items()
    }
    first = next(iter(data.values()))
    backgrounds = list(backgrounds or first["rejection"])
    fig, axes = style.figure(
        2,
        len(backgrounds),
        figsize=style.panel_size(len(backgrounds)),
        squeeze=False,
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06},
    )
    for j, flavour in enumerate(backgrounds):
        ax, ax_ratio = axes[0, j], axes[1, j]
        reference, ratios = None, []
        thin = min((d.get("n_background", {}).get(flavour, np.inf) for d in data.values()), default=np.inf)
        for k, (model, d) in enumerate(data.items()):
            if flavour not in d["rejection"]:
                continue
            x, rej = np.asarray(d["efficiency"]), _finite(d["rejection"][flavour])
            err = np.nan_to_num(np.asarray(d.get("rejection_err", {}).get(flavour, np.zeros_like(rej)), dtype=float))
            low, high = _finite(rej - err), rej + err
            (line,) = ax.plot(x, rej, label=model, color=style.colour(model, k))
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
            if thin < min_ratio_jets:  # a ratio of a handful of jets is noise: say so instead of drawing it
                continue
            reference = rej if reference is None else reference
            ratios.append(_ratio(rej, reference))
            ax_ratio.plot(x, ratios[-1], color=line.get_color())
            ax_ratio.fill_between(
                x, _ratio(low, reference), _ratio(high, reference), color=line.get_color(), alpha=0.25, linewidth=0
            )
        ax.set_yscale("log")
        ax.set_ylabel(f"{FLAVOUR_LABELS.get(flavour, flavour)} rejection")
        ax.tick_params(labelbottom=False)
        ax_ratio.set_xlabel(f"{signal} efficiency")
        ax_ratio.set_ylabel(_wrapped(f"Ratio to {next(iter(data))}"), fontsize="small")
        ax_ratio.set_xlim(float(np.min(first["efficiency"])), float(np.max(first["efficiency"])))
        _ratio_limits(ax_ratio, ratios)
        if thin < min_ratio_jets:
            ax_ratio.text(
                0.5,
                0.5,
                f"no ratio: {thin:.0f} {FLAVOUR_LABELS.get(flavour, flavour)}s in the test set",
                transform=ax_ratio.transAxes,
                ha="center",
                va="center",
                fontsize="small",
            )
        style.headroom(ax, 1.4, log=True)
        style.atlas_label(ax, extra=f"$f_c$ = {f_c:g}")
        ax.legend(loc="upper right")
    return style.finish(fig, save_to, name)


def from_bins(rows, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, values, errs) of `key` (errors from `<key>_err`, NaN where absent) from the rows of
    `metrics.in_bins`, ready for `performance_vs_variable`; bins must be contiguous."""
    rows = list(rows)
    edges = np.array([r["low"] for r in rows] + [rows[-1]["high"]], dtype=np.float64)
    values = np.array([r.get(key, np.nan) for r in rows], dtype=np.float64)
    errs = np.array([r.get(f"{key}_err", np.nan) for r in rows], dtype=np.float64)
    return edges, values, errs


def performance_vs_variable(
    bins,
    values,
    errs=None,
    labels=None,
    *,
    xlabel: str,
    ylabel: str = "Light-jet rejection",
    logy: bool = False,
    save_to=None,
    name: str = "performance_vs_variable",
):
    """A metric in bins of a variable (e.g. light rejection at 77% vs jet pT): markers at bin
    centres with the bin width as x error and `errs` as y error.

    `bins` edges [n + 1] in the units of `xlabel` (a stored feature's label: `study.display.feature_label`,
    e.g. 'Jet $p_{T}$ [GeV]'); `values` one array [n], a list, or {label: array};
    `errs` the same shape or None; NaN values (a bin without jets) are left out. From the rows of
    `metrics.in_bins`: `performance_vs_variable(*from_bins(rows, "light_rejection_at_77"), ...)`.
    """
    edges = np.asarray(bins, dtype=np.float64)
    series = style.as_series(values, labels)
    errors = style.as_series(errs, list(series)) if errs is not None else {k: None for k in series}
    centres, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    fig, ax = style.figure()
    for k, (label, v) in enumerate(series.items()):
        v = np.asarray(v, dtype=np.float64)
        if v.size != centres.size:
            raise ValueError(f"series '{label}' has {v.size} values for {centres.size} bins")
        ok = np.isfinite(v)
        e = errors[label]
        yerr = None if e is None else np.abs(np.asarray(e, dtype=np.float64)[ok])
        if yerr is not None and logy:  # a symmetric error below zero has no place on a log axis: the lower bar
            yerr = np.vstack([np.minimum(yerr, (1.0 - LOG_FLOOR) * v[ok]), yerr])  # stops at LOG_FLOOR x the value
        ax.errorbar(
            centres[ok],
            v[ok],
            xerr=half[ok],
            yerr=yerr,
            fmt="o",
            markersize=5,
            capsize=0,
            label=label or None,
            color=style.colour(label, k),
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    style.headroom(ax, 1.4, log=logy)
    style.atlas_label(ax)
    if any(series):
        ax.legend(loc="upper right")
    return style.finish(fig, save_to, name)


def from_points(points: Mapping) -> tuple[np.ndarray, dict]:
    """(fractions, results) for `label_efficiency` from {model: [(fraction, mean, err), ...]} (e.g. one line per
    pretrained backbone): the fractions of all models together, each model's band mean ± err, NaN (a gap in its
    line) at a fraction it was not trained on."""
    fractions = np.array(sorted({float(f) for pts in points.values() for f, _, _ in pts}), dtype=np.float64)
    results = {}
    for model, pts in points.items():
        mean, err = np.full(fractions.size, np.nan), np.full(fractions.size, np.nan)
        for f, m, e in pts:
            k = int(np.searchsorted(fractions, float(f)))
            mean[k], err[k] = m, e
        results[model] = (mean, mean - err, mean + err)
    return fractions, results


def label_efficiency(
    fractions,
    results: Mapping,
    *,
    xlabel: str = "Fraction of labelled training data",
    ylabel: str = "AUC",
    save_to=None,
    name: str = "label_efficiency",
):
    """A metric vs the fraction of labels used (log x): one line per model with its interval band.

    `results` {model: (mean [n], low [n], high [n])} on the points `fractions` [n]; from points with errors per
    model: `label_efficiency(*from_points(points))`.
    """
    x = np.asarray(fractions, dtype=np.float64)
    fig, ax = style.figure()
    for k, (model, (mean, low, high)) in enumerate(results.items()):
        (line,) = ax.plot(x, mean, marker="o", markersize=5, label=model, color=style.colour(model, k))
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(x))  # one readable tick per fraction (log minor ticks would collide)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{v:.0%}" for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.headroom(ax, 1.35)
    style.atlas_label(ax)
    style.legend_below_label(ax, side="left")  # the curves rise with the labels: the upper left is free
    return style.finish(fig, save_to, name)


def training_curves(
    history: Mapping,
    *,
    xlabel: str = "Epoch",
    ylabel: str = "Loss",
    logy: bool = False,
    references: Mapping[str, float] | None = None,
    save_to=None,
    name: str = "training_curves",
):
    """Training history: `history` {name: (epochs, values)}, e.g. {"train loss": ..., "val loss": ...};
    `references` {label: value} draws dashed horizontal lines (a chance level, a prior entropy)."""
    fig, ax = style.figure()
    for label, (epochs, values) in history.items():
        ax.plot(np.asarray(epochs) + 1, values, marker="o", markersize=3, label=label)
    for label, value in (references or {}).items():
        if np.isfinite(value):
            ax.axhline(value, linestyle="--", color="grey", linewidth=1.2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    style.headroom(ax, 1.3, log=logy)
    style.atlas_label(ax, com=None)
    ax.legend(loc="upper right")
    return style.finish(fig, save_to, name)
