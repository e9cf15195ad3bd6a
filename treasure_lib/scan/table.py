"""A scan's table: one row per point (`summary.parquet`, `summary.csv` in the scan folder).

A row holds the point's id, state, wall time and error, one column per axis, its headline classifier numbers
(AUC, and light rejection at 77% for flavour), its tokenizer training time and export speed, and the documented
metric keys the scan's `metrics` patterns select. The figures (`figures`) and the page (`page`) read these rows.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from pathlib import Path

from .. import metric_keys
from ..runs import atomic
from .points import Point, expand, state
from .spec import Scan


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


def number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def number_or(value, default: float) -> float:
    """A row's number, or `default` where it is missing (so min/max skip it)."""
    x = number(value)
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
