"""`treasure scan summarize`: every point's metrics in one table, the standard scan figures, a book page.

The table (`summary.parquet`, `summary.csv` in the scan folder) has one row per point: its id,
state, wall time and error, one column per axis, its headline classifier numbers, and the
documented metric keys the scan's `metrics` patterns select. The figures are drawn only when the
scan has what they need: resolution and codebook use against the codebook size (a line per
setting of the other axes, seed axes as a band), the headline AUC per point, the label-efficiency
curve per classifier mode with its seed band, and training time and export speed per point. The
page `summary.md` (what the book includes) quotes the table's numbers, never typed ones.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import metric_keys
from ..metrics.paired import significance
from ..runs import atomic
from .points import Point, expand, state
from .spec import Scan

SEED_SUFFIX = "seed"  # axes whose key ends so are repetitions: bands, not lines


def short_names(keys) -> dict:
    """{dotted key: its last part}, or as many trailing parts as make the names unique (pretrain.train.lr vs
    classify.train.lr)."""
    keys = list(keys)
    for depth in range(1, max((k.count(".") + 1 for k in keys), default=1) + 1):
        names = {k: ".".join(k.split(".")[-depth:]) for k in keys}
        if len(set(names.values())) == len(keys):
            return names
    return {k: k for k in keys}


def _cell(value):
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    return value


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _or(value, default: float) -> float:
    """A row's number, or `default` where it is missing (so min/max skip it)."""
    x = _number(value)
    return x if math.isfinite(x) else default


def point_row(scan: Scan, point: Point) -> dict:
    s = state(point)
    try:
        metrics = atomic.read_json(point.dir / "metrics.json", {}) or {}
    except ValueError:
        metrics = {}
    documented = {k: v for k, v in metrics.items() if metric_keys.describe(k) is not None}
    chosen = {
        k: v
        for k, v in documented.items()
        if not scan.metrics or any(fnmatch.fnmatchcase(k, pat) for pat in scan.metrics)
    }
    chapter_seconds = [v for k, v in documented.items() if re.fullmatch(r"run\.[^.]+\.seconds", k)]
    row = {
        "point": point.id,
        "state": s["state"],
        "error": s.get("error"),
        "seconds": float(sum(chapter_seconds)) if chapter_seconds else None,  # its chapters (metrics.json)
        **{axis: _cell(v) for axis, v in point.values.items()},
    }
    from ..training import metrics_prefix

    prefix = metrics_prefix(point.resolved.classify)  # the classifier the point's params describe
    for quantity in ("auc_macro", "auc"):
        if f"{prefix}.{quantity}" in documented:
            row.update(
                {
                    "headline.key": f"{prefix}.{quantity}",
                    "headline": documented[f"{prefix}.{quantity}"],
                    "headline_err": documented.get(f"{prefix}.{quantity}_err"),
                }
            )
            break
    if f"{prefix}.light_rejection_at_77" in documented:  # flavour: what b-tagging is judged by
        row.update(
            {
                "light_rejection_at_77": documented[f"{prefix}.light_rejection_at_77"],
                "light_rejection_at_77_err": documented.get(f"{prefix}.light_rejection_at_77_err"),
            }
        )
    train = [v for k, v in documented.items() if re.fullmatch(r"tokenizer\.[^.]+\.train_seconds", k)]
    if train:
        row["tokenizer.train_seconds_total"] = float(sum(train))
    for key in ("export.rows_per_s",):
        if key in documented:
            row[key] = documented[key]
    row.update(chosen)
    return row


def collect(scan: Scan) -> list[dict]:
    return [point_row(scan, p) for p in expand(scan)]


def write_table(rows: list[dict], folder: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    columns = list(dict.fromkeys(k for r in rows for k in r))
    data = {c: [r.get(c) for r in rows] for c in columns}
    for c, values in data.items():  # one type per column: numbers as float, anything mixed as text
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int, float} and kinds:
            data[c] = [None if v is None else float(v) for v in values]
        elif len(kinds) > 1:
            data[c] = [None if v is None else str(v) for v in values]
    table = pa.table(data)
    folder.mkdir(parents=True, exist_ok=True)
    parquet, csv = folder / "summary.parquet", folder / "summary.csv"
    tmp = atomic.temp_name(parquet)
    pq.write_table(table, tmp)
    tmp.replace(parquet)
    tmp = atomic.temp_name(csv)
    pcsv.write_csv(table, tmp)
    tmp.replace(csv)
    return parquet, csv


# ----------------------------------------------------------------------------- figures


def _lines(rows: list[dict], x_axis: str, y_key: str, axes: list[str]) -> dict:
    """{label of the other non-seed axes: (x, mean y, low, high)} over complete rows with y."""
    others = [a for a in axes if a != x_axis and not a.endswith(SEED_SUFFIX)]
    names = short_names(axes)
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        y = _number(r.get(y_key))
        if r["state"] != "complete" or not math.isfinite(y):
            continue
        label = ", ".join(f"{names[a]}={r[a]}" for a in others) or y_key.rsplit(".", 1)[-1]
        groups[label][_number(r[x_axis])].append(y)
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


