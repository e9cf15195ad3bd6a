"""The default studies' own answers (read from the runs `make book` leaves in runs/): every trained model finished
learning. On a fresh clone before `make book` there is nothing to read and the test says so (skip); CI builds the
book's tiny twins instead (test_study_book.py)."""

from __future__ import annotations

import json

import pytest

from treasure_lib.training_health import unconverged

from .conftest import ROOT

RUNS = {"jets": ROOT / "runs" / "jets" / "default", "events": ROOT / "runs" / "events" / "events"}


@pytest.mark.parametrize("study", sorted(RUNS))
def test_every_model_of_the_default_study_finished_learning(study):
    path = RUNS[study] / "metrics.json"
    if not path.is_file():
        pytest.skip(f"{path} does not exist: run `make book` to check the default {study} study")
    metrics = json.loads(path.read_text())
    flags = [k for k in metrics if k.endswith(".converged")]
    assert len(flags) >= 10, f"{path}: only {len(flags)} convergence flags recorded"
    assert not unconverged(metrics), f"{path}: did not finish learning: {unconverged(metrics)}"


def test_unconverged_models_are_found_by_their_flag():
    assert unconverged({"classify.f.tokens.converged": 1.0, "pretrain.converged": 0.0, "x.auc": 0.5}) == ["pretrain"]
