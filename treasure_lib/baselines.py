"""Physics baselines that a token classifier must be compared with.

Why: a classifier on tokens only means something next to what physicists already do with the same events.
Two baselines of H -> ZZ* -> 4l against ZZ*: the cut-based analysis (an m4l window, written as a score so that
scanning the window width traces its ROC) and a gradient-boosted classifier on the classic high-level variables
(`treasure_lib.higgs4l.VARIABLES`: m12, m34, m4l, pt4l, eta4l and the five decay angles). Both take arrays and
return arrays; the split (train / val / test) is the study's, never an internal random one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import ConfigError
from .higgs4l import VARIABLES

CLASSIC_FEATURES = VARIABLES
NO_QUADRUPLET_SCORE = -1.0e4  # GeV: below every event with a four-lepton mass, so they come last in the ROC


def mass_window_score(m4l_gev: np.ndarray, m_h: float = 125.0) -> np.ndarray:
    """-|m4l - m_H| [GeV]: an event passes the window m_H +- w exactly when its score is >= -w.

    Events without a quadruplet (NaN) score `NO_QUADRUPLET_SCORE`, so every score is finite.
    """
    m4l = np.asarray(m4l_gev, dtype=np.float64)
    return np.where(np.isfinite(m4l), -np.abs(m4l - m_h), NO_QUADRUPLET_SCORE)


def _matrix(rows: Mapping[str, np.ndarray], features: Sequence[str], part: str) -> tuple:
    need = list(features) + ["label", "weight"]
    missing = [k for k in need if k not in rows]
    if missing:
        raise ConfigError(
            f"gradient_boosted: the {part} rows lack {missing}; expected a dict of arrays with {', '.join(need)}"
        )
    n = len(rows["label"])
    bad = [k for k in need if len(rows[k]) != n]
    if bad:
        raise ConfigError(f"gradient_boosted: in the {part} rows, {bad} do not have one value per row ({n})")
    x = np.stack([np.asarray(rows[f], dtype=np.float64) for f in features], axis=1)
    return x, np.asarray(rows["label"]).astype(np.int64), np.asarray(rows["weight"], dtype=np.float64)


def gradient_boosted(
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    test: Mapping[str, np.ndarray],
    features: Sequence[str] = CLASSIC_FEATURES,
    *,
    seed: int,
    max_iter: int = 500,
    learning_rate: float = 0.1,
    n_iter_no_change: int = 20,
    n_threads: int | None = None,
    **hyper,
) -> dict:
    """A scikit-learn `HistGradientBoostingClassifier` on `features`, trained on the train rows with their weights
    and early-stopped on the validation rows (their weights too), evaluated on the test rows.

    Each part is a dict of arrays holding the features, `label` (0 / 1, or class indices) and `weight`.
    NaN features (events without a quadruplet) are the trees' missing values. Returns `test_score` (P(label 1);
    [n, C] probabilities for more classes), `n_iter` (boosting iterations used), `early_stopped` (the validation
    loss stopped improving before `max_iter`), `validation_loss` (per iteration) and the fitted `model`.
    `n_threads` caps the OpenMP threads (None: all cores); it changes how fast, never the result.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    if not features:
        raise ConfigError("gradient_boosted needs at least one feature")
    x_train, y_train, w_train = _matrix(train, features, "train")
    x_val, y_val, w_val = _matrix(val, features, "validation")
    x_test, _, _ = _matrix(test, features, "test")
    if len(np.unique(y_train)) < 2:
        raise ConfigError(f"gradient_boosted: the train rows hold only class(es) {np.unique(y_train).tolist()}")
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_iter=max_iter,
        early_stopping=True,
        n_iter_no_change=n_iter_no_change,
        scoring="loss",
        random_state=seed,
        **hyper,
    )
    with threadpool_limits(limits=n_threads, user_api="openmp"):
        model.fit(x_train, y_train, sample_weight=w_train, X_val=x_val, y_val=y_val, sample_weight_val=w_val)
        proba = model.predict_proba(x_test)
    return {
        "test_score": proba[:, 1] if proba.shape[1] == 2 else proba,
        "n_iter": int(model.n_iter_),
        "early_stopped": bool(model.n_iter_ < max_iter),
        "validation_loss": -np.asarray(model.validation_score_),
        "features": list(features),
        "model": model,
    }


__all__ = ["CLASSIC_FEATURES", "NO_QUADRUPLET_SCORE", "mass_window_score", "gradient_boosted"]
