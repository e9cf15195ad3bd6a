"""Training histories from Lightning's CSV logs (`<folder>/logs/version_<n>/metrics.csv`), per epoch.

Lightning's CSVLogger writes one row per logged step or epoch, with empty cells for the metrics not
logged in that row (`epoch,step,train/loss,...,val/loss`). Chapters want curves per epoch: a step
metric is averaged over its epoch's steps, an epoch metric (one row per epoch) is its value.

    curves = read_history(cards / "tracks")        # {"train/loss": (epochs, values), "val/loss": ...}
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

NOT_METRICS = ("epoch", "step")


def latest_metrics_csv(folder: str | Path) -> Path | None:
    """The newest `metrics.csv` of a training folder (or of its `logs/`), by version number; None when there is none.
    `folder` may also be the CSV itself."""
    folder = Path(folder)
    if folder.is_file():
        return folder
    for root in (folder / "logs", folder):
        found = [p for p in root.glob("version_*/metrics.csv") if re.fullmatch(r"version_\d+", p.parent.name)]
        if found:
            return max(found, key=lambda p: int(p.parent.name.split("_")[1]))  # version_10 after version_9
    return None


def epoch_means(
    rows: Iterable[Mapping[str, str]], columns: Iterable[str] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{column: (epochs, mean per epoch)} from CSV rows (dicts of strings, empty where not logged).

    Every metric column (not `epoch` / `step`) unless `columns` names some; a column never logged is left out.
    Epochs come sorted; values are float64."""
    wanted = None if columns is None else list(columns)
    sums: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        epoch = row.get("epoch")
        if epoch in (None, ""):
            continue
        for key, value in row.items():
            if key in NOT_METRICS or value in (None, "") or (wanted is not None and key not in wanted):
                continue
            sums.setdefault(key, {}).setdefault(int(float(epoch)), []).append(float(value))
    order = wanted if wanted is not None else sorted(sums)
    return {
        k: (
            np.array(sorted(sums[k]), dtype=np.int64),
            np.array([np.mean(sums[k][e]) for e in sorted(sums[k])], dtype=np.float64),
        )
        for k in order
        if k in sums
    }


def read_history(folder: str | Path, columns: Iterable[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`epoch_means` of the newest Lightning `metrics.csv` of a training folder ({} when it has none)."""
    path = latest_metrics_csv(folder)
    if path is None:
        return {}
    with open(path, newline="") as handle:
        return epoch_means(csv.DictReader(handle), columns)
