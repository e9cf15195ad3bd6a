"""Classifiers trained side by side in worker processes come out exactly as when trained one after another."""

from __future__ import annotations

from pathlib import Path

import pytest

from treasure_lib.runs.folder import Run
from treasure_lib.study import stages

from .test_datamodules import token_files  # noqa: F401  (the module fixture)


def _run(token_files, folder, jobs):  # noqa: F811
    params, tokens, _ = token_files
    p = params.replace(
        model={"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
        classify={
            "tasks": {"t": {"classes": {"bkg": ["events_zz", "events_top"], "sig": ["events_sig", "events_qcd"]}}},
            "task": "t",
            "jobs": jobs,
            "train": {"max_epochs": 2, "batch_size": 64, "limit_train_batches": 4, "progress_bar": False},
        },
    )

    return Run(folder, p), Path(tokens[0]).parent


def test_parallel_and_sequential_training_give_identical_numbers(token_files, tmp_path):  # noqa: F811
    jobs = [dict(seed=s, classify={"task": "t"}) for s in (1, 2)]
    parallel, token_dir = _run(token_files, tmp_path / "parallel", 2)
    alone, _ = _run(token_files, tmp_path / "alone", 2)
    both = stages.classifiers(parallel, [dict(j, token_dir=token_dir) for j in jobs])
    one_by_one = [stages.classifier(alone, token_dir=token_dir, **j) for j in jobs]
    drop = lambda m: {k: v for k, v in m.items() if not k.endswith("train_seconds")}  # noqa: E731
    assert [drop(m) for m in both] == [drop(m) for m in one_by_one]
    assert both[0]["classify.t.tokens.seed_1.auc"] != both[1]["classify.t.tokens.seed_2.auc"], "seeds differ"
    assert len(list((tmp_path / "parallel" / "artifacts").glob("classify-*-s*.stage.json"))) == 2


def _note_pid(job: tuple) -> bool:
    """A worker's job: write the worker's process id into the file the job names."""
    import os

    Path(job[2]).write_text(str(os.getpid()))
    return True


def test_the_worker_processes_serve_every_round_of_a_chapter(token_files, tmp_path):  # noqa: F811
    """A chapter asks for stages side by side several times: its workers start once (each start imports torch),
    not once per round, and a round mixes kinds of job, each naming the function that builds it."""
    from treasure_lib.study import workers

    run, _ = _run(token_files, tmp_path / "run", 2)
    seen = []
    for round_ in range(2):
        files = [tmp_path / f"round{round_}-job{i}.pid" for i in range(4)]
        workers.side_by_side(run, "noting process ids", [(_note_pid, str(f)) for f in files])
        seen.append({int(f.read_text()) for f in files})
    assert seen[0] == seen[1] and 1 <= len(seen[0]) <= 2
    import os

    assert os.getpid() not in seen[0]


def _note_sigint(job: tuple) -> bool:
    """A worker's job: write whether the worker handles SIGINT with `workers._on_interrupt`."""
    import signal

    from treasure_lib.study import workers

    Path(job[2]).write_text(str(signal.getsignal(signal.SIGINT) is workers._on_interrupt))
    return True


def test_an_interrupt_stops_a_workers_job_and_leaves_an_idle_worker_alone(token_files, tmp_path, monkeypatch):  # noqa: F811
    """The kernel's shutdown interrupts the whole process group: idle workers printed a KeyboardInterrupt traceback
    into make book's log at the end of every chapter. An idle worker now ignores SIGINT (it ends with its parent);
    one building a job stops it, as the user who interrupted the chapter wants."""
    from treasure_lib.study import workers

    run, _ = _run(token_files, tmp_path / "run", 2)
    files = [tmp_path / f"job{i}.sigint" for i in range(2)]
    workers.side_by_side(run, "noting the SIGINT handler", [(_note_sigint, str(f)) for f in files])
    assert [f.read_text() for f in files] == ["True", "True"]
    monkeypatch.setattr(workers, "_BUSY", False)
    assert workers._on_interrupt(2, None) is None
    monkeypatch.setattr(workers, "_BUSY", True)
    with pytest.raises(KeyboardInterrupt):
        workers._on_interrupt(2, None)
