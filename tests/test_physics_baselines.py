"""The physics baselines (m4l window, gradient-boosted classifier) scored on the transformers' own test rows."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import metrics
from treasure_lib.config import section_from
from treasure_lib.datamodules import TokenFiles, read_split
from treasure_lib.datamodules.tasks import Task
from treasure_lib.errors import InputFileError
from treasure_lib.study.physics_baselines import scores_from_files
from treasure_lib.tokenizers.export import export

from .conftest import export_sections
from .test_derived_columns import _file_with_quadruplets
from .test_sequences import _cards, _params


@pytest.fixture(scope="module")
def sr_tokens(tmp_path_factory):
    """H candidates peaked at 125 GeV (sigma 1 GeV) and ZZ* candidates flat across the 115-130 GeV window."""
    tmp = tmp_path_factory.mktemp("baselines")
    rng = np.random.default_rng(5)
    files = [
        _file_with_quadruplets(
            tmp / "data",
            "events_sig",
            700,
            900001,
            0.003,
            masses_gev=np.clip(rng.normal(125.0, 1.0, 600), 116.0, 129.0),
        ),
        _file_with_quadruplets(
            tmp / "data", "events_zz", 700, 900002, 0.008, masses_gev=rng.uniform(116.0, 129.0, 600)
        ),
    ]
    _cards(tmp / "cards", files)
    params = _params(tmp, files, "export.derived=[h4l]", "data.split={train: 0.5, val: 0.2, test: 0.3, salt: 0}")
    results = export(*export_sections(params), progress=False)
    return TokenFiles([r["outputs"][0] for r in results])


def _task(**extra):
    spec = {
        "classes": {"ZZ": ["events_zz"], "H": ["events_sig"]},
        "weights": "cross_section",
        "balance": True,
        "require": ["pass_h4l_sr"],
        **extra,
    }
    return Task.from_params(section_from("classify", {"task": "sr", "tasks": {"sr": spec}}))


def test_baseline_scores_pair_with_the_classifiers_test_rows_row_by_row(sr_tokens):
    out = scores_from_files(sr_tokens, _task(), seed=3, n_threads=1)
    rows = read_split(sr_tokens, _task(), "test", extra=["event_number"])  # what a classifier's predictions hold
    np.testing.assert_array_equal(out["label"], rows["label"])
    np.testing.assert_array_equal(out["event_number"], rows["event_number"])
    np.testing.assert_allclose(out["weight"], rows["weight"])
    assert len(out["gbdt"]) == len(out["mass_window"]) == len(rows["label"]) > 100
    sig = out["process"] == "events_sig"
    np.testing.assert_allclose(out["weight"][sig], 0.003 / 700.0, rtol=1e-6)  # physics weights, never balanced


def test_a_peak_over_a_flat_background_is_found_by_both_baselines(sr_tokens):
    out = scores_from_files(sr_tokens, _task(), seed=3, n_threads=1)
    window = metrics.auc(out["label"], out["mass_window"])
    gbdt = metrics.auc(out["label"], out["gbdt"])
    # |m - 125| of a 1 GeV peak against a flat 13 GeV band: AUC = 1 - E|m - 125| / 6.5 ~ 0.87
    assert 0.8 < window < 0.95 and gbdt > window - 0.05
    health = out["gbdt_health"]
    assert 1 <= health["n_iter"] and isinstance(health["early_stopped"], bool)
    assert health["early_stopped"] == (health["n_iter"] < 500) and len(health["validation_loss"]) >= health["n_iter"]
    assert health["train_rows"] > health["val_rows"] > 0


def test_the_same_seed_gives_the_same_scores(sr_tokens):
    a = scores_from_files(sr_tokens, _task(), seed=3, n_threads=1)
    b = scores_from_files(sr_tokens, _task(), seed=3, n_threads=1)
    np.testing.assert_array_equal(a["gbdt"], b["gbdt"])


def test_token_files_without_the_h4l_columns_are_refused(tmp_path):
    files = [
        _file_with_quadruplets(tmp_path / "data", "events_sig", 60, 900001, 0.003),
        _file_with_quadruplets(tmp_path / "data", "events_zz", 60, 900002, 0.008),
    ]
    _cards(tmp_path / "cards", files)
    plain = export(*export_sections(_params(tmp_path, files, "export.derived=[]")), progress=False)
    with pytest.raises(InputFileError, match=r"physics baselines need column\(s\) \['m12'.*export.derived: \[h4l\]"):
        scores_from_files(TokenFiles([r["outputs"][0] for r in plain]), _task(require=[]), seed=1)
