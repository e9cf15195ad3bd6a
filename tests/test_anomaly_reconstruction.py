"""The tokenizer's reconstruction error as an anomaly score: values worked out by hand, and rows of two exports
that are not the same events are refused."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.anomaly import reconstruction_error
from treasure_lib.errors import InputFileError


def _rows():
    """Two events: [CLS] two objects [SEP] and [CLS] one object [SEP] PAD; F = 2."""
    features = np.zeros((2, 4, 2), np.float32)
    features[0, 1], features[0, 2] = [1.0, 2.0], [0.0, -1.0]
    features[1, 1] = [3.0, 0.0]
    features[1, 3] = [99.0, 99.0]  # padding: never read
    type_ids = np.array([[0, 1, 2, 0], [0, 1, 0, 0]])
    mask = np.array([[True, True, True, True], [True, True, True, False]])
    identity = {"event_number": np.array([10, 11]), "source_file": np.array(["a", "a"])}
    common = {"type_ids": type_ids, "mask": mask, **identity}
    decoded = features.copy()
    decoded[0, 1], decoded[0, 2] = [1.5, 2.0], [0.0, 1.0]  # squared distances 0.25 and 4
    decoded[1, 1] = [2.0, 1.0]  # 1 + 1 = 2
    decoded[:, 0] = 7.0  # CLS: not an object
    return {"features": features, **common}, {"features": decoded, **common}


def test_reconstruction_error_is_the_mean_squared_distance_over_objects():
    original, decoded = _rows()
    np.testing.assert_allclose(reconstruction_error(original, decoded), [(0.25 + 4.0) / 2, 2.0])


def test_a_row_without_objects_scores_zero():
    original, decoded = _rows()
    for rows in (original, decoded):
        rows["type_ids"] = rows["type_ids"].copy()
        rows["type_ids"][1] = 0
    assert reconstruction_error(original, decoded)[1] == 0.0


def test_rows_of_other_events_are_refused_naming_the_mismatch():
    original, decoded = _rows()
    with pytest.raises(InputFileError, match=r"event_number, the first at row 1 \(11 vs 12\)"):
        reconstruction_error(original, {**decoded, "event_number": np.array([10, 12])})
    with pytest.raises(InputFileError, match="source_file"):
        reconstruction_error(original, {**decoded, "source_file": np.array(["a", "b"])})
    with pytest.raises(InputFileError, match="1 and 2 rows"):
        reconstruction_error({k: v[:1] for k, v in original.items()}, decoded)
    with pytest.raises(InputFileError, match="mask differ"):
        reconstruction_error(original, {**decoded, "mask": ~decoded["mask"]})
