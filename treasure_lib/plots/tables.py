"""Tables as figures, for the book and the group-meeting slides (e.g. the leakage table).

table = diagnostics.leakage_table(results)
plots.table_figure(table, ["row", "name", "auc_text"], "Leakage checks", headers=["", "Input", "AUC"])
"""

from __future__ import annotations

from collections.abc import Sequence

from ..formatting import table_cells
from . import style


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

    `rows` dicts or sequences (see `formatting.table_cells`: numbers by the book's one rule); `headers` the
    printed column names (default the column keys); None and NaN cells show as a dash.
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
