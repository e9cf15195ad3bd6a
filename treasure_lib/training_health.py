"""Did a model finish learning? Judged from its validation loss per epoch, before any of its numbers are quoted.

A model is `converged` when early stopping fired (its best epoch lies more than `patience` epochs before the end,
so the epoch budget did not cut it short while still improving) and its best validation loss is clearly below the
class-prior entropy (a model that learnt nothing but the class fractions scores exactly that). Comparing two
models of which one stopped mid-descent measures the budget, not the method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import MetricInputError


def prior_entropy(class_weights) -> float:
    """Entropy in nats of the class fractions w_k / sum(w): the validation cross-entropy of a model that predicts
    only the class prior. Pass the class weights as the loss sees them (after any class balancing), so that
    balanced classes give ln(n_classes)."""
    w = np.asarray(class_weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise MetricInputError(
            f"class_weights must be finite, non-negative per-class totals with a positive sum, got {w.tolist()}"
        )
    fractions = w[w > 0] / w.sum()
    return float(-np.sum(fractions * np.log(fractions)))


def stalled(val_losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    """The plateau rule early stopping and `health` share: the last `patience` epochs improved the best loss of the
    epochs before them by less than the fraction `min_delta` of it (0: by nothing). Fewer epochs: not stalled."""
    losses = np.asarray(val_losses, dtype=np.float64).reshape(-1)
    if losses.size <= patience or not np.isfinite(losses).all():
        return False
    before, last = losses[: losses.size - patience].min(), losses[losses.size - patience :].min()
    return bool(last > before - min_delta * abs(before) or (min_delta == 0 and last >= before))


def health(
    val_losses: Sequence[float],
    patience: int,
    *,
    prior_entropy: float | None = None,
    margin: float = 0.02,
    min_delta: float = 0.0,
) -> dict:
    """best_epoch (0-based, first on ties), epochs_run, early_stopped (`stalled`: with min_delta 0, best_epoch <
    epochs_run - patience; with min_delta > 0, the last `patience` epochs gained less than that fraction),
    best_val_loss, prior_entropy (NaN when not given), below_prior (best < (1 - margin) * prior; True without a
    prior), converged (early_stopped and below_prior), patience, and `problem` (why nothing can be judged: no
    epoch, or a non-finite loss; "" otherwise). A problem makes converged False."""
    losses = np.asarray(val_losses, dtype=np.float64).reshape(-1)
    if isinstance(patience, bool) or not (float(patience).is_integer() and patience >= 0):
        raise MetricInputError(f"patience must be a non-negative whole number of epochs, got {patience!r}")
    patience = int(patience)
    if not 0.0 <= margin < 1.0:
        raise MetricInputError(f"margin must be a fraction in [0, 1), got {margin}")
    prior = float("nan") if prior_entropy is None else float(prior_entropy)
    if prior_entropy is not None and not (math.isfinite(prior) and prior >= 0):
        raise MetricInputError(f"prior_entropy must be a finite entropy >= 0 in nats, got {prior_entropy}")
    finite = np.isfinite(losses)
    problem = (
        "no validation loss was recorded"
        if losses.size == 0
        else f"its validation loss is not finite at epoch {int(np.argmin(finite))}"
        if not finite.all()
        else ""
    )
    best_epoch = int(np.argmin(np.where(finite, losses, np.inf))) if finite.any() else -1
    best = float(losses[best_epoch]) if best_epoch >= 0 else float("nan")
    early_stopped = bool(
        not problem
        and (best_epoch < losses.size - patience if min_delta == 0 else stalled(losses, patience, min_delta))
    )
    below_prior = bool(prior_entropy is None or best < (1.0 - margin) * prior)
    return {
        "best_epoch": best_epoch,
        "epochs_run": int(losses.size),
        "early_stopped": early_stopped,
        "best_val_loss": best,
        "prior_entropy": prior,
        "below_prior": below_prior,
        "patience": int(patience),
        "converged": bool(not problem and early_stopped and below_prior),
        "problem": problem,
    }


def reason(health: dict) -> str:
    """Why a model did not converge, as one short phrase for the book ("" when it did): a recording problem first,
    then a loss that never left the class prior, then a model still improving when its epochs ran out."""
    if health["problem"]:
        return health["problem"]
    if not health["below_prior"]:
        return (
            f"never left the class prior: validation loss {health['best_val_loss']:.3f} "
            f"vs prior entropy {health['prior_entropy']:.3f}"
        )
    if not health["early_stopped"]:
        return (
            f"still improving: its best epoch ({health['best_epoch'] + 1}, counted from 1) "
            f"is among the last {health['patience']} "
            f"of {health['epochs_run']}"
        )
    return ""


def metric_items(prefix: str, health: dict) -> dict[str, float]:
    """The metrics.json entries: <prefix>.converged (1.0 / 0.0), .early_stopped and .left_prior (its two parts),
    .best_epoch, .epochs_run, .best_val_loss and, when known, .prior_entropy."""
    out = {
        f"{prefix}.converged": 1.0 if health["converged"] else 0.0,
        f"{prefix}.early_stopped": 1.0 if health["early_stopped"] else 0.0,
        f"{prefix}.left_prior": 1.0 if health["below_prior"] else 0.0,
        f"{prefix}.best_epoch": float(health["best_epoch"]),
        f"{prefix}.epochs_run": float(health["epochs_run"]),
        f"{prefix}.best_val_loss": float(health["best_val_loss"]),
    }
    if math.isfinite(health["prior_entropy"]):
        out[f"{prefix}.prior_entropy"] = float(health["prior_entropy"])
    return out


def unconverged(metrics: Mapping) -> list[str]:
    """The models of a run's metrics.json that did not finish learning (their `<prefix>.converged` is 0)."""
    return sorted(
        k[: -len(".converged")]
        for k, v in metrics.items()
        if k.endswith(".converged") and v is not None and float(v) != 1.0
    )
