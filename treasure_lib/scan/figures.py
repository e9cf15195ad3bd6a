"""The standard figures of a scan page, each drawn only when the scan has what it needs.

    resolution and codebook use against the codebook size   (a `tokenizer.codebook_size` axis)
    the label-efficiency curve per classifier mode           (a `classify.label_fraction` axis)
    the headline classifier numbers per point                (points with a headline AUC)
    tokenizer training time and export speed per point       (points that recorded them)

Every figure comes with a caption and a sentence of what it shows, read from the table's rows (`table`): a line
per setting of the other axes, seed axes as a band (`SEED_SUFFIX`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..formatting import fmt
from ..metrics.paired import significance
from ..plots import scans as plots
from .spec import Scan
from .table import number, number_or, short_names

SEED_SUFFIX = "seed"  # axes whose key ends so are repetitions: bands, not lines
CODEBOOK_SIZE = "tokenizer.codebook_size"
LABEL_FRACTION = "classify.label_fraction"
#: the cost panels of `time_and_speed`: (label, table column); a point is drawn when it has one of the first two
COST_PANELS = (
    ("Tokenizer training [s]", "tokenizer.train_seconds_total"),
    ("Export [rows/s]", "export.rows_per_s"),
    ("Chapters [s]", "seconds"),
)
TIMES = tuple(key for _, key in COST_PANELS[:2])


def figures(scan: Scan, rows: list[dict], folder: Path) -> list[dict]:
    """The standard figures this scan can draw, in page order; [{"file", "caption", "text"}]."""
    axes = scan.axes
    done = [r for r in rows if r["state"] == "complete"]
    with_auc = [r for r in done if math.isfinite(number(r.get("headline")))]
    timed = [r for r in done if any(math.isfinite(number(r.get(k))) for k in TIMES)]
    out = []
    if CODEBOOK_SIZE in axes:
        out += resolution_vs_codebook_size(done, axes, folder)
        out += codebook_use_vs_codebook_size(done, axes, folder)
    if LABEL_FRACTION in axes and with_auc:
        out.append(label_efficiency(with_auc, axes, folder))
    if with_auc:
        out.append(performance_per_point(with_auc, folder))
    if timed:
        out.append(time_and_speed(timed, folder))
    return out


def _lines(rows: list[dict], x_axis: str, y_key: str, axes: list[str]) -> dict:
    """{label of the other non-seed axes: (x, mean y, low, high)} over complete rows with y."""
    others = [a for a in axes if a != x_axis and not a.endswith(SEED_SUFFIX)]
    names = short_names(axes)
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        y = number(r.get(y_key))
        if r["state"] != "complete" or not math.isfinite(y):
            continue
        label = ", ".join(f"{names[a]}={r[a]}" for a in others) or y_key.rsplit(".", 1)[-1]
        groups[label][number(r[x_axis])].append(y)
    out = {}
    for label, by_x in groups.items():
        xs = sorted(by_x)
        ys = [by_x[x] for x in xs]
        spread = any(len(v) > 1 for v in ys)
        out[label] = (
            xs,
            [float(np.mean(v)) for v in ys],
            [min(v) for v in ys] if spread else None,
            [max(v) for v in ys] if spread else None,
        )
    return out


def _columns(rows, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return sorted({k for r in rows for k in r if rx.fullmatch(k)})


def resolution_vs_codebook_size(done: list[dict], axes: list[str], folder: Path) -> list[dict]:
    """Per collection (at most three): its pT resolution (response IQR / median) against the codebook size."""
    out = []
    for key in _columns(done, r"tokenizer\.[^.]+\.pt\.response_iqr_over_median")[:3]:
        coll = key.split(".")[1]
        lines = _lines(done, CODEBOOK_SIZE, key, axes)
        if not lines:
            continue
        name = f"resolution_vs_codebook_size_{coll}"
        plots.metric_vs_axis(
            lines,
            xlabel="Codebook size K",
            ylabel=f"{coll} $p_T$ IQR / median of reco/orig",
            logx=True,
            save_to=folder,
            name=name,
        )
        best = min(done, key=lambda r: number_or(r.get(key), math.inf))
        out.append(
            {
                "file": f"figures/{name}.png",
                "caption": f"{coll} pT resolution vs codebook size",
                "text": f"The best {coll} pT resolution, {fmt(best[key])}, is at point `{best['point']}`.",
            }
        )
    return out


def codebook_use_vs_codebook_size(done: list[dict], axes: list[str], folder: Path) -> list[dict]:
    """Per collection (at most three): the fraction of its level-1 codes used against the codebook size, or their
    normalised entropy where every point uses all of them."""
    out = []
    for key in _columns(done, r"codebook\.[^.]+\.level_1\.utilization")[:3]:
        coll = key.split(".")[1]
        values = {number(r.get(key)) for r in done if math.isfinite(number(r.get(key)))}
        if len(values) <= 1:  # every codebook fully used: the normalised entropy says how evenly
            key = key.replace(".utilization", ".normalized_entropy")
        lines = _lines(done, CODEBOOK_SIZE, key, axes)
        if not lines:
            continue
        what = "fraction of level-1 codes used" if key.endswith("utilization") else "level-1 entropy / log K"
        name = f"utilization_vs_codebook_size_{coll}"
        plots.metric_vs_axis(
            lines, xlabel="Codebook size K", ylabel=f"{coll}: {what}", logx=True, save_to=folder, name=name
        )
        low = min(done, key=lambda r: number_or(r.get(key), math.inf))
        text = (
            f"Every point uses all its level-1 {coll} codes; the lowest normalised entropy (1: uniform use) "
            f"is {fmt(low[key])} (point `{low['point']}`)."
            if key.endswith("entropy")
            else f"The lowest {coll} level-1 use is {100 * low[key]:.0f}% (point `{low['point']}`)."
        )
        out.append({"file": f"figures/{name}.png", "caption": f"{coll} codebook use vs codebook size", "text": text})
    return out


def label_efficiency(with_auc: list[dict], axes: list[str], folder: Path) -> dict:
    """The headline AUC against the fraction of labels, a line per classifier mode (band: spread over seeds)."""
    by_mode: dict = defaultdict(list)
    for r in with_auc:
        by_mode[r["headline.key"].split(".")[2]].append(r)
    lines = {}
    for mode, mode_rows in sorted(by_mode.items()):
        for label, line in _lines(
            mode_rows,
            LABEL_FRACTION,
            "headline",
            [a for a in axes if a not in ("classify.mode", "classify.inputs")],
        ).items():
            lines[mode if label == "headline" else f"{mode}, {label}"] = line
    plots.metric_vs_axis(
        lines,
        xlabel="Fraction of labelled training data",
        ylabel="AUC",
        logx=True,
        save_to=folder,
        name="label_efficiency",
    )
    text = "; ".join(
        f"{m}: {fmt(line[1][0])} at {line[0][0]:g} -> {fmt(line[1][-1])} at {line[0][-1]:g}"
        for m, line in lines.items()
    )
    return {
        "file": "figures/label_efficiency.png",
        "caption": "Label efficiency (band: spread over seeds)",
        "text": f"Mean AUC over seeds per mode, from the fewest to the most labels: {text}.",
    }


def performance_per_point(with_auc: list[dict], folder: Path) -> dict:
    """The headline AUC (and light rejection at 77% for flavour) per point, and whether the best point is
    significantly better than the next (`metrics.paired.significance`)."""
    what = "Macro one-vs-rest AUC" if with_auc[0]["headline.key"].endswith("auc_macro") else "AUC"
    panels = {
        f"{what} (test split)": (
            [r["headline"] for r in with_auc],
            [number(r.get("headline_err")) for r in with_auc],
        )
    }
    if any(math.isfinite(number(r.get("light_rejection_at_77"))) for r in with_auc):
        panels["Light rejection at 77% b-eff."] = (
            [number(r.get("light_rejection_at_77")) for r in with_auc],
            [number(r.get("light_rejection_at_77_err")) for r in with_auc],
        )
    plots.per_point([r["point"] for r in with_auc], panels, save_to=folder, name="auc_per_point")
    merit, merit_name = (
        ("light_rejection_at_77", "light rejection at 77% b-efficiency") if len(panels) > 1 else ("headline", what)
    )
    ranked = sorted(with_auc, key=lambda r: -number(r.get(merit)))
    best = ranked[0]
    text = f"The best {merit_name} is {fmt(best[merit], best.get(merit + '_err'))} (point `{best['point']}`)"
    if len(ranked) > 1:
        second = ranked[1]
        gap = number(best[merit]) - number(second[merit])
        err = math.hypot(number(best.get(merit + "_err")), number(second.get(merit + "_err")))
        text += (
            f"; the next point is {'' if significance(gap, err) else 'not '}significantly worse "
            f"({fmt(second[merit], second.get(merit + '_err'))}, a difference of {fmt(gap, err)})"
        )
    return {
        "file": "figures/auc_per_point.png",
        "caption": "Classifier performance per point (binomial uncertainties)",
        "text": text + ".",
    }


def time_and_speed(timed: list[dict], folder: Path) -> dict:
    """Tokenizer training time, export speed and chapter time per point."""
    panels = {label: ([number(r.get(key)) for r in timed], None) for label, key in COST_PANELS}
    panels = {k: v for k, v in panels.items() if any(math.isfinite(x) for x in v[0])}
    plots.per_point([r["point"] for r in timed], panels, save_to=folder, name="time_and_speed")
    slow = max(timed, key=lambda r: number_or(r.get("seconds"), -1))
    return {
        "file": "figures/time_and_speed.png",
        "caption": "Training time and tokenization speed per point",
        "text": f"Tokenizer training time and export speed are those of the build each point used (points "
        f"that share a tokenizer show the same numbers); chapter time is the point's own, reused "
        f"stages included. The slowest point's chapters, `{slow['point']}`, took "
        f"{number(slow.get('seconds')):.0f} s.",
    }
