"""The first baseline: the tokenizer's own reconstruction error, how far an event's decoded tokens lie from its
scaled features.

A tokenizer fitted on standard-model objects reconstructs them well; objects unlike any it was fitted on land far
from every code. A row's score is the mean over its object positions of the squared Euclidean distance between the
decoded and the original scaled features (sum over the feature columns; a column another collection owns is zero on
both sides and adds nothing). Rows of the features and the decoded files must be the same events in the same order,
checked by their identities where the files carry them.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError
from .positions import object_positions

IDENTITY_COLUMNS = ("source_file", "event_number")


def check_aligned(a: dict, b: dict, what: str = "features and decoded rows") -> None:
    """Raise InputFileError unless rows `a` and `b` are the same events in the same order: the same number of rows,
    equal `source_file` / `event_number` where both carry them, the same `mask` and `type_ids`."""
    n_a, n_b = len(a["mask"]), len(b["mask"])
    if n_a != n_b:
        raise InputFileError(f"{what}: {n_a} and {n_b} rows; expected the same events (read both with read_split)")
    for key in IDENTITY_COLUMNS:
        if key in a and key in b:
            left, right = np.asarray(a[key]), np.asarray(b[key])
            differ = np.flatnonzero(left != right)
            if differ.size:
                i = int(differ[0])
                raise InputFileError(
                    f"{what} are not the same events: {differ.size} rows differ in {key}, the first at row {i} "
                    f"({left[i].tolist()!r} vs {right[i].tolist()!r}); read both exports of one sample, in the "
                    "same file order"
                )
    for key in ("mask", "type_ids"):
        if np.shape(a[key]) != np.shape(b[key]) or not np.array_equal(a[key], b[key]):
            raise InputFileError(f"{what}: their {key} differ; expected the same positions in both exports")


def reconstruction_error(features_rows: dict, decoded_rows: dict) -> np.ndarray:
    """Per row, float64 [N]: the mean over its object positions of |decoded - original|^2 of the scaled features
    (0 for a row without objects). Both dicts hold `features` [N, L, F], `mask`, `type_ids` (read_split of the
    *.features.parquet and *.decoded.parquet files); misaligned rows raise InputFileError naming the mismatch."""
    for name, rows in (("features", features_rows), ("decoded", decoded_rows)):
        if "features" not in rows:
            raise InputFileError(f"{name} rows without 'features': read the *.{name}.parquet files with read_split")
    check_aligned(features_rows, decoded_rows)
    original = np.asarray(features_rows["features"], dtype=np.float64)
    decoded = np.asarray(decoded_rows["features"], dtype=np.float64)
    if original.shape != decoded.shape:
        raise InputFileError(f"features {original.shape} and decoded {decoded.shape}: expected the same [N, L, F]")
    objects = object_positions(features_rows)
    squared = np.where(objects, ((decoded - original) ** 2).sum(axis=-1), 0.0)  # padding may hold anything
    count = objects.sum(axis=1)
    return np.divide(squared.sum(axis=1), count, out=np.zeros(len(count)), where=count > 0)
