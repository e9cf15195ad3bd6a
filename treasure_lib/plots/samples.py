"""Sample figures: a distribution per class or process (unit area, to check the physics by eye) or weighted and
stacked (how much of each process lies where)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np

from . import style


def by_class(
    values: Mapping[str, np.ndarray],
    xlabel: str,
    *,
    bins=40,
    range_=None,
    logy: bool = False,
    integer: bool = False,
    ylabel: str = "Fraction of entries",
    save_to=None,
    name: str = "by_class",
):
    """One step histogram per class (unit area); `integer` centres bins on integers (multiplicities)."""
    fig, ax = style.figure()
    finite = [v[np.isfinite(v)] for v in values.values() if len(v)]
    if integer:
        hi = int(max((v.max() for v in finite), default=1))
        edges = np.arange(-0.5, hi + 1.5)
    else:
        lo, hi = range_ or (min(np.quantile(v, 0.005) for v in finite), max(np.quantile(v, 0.995) for v in finite))
        edges = np.geomspace(max(lo, 1e-3), hi, bins + 1) if logy and lo > 0 else np.linspace(lo, hi, bins + 1)
    colours = matplotlib.colormaps["tab10" if len(values) <= 10 else "tab20"].colors  # a colour per class
    for k, (label, v) in enumerate(values.items()):
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        counts, _ = np.histogram(np.clip(v, edges[0], edges[-1]), edges)
        ax.stairs(
            counts / max(counts.sum(), 1),
            edges,
            label=f"{label} ({len(v)})",
            color=colours[k % len(colours)],
            linestyle=("-", "--", ":")[(k // len(colours)) % 3],
        )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.headroom(ax, 1.5, log=logy)
    ax.legend(ncol=2)
    style.atlas_label(ax)
    return style.finish(fig, save_to, name)


def stacked(
    values: Mapping[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str,
    *,
    bins,
    unit: str = "fb",
    bin_unit: str = "GeV",
    lines=(),
    save_to=None,
    name: str = "stacked",
):
    """Weighted histograms stacked in order (the first at the bottom), in `unit` per bin: how much of each sample
    lies where (e.g. the m4l of H on top of ZZ*). `values`: label -> (values, weights). `lines`: x positions
    marked by dashed vertical lines (a window's edges)."""
    edges = np.asarray(bins, dtype=np.float64)
    fig, ax = style.figure()
    colours = matplotlib.colormaps["tab10"].colors
    bottom = np.zeros(len(edges) - 1)
    for k, (label, (v, w)) in enumerate(values.items()):
        v, w = np.asarray(v, dtype=np.float64), np.asarray(w, dtype=np.float64)
        counts, _ = np.histogram(v, edges, weights=w)
        ax.stairs(
            bottom + counts,
            edges,
            baseline=bottom,
            fill=True,
            alpha=0.7,
            color=colours[k % len(colours)],
            label=f"{label} ({len(v)} events)",
        )
        bottom = bottom + counts
    for x in lines:
        ax.axvline(x, color="grey", linestyle="--", linewidth=1)
    width = edges[1] - edges[0]
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{unit} / {width:g} {bin_unit}")
    style.headroom(ax, 1.9)
    style.legend_below_label(ax, side="left", fontsize="small")
    style.atlas_label(ax)
    return style.finish(fig, save_to, name)
