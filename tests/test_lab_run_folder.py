"""The Lab trap: a chapter opened by hand with overrides writes to a run folder of its own, never over the one
`make book` filled (its params.yaml rewritten, its metrics.json moved aside), unless a run_dir is asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from treasure_lib import runs

from .test_runs import CHAPTER_PLOT, make_project


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project(tmp_path / "proj", {"01_plot": CHAPTER_PLOT})
    monkeypatch.chdir(root)
    return root


def test_overrides_by_hand_open_their_own_run_folder_and_leave_the_default_alone(project):
    default = runs.open_run("params/toy.yaml")
    assert default.dir == Path("runs/jets/toy")
    default.log_metrics({"pretrain.loss": 1.0})
    params_before = (project / "runs/jets/toy/params.yaml").read_text()

    explored = runs.open_run("params/toy.yaml", None, ["study.seed=3"])
    assert explored.dir.parent == Path("runs/jets") and explored.dir.name.startswith("toy-")
    assert len(explored.dir.name) == len("toy-") + 8 and explored.seed == 3
    assert (explored.dir / "params.yaml").is_file()
    assert (project / "runs/jets/toy/params.yaml").read_text() == params_before
    assert json.loads((project / "runs/jets/toy/metrics.json").read_text()) == {"pretrain.loss": 1.0}
    assert not (project / "runs/jets/toy/metrics.previous.json").exists()

    assert runs.open_run("params/toy.yaml", None, ["study.seed=3"]).dir == explored.dir  # the next chapter finds it
    assert runs.open_run("params/toy.yaml", None, ["study.seed=4"]).dir != explored.dir


def test_a_run_dir_asked_for_is_used_as_before(project):
    runs.open_run("params/toy.yaml").log_metrics({"pretrain.loss": 1.0})
    chosen = runs.open_run("params/toy.yaml", "runs/jets/toy", ["study.seed=5"])
    assert chosen.dir == Path("runs/jets/toy") and chosen.seed == 5
    assert (project / "runs/jets/toy/metrics.previous.json").is_file()  # on purpose: the folder now holds seed 5


def test_treasure_run_with_overrides_still_writes_its_run_folder(project):
    outcome = runs.execute(
        ["params/toy.yaml"], "runs/jets/toy", overrides=["study.seed=9"], cwd=project, log=lambda _: None
    )
    assert outcome == {"01_plot": "ran"}
    metrics = json.loads((project / "runs/jets/toy/metrics.json").read_text())
    assert metrics["codebook.tracks.level_1.utilization"] == 0.9  # seed 9 / 10: the override reached the chapter
    assert sorted(p.name for p in (project / "runs/jets").iterdir()) == ["toy"]
