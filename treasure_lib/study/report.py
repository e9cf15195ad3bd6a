"""Small display helpers for chapters: tables as Markdown, numbers formatted with their uncertainties."""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence


def fmt(value, err=None, digits: int = 3) -> str:
    """`0.912 ± 0.004`; NaN/None as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if err is None or (isinstance(err, float) and not math.isfinite(err)):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g} ± {err:.2g}"


def markdown_table(rows: Iterable[Mapping], columns: Sequence[str] | None = None, digits: int = 3) -> str:
    rows = list(rows)
    columns = list(columns or (rows[0].keys() if rows else []))
    cell = lambda v: fmt(v, digits=digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else (  # noqa: E731
        "—" if v is None else str(v))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def show(text: str) -> None:
    """Display Markdown in a notebook (print outside one)."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover
        print(text)
