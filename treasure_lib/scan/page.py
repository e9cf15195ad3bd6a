"""A scan's book page: `treasure scan summarize` writes the table, the standard figures and `summary.md`.

The page quotes the table's numbers (`table`), never typed ones, and shows the figures the scan can draw
(`figures`); a scan with a `comparison` section shows that section's figures instead (`comparison`).
"""

from __future__ import annotations

from collections import defaultdict

from ..formatting import markdown_table
from ..runs import atomic
from .spec import Scan
from .table import collect, short_names, write_table


def page(scan: Scan, rows: list[dict], shown: list[dict], section: str = "") -> str:
    """The scan's book page: its header, `section` (a comparison's, see `comparison`), the table, the figures."""
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
        "light_rejection_at_77": "light rej. @77%",
    }
    chosen = [c for c in chosen if c != named["headline"]]
    axis_names = short_names(axes)
    columns = [c for c in extra + chosen if not (c.endswith("_err") and c[: -len("_err")] in extra)]
    table_rows = [
        {
            **{axis_names[a]: r.get(a) for a in axes},
            "state": r["state"],
            **{named.get(c, c): (r.get(c), r.get(c + "_err")) if c + "_err" in extra else r.get(c) for c in columns},
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
        from .figures import figures  # matplotlib only when a page is written

        shown = figures(scan, rows, folder / "figures")
    md = atomic.write_text(folder / "summary.md", page(scan, rows, shown, section))
    return {
        "rows": rows,
        "parquet": parquet,
        "csv": csv,
        "page": md,
        "figures": [folder / f["file"] for f in shown] + drawn,
    }
