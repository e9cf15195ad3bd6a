"""Label proxies: a model input that names the sample (by its name, or by what it explains) is refused."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.diagnostics.label_proxies import PROXY_THRESHOLD, check_no_label_proxy, proxy_scores
from treasure_lib.errors import LeakageError


def test_label_proxies_among_inputs_are_refused():
    assert check_no_label_proxy(["tokens", "type_ids", "mask"]) == ["tokens", "type_ids", "mask"]
    for bad in ("source_file", "process", "dsid", "event_index", "event_number", "HadronConeExclTruthLabelID"):
        with pytest.raises(LeakageError, match=bad):
            check_no_label_proxy(["tokens", bad])
    with pytest.raises(LeakageError, match="higgs_mass"):
        check_no_label_proxy(["tokens", "higgs_mass"], truth_columns=["higgs_mass"])


def test_a_bookkeeping_column_is_a_label_proxy_and_physics_is_not():
    """Per model input: does it tell the sample apart beyond what the label explains? A column that names the sample
    does (score ~1); an overlapping physics variable and a high-cardinality random code do not."""
    rng = np.random.default_rng(0)
    n = 6000
    sample = rng.choice(["ttbar", "zprime", "qcd"], n)
    label = rng.integers(0, 3, n)
    per_sample = {"ttbar": 567.0, "zprime": 1.5, "qcd": 2.4e7}
    scores = proxy_scores(
        {
            "cross section": np.array([per_sample[s] for s in sample]),
            "jet pT": rng.normal(np.where(sample == "zprime", 1.0, 0.0), 1.0),
            "a code": rng.integers(0, 512, n),
        },
        sample,
        label,
    )
    assert scores["cross section"] > 0.95 > PROXY_THRESHOLD > scores["jet pT"] > 0.02
    assert scores["a code"] < 0.05, "many cells with few rows must not look predictive (held-out estimate)"
