"""Codebook figures: the fraction of codes used per collection and level, and the token-frequency
spectrum (share of objects per code, by rank).

    health = {name: diagnostics.codebook_health(idx, K) for name, (idx, K) in tokens.items()}
    plots.codebook_usage(health)        # bars: collections on x, one bar per level
    plots.token_frequency(health)       # one line per collection and level
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import style


def _level_values(levels, key: str) -> dict[str, float]:
    """{level name: value} from a codebook_health dict, a {level: number} dict, or a list per level."""
    if isinstance(levels, Mapping):
        return {str(lvl): float(v[key] if isinstance(v, Mapping) else v) for lvl, v in levels.items()}
    return {f"level_{j + 1}": float(v) for j, v in enumerate(levels)}


def _pretty(level: str) -> str:
    return level.replace("level_", "Level ").replace("_", " ")


def codebook_usage(
    usage: Mapping,
    *,
    key: str = "utilization",
    ylabel: str = "Fraction of codes used",
    save_to=None,
    name: str = "codebook_usage",
):
    """Grouped bars: one group per collection, one bar per quantizer level.

    `usage` {collection: codebook_health report | {level: fraction} | [fraction per level]}; with
    health reports `key` picks the quantity (utilization, normalized_entropy, ...). Bars are
    labelled with their value; the y axis runs 0 to 1 for fractions.
    """
    from ..formatting import fmt

    data = {c: _level_values(levels, key) for c, levels in usage.items()}
    levels = list(dict.fromkeys(lvl for per in data.values() for lvl in per))
    width = 0.8 / max(len(levels), 1)
    fig, ax = style.figure()
    x = np.arange(len(data))
    for j, level in enumerate(levels):
        heights = np.array([per.get(level, np.nan) for per in data.values()])
        bars = ax.bar(x + (j - (len(levels) - 1) / 2) * width, np.nan_to_num(heights), width, label=_pretty(level))
        ax.bar_label(bars, labels=[fmt(h) if np.isfinite(h) else "" for h in heights], fontsize="small", padding=2)
    ax.set_xticks(x, list(data))
    ax.tick_params(axis="x", which="minor", bottom=False, top=False)
    ax.set_xlim(-0.6, len(data) - 0.4)
    ax.set_xlabel("Collection")
    ax.set_ylabel(ylabel)
    top = max([v for per in data.values() for v in per.values() if np.isfinite(v)], default=1.0)
    ax.set_ylim(0, 1.45 * max(top, 1.0))  # room for the label and legend
    style.study_label(ax, com=None)
    ax.legend(loc="upper right", ncols=1 if len(levels) <= 4 else 2)
    return style.finish(fig, save_to, name)


def _spectra(freq: Mapping) -> dict[str, np.ndarray]:
    """{label: sorted shares} from arrays, level dicts with sorted_frequency, or health reports."""
    out = {}
    for label, value in freq.items():
        if isinstance(value, Mapping) and "sorted_frequency" in value:
            out[str(label)] = np.asarray(value["sorted_frequency"])
        elif isinstance(value, Mapping):  # a codebook_health report: one curve per level
            for level, stats in value.items():
                out[f"{label}, {_pretty(level).lower()}"] = np.asarray(stats["sorted_frequency"])
        else:
            out[str(label)] = np.sort(np.asarray(value, dtype=np.float64))[::-1]
    return out


def token_frequency(freq: Mapping, *, uniform: bool = True, save_to=None, name: str = "token_frequency"):
    """Token-frequency spectra: share of objects per code against the code's rank (1 = most used),
    log y. `freq` {label: shares per code (sorted here) | level_usage dict | codebook_health report}.
    With `uniform`, a dotted line at 1/K marks perfectly even use of each spectrum's K codes.
    Codes never used (share 0) end the curve."""
    spectra = _spectra(freq)
    fig, ax = style.figure()
    for label, shares in spectra.items():
        total = shares.sum()
        p = shares / total if total > 0 else shares
        used = p > 0
        rank = np.arange(1, p.size + 1)
        (line,) = ax.plot(rank[used], p[used], label=label, drawstyle="steps-post")
        if uniform and p.size:
            ax.axhline(1.0 / p.size, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("Code rank")
    ax.set_ylabel("Fraction of objects per code")
    style.headroom(ax, 1.5, log=True)
    style.study_label(ax, com=None)
    ax.legend(loc="upper right")
    return style.finish(fig, save_to, name)
