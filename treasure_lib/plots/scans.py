"""Scan figures: a metric against one axis (a line per setting of the others), and a metric per point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import style


def metric_vs_axis(
    lines: Mapping[str, tuple],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    save_to=None,
    name: str = "metric_vs_axis",
):
    """`lines` {label: (x [n], y [n], low [n] or None, high [n] or None)}: markers and lines, with a band when
    low/high are given (seed spread, bootstrap interval)."""
    fig, ax = style.figure()
    for label, (x, y, low, high) in lines.items():
        x, y = np.asarray(x, float), np.asarray(y, float)
        order = np.argsort(x)
        (line,) = ax.plot(x[order], y[order], marker="o", markersize=5, label=label)
        if low is not None and high is not None:
            ax.fill_between(
                x[order],
                np.asarray(low, float)[order],
                np.asarray(high, float)[order],
                color=line.get_color(),
                alpha=0.25,
                linewidth=0,
            )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.headroom(ax, 1.4, log=logy)
    style.atlas_label(ax)
    if len(lines) > 1 or any(lines):
        ax.legend(loc="upper right", fontsize="x-small")
    return style.finish(fig, save_to, name)


def per_point(labels: Sequence[str], panels: Mapping[str, tuple], *, save_to=None, name: str = "per_point"):
    """One row per point, one panel per quantity: `panels` {xlabel: (values [n], errors [n] or None)}."""
    n = len(labels)
    width, height = style.panel_size(len(panels))
    fig, axes = style.figure(1, len(panels), figsize=(width, max(height, 0.45 * n + 1.8)), squeeze=False)
    y = np.arange(n)
    for ax, (xlabel, (values, errors)) in zip(axes[0], panels.items()):
        ax.errorbar(
            np.asarray(values, float),
            y,
            xerr=None if errors is None else np.asarray(errors, float),
            fmt="o",
            markersize=5,
            capsize=2,
        )
        ax.set_yticks(y, labels if ax is axes[0][0] else [""] * n, fontsize="x-small")
        ax.set_ylim(-0.7, n - 0.3 + 0.25 * n)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("")
        ax.tick_params(axis="y", which="minor", left=False, right=False)
    style.atlas_label(axes[0][0])
    return style.finish(fig, save_to, name)
