"""What tokens keep, as figures: original vs decoded feature distributions, residuals, 2-d correlation,
and the pT response (bias and resolution in bins of pT).

"Decoded" means tokens turned back into features by the card's decoder (detector reconstruction is
something else). Inputs are 1-d arrays of matched objects (valid ones only) in the units named on the
axes; the library stores MeV and mm, so divide energies by 1e3 for GeV axes.

    plots.distributions(orig_pt / 1e3, decoded_pt / 1e3, "Track $p_T$", "GeV", bins=np.linspace(0, 50, 51))
    plots.residuals({"pT": d_pt / 1e3, "d0": d_d0}, units={"pT": "GeV", "d0": "mm"})
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.colors import LogNorm

from ..metrics.reconstruction import sigma68
from . import style

ORIGINAL, DECODED = "Original", "Decoded"
RECONSTRUCTED = DECODED  # the former name of the second legend entry
CORE_SIGMAS = 5.0  # residual panels span the median ± 5 sigma68: the core, with what falls outside counted


def _edges(values, bins) -> np.ndarray:
    """Bin edges: given edges, or `bins` equal bins over the 0.1-99.9% range of `values`."""
    if np.ndim(bins):
        return np.asarray(bins, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    low, high = np.percentile(v, [0.1, 99.9]) if v.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, int(bins) + 1)


def distributions(
    orig,
    decoded,
    name: str,
    unit: str | None,
    bins=50,
    *,
    weights=None,
    logy: bool = False,
    labels=(ORIGINAL, DECODED),
    entries: str = "Objects",
    save_to=None,
    filename: str | None = None,
):
    """Histograms of a feature before and after tokenization (encode -> decode), with a decoded / original
    ratio panel (statistical errors of the decoded counts). x axis: 'name [unit]'.

    `bins` a number of bins (over the 0.1-99.9% range of the original values) or the edges.
    Saved as `<save_to>/<filename>.png` (default: distribution_<name with spaces as _>).
    """
    orig, decoded = np.asarray(orig, dtype=np.float64), np.asarray(decoded, dtype=np.float64)
    edges = _edges(orig, bins)
    w_orig = None if weights is None else np.asarray(weights, dtype=np.float64)
    h_orig, _ = np.histogram(orig, edges, weights=w_orig)
    h_dec, _ = np.histogram(decoded, edges, weights=w_orig)
    var_dec, _ = np.histogram(decoded, edges, weights=None if w_orig is None else w_orig**2)
    fig, (ax, ax_ratio) = style.ratio_figure()
    ax.stairs(h_orig, edges, label=labels[0], linewidth=2)
    ax.stairs(h_dec, edges, label=labels[1], linewidth=2, linestyle="--")
    ax.set_ylabel(entries if weights is None else f"Weighted {entries.lower()}")  # "Events" for event quantities
    if logy:
        ax.set_yscale("log")
    style.headroom(ax, 1.45, log=logy)
    style.study_label(ax)
    ax.legend(loc="upper right")
    centres = 0.5 * (edges[1:] + edges[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(h_orig > 0, h_dec / h_orig, np.nan)
        err = np.where(h_orig > 0, np.sqrt(var_dec) / h_orig, np.nan)
    ax_ratio.axhline(1.0, color="grey", linewidth=1)
    ax_ratio.errorbar(centres, ratio, yerr=err, fmt="o", markersize=3, color="black")
    ax_ratio.set_ylim(0.5, 1.5)
    ax_ratio.set_ylabel("Decoded / orig.", fontsize="medium")
    ax_ratio.set_xlabel(style.axis_label(name, unit))
    return style.finish(fig, save_to, filename or f"distribution_{_slug(name)}")


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() else "_" for c in name.replace("$", ""))
    return "_".join(part for part in keep.split("_") if part).lower() or "feature"


def core_edges(values, bins=50, core: float | None = CORE_SIGMAS) -> np.ndarray:
    """Bin edges of a residual panel: given edges, or `bins` equal bins over median ± `core` x sigma68 (the core,
    whatever the tails), or over the 0.1-99.9% range when sigma68 is 0 (discrete features) or `core` is None."""
    if np.ndim(bins) or not core:
        return _edges(values, bins)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    width = sigma68(v) if v.size else 0.0
    if not np.isfinite(width) or width <= 0:
        return _edges(v, bins)
    centre = float(np.median(v))
    return np.linspace(centre - core * width, centre + core * width, int(bins) + 1)


def residuals(
    residuals_by_feature: Mapping[str, np.ndarray],
    units: Mapping[str, str] | None = None,
    bins=50,
    *,
    ncols: int = 3,
    core: float | None = CORE_SIGMAS,
    xlabel: str = "{name}: decoded \u2212 original",
    save_to=None,
    name: str = "residuals",
):
    """A grid of residual histograms (decoded - original), one panel per feature, each quoting the mean,
    sigma68 (half the 16-84% interval) and how many entries fall outside the range shown.

    Each panel spans median ± `core` x sigma68 (`core=None`: the 0.1-99.9% range); `bins` a count or edges.
    `units` {feature: unit} labels the axes ('pT: decoded − original [GeV]'); features without a unit are
    dimensionless. A spare slot of the grid holds the sample label; without one, it stands above the grid."""
    from ..formatting import fmt

    units = units or {}
    names = list(residuals_by_feature)
    ncols = max(1, min(ncols, len(names)))
    nrows = -(-len(names) // ncols)
    fig, axes = style.figure(nrows, ncols, squeeze=False)
    for ax, feature in zip(axes.flat, names):
        r = np.asarray(residuals_by_feature[feature], dtype=np.float64)
        r = r[np.isfinite(r)]
        edges = core_edges(r, bins, core)
        outside = int(np.count_nonzero((r < edges[0]) | (r > edges[-1])))
        ax.hist(r, edges, histtype="step", linewidth=2)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(style.axis_label(xlabel.format(name=feature), units.get(feature)), fontsize="medium")
        ax.set_ylabel("Objects", fontsize="medium")
        unit = f" {units[feature]}" if units.get(feature) else ""
        lines = [
            f"mean {fmt(np.mean(r) if r.size else np.nan)}{unit}",
            f"\u03c368 {fmt(sigma68(r))}{unit}",
            f"outside: {outside} ({fmt(100 * outside / max(r.size, 1))}%)",
        ]
        ax.text(0.96, 0.95, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize="medium")
        style.headroom(ax, 1.45)
    style.grid_label(fig, axes, len(names))
    return style.finish(fig, save_to, name)


def correlation_2d(orig, decoded, name: str, unit: str | None, bins=60, *, save_to=None, filename: str | None = None):
    """2-d histogram of decoded vs original values (log colour scale) with the diagonal;
    axes 'name, original [unit]' and 'name, decoded [unit]'."""
    orig, decoded = np.asarray(orig, dtype=np.float64), np.asarray(decoded, dtype=np.float64)
    edges = _edges(np.r_[orig, decoded], bins)
    fig, ax = style.figure()
    counts, _, _ = np.histogram2d(orig, decoded, [edges, edges])
    shown = np.where(counts > 0, counts, np.nan)
    mesh = ax.pcolormesh(
        edges, edges, shown.T, norm=LogNorm(vmin=1, vmax=max(1.0, np.nanmax(counts, initial=1))), cmap="viridis"
    )
    ax.plot(edges[[0, -1]], edges[[0, -1]], color="red", linestyle="--", linewidth=1)
    fig.colorbar(mesh, ax=ax, label="Objects")
    ax.set_xlabel(style.axis_label(f"{name}, original", unit))
    ax.set_ylabel(style.axis_label(f"{name}, decoded", unit))
    style.study_label(ax)  # top left: empty when the decoded values follow the diagonal
    return style.finish(fig, save_to, filename or f"correlation_{_slug(name)}")


def response_vs_pt(
    edges,
    resolution,
    bias,
    *,
    resolution_err=None,
    bias_err=None,
    labels=None,
    xlabel: str,
    resolution_label: str = "Relative resolution",
    bias_label: str = "Relative bias",
    logx: bool = False,
    save_to=None,
    name: str = "response_vs_pt",
):
    """Bias (top) and resolution (bottom) of the decoded pT in bins of the original pT.

    `edges` [n + 1] bin edges in the units of `xlabel` (a stored feature's label, e.g.
    `study.display.feature_label(jets, "pt")`); `resolution`, `bias` one array [n], a list of arrays or
    {label: array} (e.g. one per number of levels); errors alike or None.
    The y labels name the quantities (relative ones are dimensionless; pass e.g. 'Resolution [GeV]');
    `logx` for pT ranges over decades.
    """
    edges = np.asarray(edges, dtype=np.float64)
    res = style.as_series(resolution, labels)
    bia = style.as_series(bias, list(res))
    res_err = style.as_series(resolution_err, list(res)) if resolution_err is not None else {}
    bia_err = style.as_series(bias_err, list(res)) if bias_err is not None else {}
    centres, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    fig, (ax_bias, ax_res) = style.figure(
        2, 1, figsize=style.panel_size(1, 2), sharex=True, gridspec_kw={"hspace": 0.08}
    )
    for label in res:
        kw = {"fmt": "o", "markersize": 5, "label": label or None}
        line = ax_bias.errorbar(centres, bia[label], xerr=half, yerr=bia_err.get(label), **kw)
        ax_res.errorbar(centres, res[label], xerr=half, yerr=res_err.get(label), color=line[0].get_color(), **kw)
    ax_bias.axhline(0.0, color="grey", linewidth=1)
    ax_bias.set_ylabel(bias_label)
    ax_bias.tick_params(labelbottom=False)
    ax_res.set_ylabel(resolution_label)
    ax_res.set_xlabel(xlabel)
    ax_res.set_ylim(bottom=0)
    if logx:
        ax_res.set_xscale("log")
    style.headroom(ax_bias, 1.6)
    style.study_label(ax_bias)
    if any(res):
        ax_res.legend(loc="upper right")
    return style.finish(fig, save_to, name)
