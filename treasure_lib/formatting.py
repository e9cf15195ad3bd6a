"""The one way the project writes a number or a table as text, so a metric reads the same in a chapter, the results
page, a scan page and a figure's table.

Numbers (`fmt`): with an uncertainty, the uncertainty is rounded to two significant figures and the value to the
same decimal place (`0.851 ± 0.021`, `20.7 ± 2.0`, `1230 ± 160`); without one, three significant figures (integers
stay integers); undefined numbers (None, NaN) are an em dash and infinities `∞`. Tables (`table_cells`,
`markdown_table`): every cell through the same rule. A module of its own, importing nothing of the library, so that
metrics, plots, scans and the book can all use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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
    `fmt(0.8512)` -> '0.851', `fmt(22526)` -> '22526'; None / NaN -> '—', inf -> '∞'; an undefined uncertainty
    (None, NaN) is left out. Anything else is shown as text."""
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


def signed(value, err=None) -> str:
    """`fmt` with a '+' before a positive number: a change or a difference (`+0.012`, `-3.1`, `0`)."""
    x = _number(value)
    return ("+" if x is not None and x > 0 else "") + fmt(value, err)


def seed_mean(value, err=None, spread=None, *, err_recorded: bool = False) -> str:
    """A mean over training seeds as every page quotes it: `12.3 ± 1.1 (seed spread 0.80)`, the test-sample
    uncertainty by `fmt` and the spread over seeds in brackets (left out when undefined). `err_recorded`: an
    uncertainty was recorded; one that is not finite (a rejection from a handful of jets: some bootstrap replicas
    let none pass) is then said to be undefined rather than left out."""
    x, e = _number(value), _number(err)
    if x is None:
        return fmt(value)
    if err_recorded and math.isfinite(x) and (e is None or math.isinf(e)):
        text = f"{fmt(value)} ± undefined (too few jets)"
    else:
        text = fmt(value, err)
    s = _number(spread)
    return text + (f" (seed spread {fmt(spread)})" if s is not None and math.isfinite(s) else "")


def cell(value) -> str:
    """A table cell: numbers through `fmt`, (value, err) pairs as 'value ± err', None as a dash, anything else as
    its text."""
    if isinstance(value, tuple) and len(value) == 2:
        return fmt(*value)
    if value is None:
        return DASH
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return fmt(value)
    return str(value)


def table_cells(rows: Sequence, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """(columns, text cells) from rows of dicts (cells looked up by column key, a key a row lacks left empty; columns
    default to the first row's keys) or of sequences (cells by position), every cell through `cell`."""
    rows = list(rows)
    if rows and isinstance(rows[0], Mapping):
        columns = list(columns or rows[0].keys())
        return columns, [[cell(r.get(c, "")) for c in columns] for r in rows]
    width = max((len(r) for r in rows), default=len(columns or ()))
    columns = list(columns) if columns is not None else [str(i) for i in range(width)]
    if any(len(r) != len(columns) for r in rows):
        raise ValueError(f"every row needs {len(columns)} cells (one per column)")
    return columns, [[cell(v) for v in r] for r in rows]


def markdown_table(rows: Sequence, columns: Sequence[str] | None = None) -> str:
    """Rows (dicts, or sequences with `columns` as the header) as a Markdown table; cells as `table_cells` writes
    them, '|' escaped."""
    columns, cells = table_cells(rows, columns)

    def line(texts) -> str:
        return "| " + " | ".join(str(t).replace("|", "\\|") for t in texts) + " |"

    return "\n".join([line(columns), "|" + "---|" * len(columns), *map(line, cells)])
