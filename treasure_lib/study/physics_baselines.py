"""The physics baselines of a task, scored on exactly the transformers' test rows.

Why: a token classifier's AUC only means something beside what an analysis does with the same events. For the
test rows of a task, in the order `datamodules.read_split(TokenFiles(token files), task, "test")` gives them (the
order every classifier's `predictions.npz` has, so the scores pair with them row by row), this module returns:
- the cut-based analysis: the m4l window as a score (`baselines.mass_window_score`, binary tasks);
- a gradient-boosted classifier on the classic high-level variables (m12, m34, m4l, pt4l, eta4l, five decay angles),
  trained on the task's train rows and early-stopped on its validation rows, with the task's weights (and class
  balance), so it sees the same events and weights as the transformers.
The variables are the token files' derived columns (`export.derived: [h4l]`), computed once from the input objects.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import baselines
from ..datamodules import TokenFiles, read_split
from ..datamodules import tasks as T
from ..errors import InputFileError

SPLITS = ("train", "val", "test")


def _rows(files: TokenFiles, task: T.Task, split: str, features) -> dict:
    need = list(dict.fromkeys([*features, "m4l"]))
    missing = [f for f in need if f not in files.columns]
    if missing:
        raise InputFileError(
            f"{files.paths[0]}: the physics baselines need column(s) {missing}, which the token files "
            f"lack; export them with export.derived: [h4l]"
        )
    rows = read_split(files, task, split, extra=[*need, "event_number", "process"])
    if not len(rows["label"]):
        raise InputFileError(
            f"task '{task.name}': no {split} rows in {files.paths[0].parent} for the physics baselines"
        )
    return rows


def _loss_weights(task: T.Task, rows: Mapping) -> np.ndarray:
    """The task's physics weights, with every class given the same total when the task balances classes (as the
    transformers' loss does)."""
    w = np.asarray(rows["weight"], dtype=np.float64)
    if not task.balance:
        return w
    return w * T.balance_factors(rows["label"], w, task.n_classes)[rows["label"]]


def scores_from_files(
    files: TokenFiles,
    task: T.Task,
    *,
    seed: int,
    features=baselines.CLASSIC_FEATURES,
    n_threads: int | None = None,
    **hyper,
) -> dict:
    """Baseline scores of `task`'s test rows (see the module docstring). Returns `label`, `weight` (physics weights,
    as the classifiers' predictions carry them), `event_number`, `process`, `mass_window` (binary tasks: -|m4l - m_H|
    [GeV]), `gbdt` (P(signal); [n, C] for more classes) and `gbdt_health` (iterations, early stopping fired, the
    validation loss per iteration, train / val rows)."""
    parts = {s: _rows(files, task, s, features) for s in SPLITS}
    fit = {
        s: {**{f: parts[s][f] for f in features}, "label": parts[s]["label"], "weight": _loss_weights(task, parts[s])}
        for s in SPLITS
    }
    gbdt = baselines.gradient_boosted(
        fit["train"], fit["val"], fit["test"], features, seed=seed, n_threads=n_threads, **hyper
    )
    test = parts["test"]
    out = {
        "label": test["label"],
        "weight": test["weight"],
        "event_number": test["event_number"],
        "process": test["process"],
        "gbdt": gbdt["test_score"],
        "features": list(features),
        "gbdt_health": {
            "n_iter": gbdt["n_iter"],
            "early_stopped": gbdt["early_stopped"],
            "validation_loss": gbdt["validation_loss"],
            "train_rows": len(parts["train"]["label"]),
            "val_rows": len(parts["val"]["label"]),
        },
    }
    if task.binary:
        out["mass_window"] = baselines.mass_window_score(test["m4l"])
    return out


def scores(run, task_name: str) -> dict:
    """`scores_from_files` on the run's token files (built if missing) for `classify.tasks.<task_name>`, seeded by
    `study.seed`."""
    from . import stages

    params = stages.run_params(run)
    task = T.Task.from_params(params.classify, task_name)
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    return scores_from_files(files, task, seed=params["study"]["seed"])


__all__ = ["scores", "scores_from_files"]
