"""Display helpers for chapters: the one number formatter, tables as Markdown, and `show`.

One rule for every number the book prints, so a metric reads the same in every chapter:
with an uncertainty, the uncertainty is rounded to two significant figures and the value to the
same decimal place (`0.851 ± 0.021`, `20.7 ± 2.0`, `1230 ± 160`); without one, three significant
figures (integers stay integers); undefined numbers are an em dash and infinities `∞`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

DASH = "\u2014"
INFINITY = "\u221e"
SIGNIFICANT = 3  # figures of a number without an uncertainty
ERR_SIGNIFICANT = 2  # figures of an uncertainty
FIXED_RANGE = (1e-4, 1e6)  # magnitudes written in fixed notation; outside it, scientific


def _number(x) -> float | None:
    """A finite or infinite float, or None for what is not a number or is NaN."""
    if x is None or isinstance(x, (bool, np.bool_, str, bytes)):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _exponent(x: float) -> int:
    return int(math.floor(math.log10(abs(x))))


def _decimals(x: float, figures: int) -> int:
    """Decimal place that keeps `figures` significant figures of x (after rounding, 9.96 -> 10 has one more digit)."""
    d = figures - 1 - _exponent(x)
    rounded = round(x, d)
    if rounded != 0 and _exponent(rounded) > _exponent(x):
        d -= 1
    return d


def _fixed(x: float, decimals: int) -> str:
    text = f"{round(x, decimals):.{max(decimals, 0)}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def _in_fixed_range(x: float) -> bool:
    return x == 0 or FIXED_RANGE[0] <= abs(x) < FIXED_RANGE[1]


def fmt(value, err=None) -> str:
    """A number as the book prints it: `fmt(0.8512, 0.0213)` -> '0.851 ± 0.021', `fmt(1234.5, 156)` -> '1230 ± 160',
    `fmt(0.8512)` -> '0.851', `fmt(22526)` -> '22526'; None / NaN -> '—', inf -> '∞'. Anything else is shown as text."""
    x = _number(value)
    if x is None:
        return DASH if value is None or isinstance(value, (float, np.floating)) else str(value)
    if math.isinf(x):
        return INFINITY if x > 0 else f"-{INFINITY}"
    e = _number(err)
    if e is None:
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        if x == 0:
            return "0"
        if not _in_fixed_range(x):
            return f"{x:.{SIGNIFICANT - 1}e}"
        return _fixed(x, _decimals(x, SIGNIFICANT))
    e = abs(e)
    if math.isinf(e):
        return f"{fmt(value)} ± {INFINITY}"
    if e == 0:
        return f"{fmt(value)} ± 0"
    scale = max(abs(x), e)
    if not _in_fixed_range(scale):  # (1.23 ± 0.05)e-07: the same rule on the mantissas
        power = _exponent(scale)
        return f"({fmt(x / 10**power, e / 10**power)})e{power:+03d}"
    d = _decimals(e, ERR_SIGNIFICANT)
    return f"{_fixed(x, d)} ± {_fixed(e, d)}"


def _cell(v) -> str:
    """A table cell: numbers through `fmt`, (value, err) pairs as 'value ± err', None as a dash, text escaped."""
    if isinstance(v, tuple) and len(v) == 2:
        return fmt(*v)
    if v is None:
        return DASH
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return fmt(v)
    return str(v).replace("|", "\\|")


def markdown_table(rows: Iterable[Mapping], columns: Sequence[str] | None = None) -> str:
    """Rows (dicts) as a Markdown table; columns default to the first row's keys. Numbers through `fmt`."""
    rows = list(rows)
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dataclass
class ChapterReport:
    """What a chapter shows, computed by the library: its paragraphs, its tables (rows of display dicts, each with
    a caption), the arrays its figures need (keyword arguments of a `treasure_lib.plots` function, file name
    included) and the metrics it logged. The chapter only puts them on the page."""

    text: dict[str, str] = field(default_factory=dict)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    figures: dict[str, dict] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> str:
        """One table as Markdown, its caption above it."""
        caption = self.captions.get(name, "")
        return (caption + "\n\n" if caption else "") + markdown_table(self.tables[name])


def show(text: str) -> None:
    """Display Markdown in a notebook (print outside one)."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover
        print(text)