def figures(scan: Scan, rows: list[dict], folder: Path) -> list[dict]:
    """The standard figures this scan can draw; [{"file", "caption", "text"}]."""
    from ..plots import scans as plots

    axes, out = scan.axes, []
    done = [r for r in rows if r["state"] == "complete"]
    if "tokenizer.codebook_size" in axes:
        for key in _columns(done, r"tokenizer\.[^.]+\.pt\.response_iqr_over_median")[:3]:
            coll = key.split(".")[1]
            lines = _lines(done, "tokenizer.codebook_size", key, axes)
            if lines:
                name = f"resolution_vs_codebook_size_{coll}"
                plots.metric_vs_axis(
                    lines,
                    xlabel="Codebook size K",
                    ylabel=f"{coll} $p_T$ IQR / median of reco/orig",
                    logx=True,
                    save_to=folder,
                    name=name,
                )
                best = min(done, key=lambda r: _or(r.get(key), math.inf))
                out.append(
                    {
                        "file": f"figures/{name}.png",
                        "caption": f"{coll} pT resolution vs codebook size",
                        "text": f"The best {coll} pT resolution, {best[key]:.4g}, is at point `{best['point']}`.",
                    }
                )
        for key in _columns(done, r"codebook\.[^.]+\.level_1\.utilization")[:3]:
            coll = key.split(".")[1]
            values = {_number(r.get(key)) for r in done if math.isfinite(_number(r.get(key)))}
            if len(values) <= 1:  # every codebook fully used: the normalised entropy says how evenly
                key = key.replace(".utilization", ".normalized_entropy")
            lines = _lines(done, "tokenizer.codebook_size", key, axes)
            if lines:
                what = "fraction of level-1 codes used" if key.endswith("utilization") else "level-1 entropy / log K"
                name = f"utilization_vs_codebook_size_{coll}"
                plots.metric_vs_axis(
                    lines, xlabel="Codebook size K", ylabel=f"{coll}: {what}", logx=True, save_to=folder, name=name
                )
                low = min(done, key=lambda r: _or(r.get(key), math.inf))
                text = (
                    f"Every point uses all its level-1 {coll} codes; the lowest normalised entropy (1: uniform use) "
                    f"is {low[key]:.3f} (point `{low['point']}`)."
                    if key.endswith("entropy")
                    else f"The lowest {coll} level-1 use is {100 * low[key]:.0f}% (point `{low['point']}`)."
                )
                out.append(
                    {"file": f"figures/{name}.png", "caption": f"{coll} codebook use vs codebook size", "text": text}
                )
    with_auc = [r for r in done if math.isfinite(_number(r.get("headline")))]
    if "classify.label_fraction" in axes and with_auc:
        by_mode: dict = defaultdict(list)
        for r in with_auc:
            by_mode[r["headline.key"].split(".")[2]].append(r)
        lines = {}
        for mode, mode_rows in sorted(by_mode.items()):
            for label, line in _lines(
                mode_rows,
                "classify.label_fraction",
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
            f"{m}: {line[1][0]:.3f} at {line[0][0]:g} -> {line[1][-1]:.3f} at {line[0][-1]:g}"
            for m, line in lines.items()
        )
        out.append(
            {
                "file": "figures/label_efficiency.png",
                "caption": "Label efficiency (band: spread over seeds)",
                "text": f"Mean AUC over seeds per mode, from the fewest to the most labels: {text}.",
            }
        )
    if with_auc:
        what = "Macro one-vs-rest AUC" if with_auc[0]["headline.key"].endswith("auc_macro") else "AUC"
        panels = {
            f"{what} (test split)": (
                [r["headline"] for r in with_auc],
                [_number(r.get("headline_err")) for r in with_auc],
            )
        }
        if any(math.isfinite(_number(r.get("light_rejection_at_77"))) for r in with_auc):
            panels["Light rejection at 77% b-eff."] = (
                [_number(r.get("light_rejection_at_77")) for r in with_auc],
                [_number(r.get("light_rejection_at_77_err")) for r in with_auc],
            )
        plots.per_point([r["point"] for r in with_auc], panels, save_to=folder, name="auc_per_point")
        merit, merit_name = (
            ("light_rejection_at_77", "light rejection at 77% b-efficiency") if len(panels) > 1 else ("headline", what)
        )
        ranked = sorted(with_auc, key=lambda r: -_number(r.get(merit)))
        best = ranked[0]
        text = (
            f"The best {merit_name} is {_number(best[merit]):.4g} ± {_number(best.get(merit + '_err')):.2g} "
            f"(point `{best['point']}`)"
        )
        if len(ranked) > 1:
            second = ranked[1]
            gap = _number(best[merit]) - _number(second[merit])
            err = math.hypot(_number(best.get(merit + "_err")), _number(second.get(merit + "_err")))
            text += (
                f"; the next point is {'' if significance(gap, err) else 'not '}significantly worse "
                f"({_number(second[merit]):.4g}, a difference of {gap:.3g} ± {err:.2g})"
            )
        out.append(
            {
                "file": "figures/auc_per_point.png",
                "caption": "Classifier performance per point (binomial uncertainties)",
                "text": text + ".",
            }
        )
    timed = [
        r
        for r in done
        if math.isfinite(_number(r.get("tokenizer.train_seconds_total")))
        or math.isfinite(_number(r.get("export.rows_per_s")))
    ]
    if timed:
        panels = {
            label: ([_number(r.get(key)) for r in timed], None)
            for label, key in (
                ("Tokenizer training [s]", "tokenizer.train_seconds_total"),
                ("Export [rows/s]", "export.rows_per_s"),
                ("Chapters [s]", "seconds"),
            )
        }
        panels = {k: v for k, v in panels.items() if any(math.isfinite(x) for x in v[0])}
        plots.per_point([r["point"] for r in timed], panels, save_to=folder, name="time_and_speed")
        slow = max(timed, key=lambda r: _or(r.get("seconds"), -1))
        out.append(
            {
                "file": "figures/time_and_speed.png",
                "caption": "Training time and tokenization speed per point",
                "text": f"Tokenizer training time and export speed are those of the build each point used (points "
                f"that share a tokenizer show the same numbers); chapter time is the point's own, reused "
                f"stages included. The slowest point's chapters, `{slow['point']}`, took "
                f"{_number(slow.get('seconds')):.0f} s.",
            }
        )
    return out


