"""Tables as figures, for the book and the group-meeting slides (e.g. the leakage table).

table = diagnostics.leakage_table(results)
plots.table_figure(table, ["row", "name", "auc_text"], "Leakage checks", headers=["", "Input", "AUC"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import style


def _cell(value) -> str:
    """Numbers to 4 significant digits, None / NaN as a dash, everything else as text."""
    if value is None:
        return "\u2014"
    if isinstance(value, (float, np.floating)):
        return "\u2014" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def table_cells(rows: Sequence, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """(columns, text cells) from rows of dicts (cells looked up by column key; columns default to
    the first row's keys) or of sequences (cells by position)."""
    rows = list(rows)
    if rows and isinstance(rows[0], Mapping):
        columns = list(columns or rows[0].keys())
        return columns, [[_cell(r.get(c)) for c in columns] for r in rows]
    width = max((len(r) for r in rows), default=len(columns or ()))
    columns = list(columns) if columns is not None else [str(i) for i in range(width)]
    if any(len(r) != len(columns) for r in rows):
        raise ValueError(f"every row needs {len(columns)} cells (one per column)")
    return columns, [[_cell(v) for v in r] for r in rows]


def table_figure(
    rows: Sequence,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    *,
    headers: Sequence[str] | None = None,
    save_to=None,
    name: str = "table",
):
    """A table drawn as a figure: bold header row, one line per row, the figure sized to the text.

    `rows` dicts or sequences (see `table_cells`); `headers` the printed column names (default the
    column keys); None and NaN cells show as a dash.
    """
    columns, cells = table_cells(rows, columns)
    headers = list(headers) if headers is not None else columns
    if len(headers) != len(columns):
        raise ValueError(f"{len(headers)} headers for {len(columns)} columns")
    widths = [2 + max([len(str(h))] + [len(r[j]) for r in cells]) for j, h in enumerate(headers)]
    fig, ax = style.figure(figsize=(0.105 * sum(widths), 0.32 * (len(cells) + 1) + (0.35 if title else 0.0)))
    ax.set_axis_off()
    table = ax.table(
        cellText=cells or [[""] * len(columns)],
        colLabels=headers,
        cellLoc="left",
        colLoc="left",
        colWidths=[w / sum(widths) for w in widths],
        bbox=[0.0, 0.0, 1.0, 1.0],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(11)
    for (r, _), cell in table.get_celld().items():
        cell.set_edgecolor("#bbbbbb")
        cell.set_linewidth(0.5)
        if r == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#eeeeee")
    if title:
        ax.set_title(title, fontsize="medium", loc="left")
    return style.finish(fig, save_to, name)
