"""Figures of the tokenizer comparison: numbers against bits per object (a line per kind, the raw-feature
reference as a dashed line with its band), and one number per kind."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import style


def versus_bits(
    panels: Mapping[str, Mapping[str, tuple]],
    *,
    reference: Mapping[str, tuple] | None = None,
    logy: bool = False,
    save_to=None,
    name: str = "versus_bits",
):
    """`panels` {ylabel: {kind: (bits [n], y [n], low [n], high [n])}}, one panel each; `reference` {ylabel:
    (value, error)} draws a horizontal line with a band (what the kinds would reach with unlimited bits)."""
    width, height = style.panel_size(len(panels))
    fig, axes = style.figure(
        1,
        len(panels),
        figsize=(width * (1.15 if len(panels) > 1 else 1.0), height),
        squeeze=False,
        gridspec_kw={"wspace": 0.45},
    )
    for ax, (ylabel, lines) in zip(axes[0], panels.items()):
        for kind, (x, y, low, high) in lines.items():
            x, y = np.asarray(x, float), np.asarray(y, float)
            order = np.argsort(x)
            (line,) = ax.plot(x[order], y[order], marker="o", markersize=5, label=kind)
            low, high = np.asarray(low, float)[order], np.asarray(high, float)[order]
            if np.any(high > low):
                ax.fill_between(x[order], low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ref = (reference or {}).get(ylabel)
        if ref is not None and np.isfinite(ref[0]):
            ax.axhline(ref[0], color="black", linestyle="--", linewidth=1.2, label="raw features")
            if np.isfinite(ref[1]):
                ax.axhspan(ref[0] - ref[1], ref[0] + ref[1], color="grey", alpha=0.2, linewidth=0)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("Bits per track")
        ax.set_ylabel(ylabel)
        style.headroom(ax, 1.45, log=logy)
        ax.legend(loc="upper right", fontsize="x-small")
    if len(panels) > 1:
        style.figure_label(fig)
    else:
        style.atlas_label(axes[0][0])
    return style.finish(fig, save_to, name)


def per_kind(values: Mapping[str, float], *, xlabel: str, save_to=None, name: str = "per_kind"):
    """One horizontal bar per entry (`values` {label: number}), in the given order from the top."""
    labels = list(values)
    n = len(labels)
    width, height = style.panel_size(1)
    fig, ax = style.figure(figsize=(width, max(height, 0.4 * n + 1.8)))
    y = np.arange(n)[::-1]
    ax.barh(y, [values[k] if np.isfinite(values[k]) else 0.0 for k in labels], height=0.6)
    ax.set_yticks(y, labels, fontsize="x-small")
    ax.tick_params(axis="y", which="minor", left=False, right=False)
    ax.ticklabel_format(axis="x", style="plain")  # no offset label colliding with the axis title
    ax.set_xlabel(xlabel)
    ax.set_ylim(-0.7, n - 0.3 + 0.25 * n)
    style.atlas_label(ax)
    return style.finish(fig, save_to, name)