# ----------------------------------------------------------------------------- the page


def page(scan: Scan, rows: list[dict], shown: list[dict], section: str = "") -> str:
    """The scan's book page: its header, `section` (a comparison's, see `comparison`), the table, the figures."""
    from ..study.report import markdown_table

    counts = defaultdict(int)
    for r in rows:
        counts[r["state"]] += 1
    axes = scan.axes
    lines = [f"# Scan: {scan.name}", ""]
    if scan.description:
        lines += [scan.description.strip(), ""]
    lines += [
        f"{len(rows)} points from `{scan.path}` ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); "
        f"axes: {', '.join(f'`{a}`' for a in axes) or 'none'}; chapters: "
        f"{', '.join(scan.chapters) if scan.chapters else 'all'}. Every number below is read from the points' "
        f"`metrics.json` (table: `summary.parquet`, `summary.csv`).",
        "",
    ]
    if section:
        lines += [section, "## Points", ""]
    extra = [
        c
        for c in (
            "headline",
            "headline_err",
            "light_rejection_at_77",
            "light_rejection_at_77_err",
            "tokenizer.train_seconds_total",
            "export.rows_per_s",
        )
        if any(c in r for r in rows)
    ]
    chosen = [
        c
        for c in dict.fromkeys(k for r in rows for k in r)
        if scan.metrics
        and c not in extra
        and c not in axes
        and c not in ("point", "state", "seconds", "error", "headline.key")
    ][:6]
    keys = {r.get("headline.key") for r in rows if r.get("headline.key")}
    named = {
        "headline": f"{keys.pop()}" if len(keys) == 1 else "headline AUC",
        "headline_err": "±",
        "light_rejection_at_77": "light rej. @77%",
        "light_rejection_at_77_err": "± ",
    }
    chosen = [c for c in chosen if c != named["headline"]]
    axis_names = short_names(axes)
    table_rows = [
        {
            **{axis_names[a]: r.get(a) for a in axes},
            "state": r["state"],
            **{named.get(c, c): r.get(c) for c in extra + chosen},
            "chapters s": r.get("seconds"),
        }
        for r in rows
    ]
    lines += [markdown_table(table_rows), ""]
    for fig in shown:
        lines += [f"![{fig['caption']}]({fig['file']})", "", fig["text"], ""]
    failed = [r for r in rows if r["state"] == "failed"]
    if failed:
        lines += ["Failed points (re-run with `treasure scan run ... --retry-failed`):", ""]
        lines += [f"- `{r['point']}`: {r.get('error')}" for r in failed] + [""]
    return "\n".join(lines)


def summarize(scan: Scan) -> dict:
    """Write the table, the figures and summary.md into the scan folder; returns their paths and the rows."""
    folder = scan.output_dir
    rows = collect(scan)
    parquet, csv = write_table(rows, folder)
    section, drawn = "", []
    if scan.comparison == "tokenizers":  # its own figures replace the per-axis ones (kinds share no axis)
        from .comparison import section as tokenizer_section

        shown = []
        section, drawn = tokenizer_section(scan, rows, folder)
    else:
        shown = figures(scan, rows, folder / "figures")
    md = atomic.write_text(folder / "summary.md", page(scan, rows, shown, section))
    return {
        "rows": rows,
        "parquet": parquet,
        "csv": csv,
        "page": md,
        "figures": [folder / f["file"] for f in shown] + drawn,
    }
