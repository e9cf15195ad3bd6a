"""Anomaly scores for held-out samples beyond the standard model, their baselines and their statistics.

    nll = anomaly.masked_pseudo_nll(pretrained, token_rows)["nll"]           # the pretrained model's score
    reco = anomaly.reconstruction_error(feature_rows, decoded_rows)           # the tokenizer's own error
    model, info = anomaly.train_autoencoder(train_rows, val_rows, hidden=anomaly.matched_hidden(...), ...)
    boot = metrics.paired_bootstrap(anomaly.anomaly_statistics, labels, weights, {score: [per-seed scores]})
    anomaly.wording.signal_verdict("the dark shower", {score: boot.summary(score), ...}, supervised=...)

Higher scores are more anomalous. Pure functions and small models: nothing here reads params or writes a run.
"""

from importlib import import_module

from . import wording
from .metrics import (
    MIN_SM_AT_CUT,
    SM_EFFICIENCIES,
    MatchedWeights,
    anomaly_statistics,
    matched_weights,
    signal_efficiency_at,
)
from .positions import multiplicity, object_positions
from .reconstruction import reconstruction_error

# the torch-based parts load on first use, so the names and sentences (`wording`) stay light for the book's pages
_TORCH = {
    "ObjectAutoencoder": "autoencoder",
    "autoencoder_scores": "autoencoder",
    "matched_hidden": "autoencoder",
    "train_autoencoder": "autoencoder",
    "masked_pseudo_nll": "masked_likelihood",
}


def __getattr__(name: str):
    if name in _TORCH:
        return getattr(import_module(f".{_TORCH[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MIN_SM_AT_CUT",
    "SM_EFFICIENCIES",
    "MatchedWeights",
    "ObjectAutoencoder",
    "anomaly_statistics",
    "autoencoder_scores",
    "masked_pseudo_nll",
    "matched_hidden",
    "matched_weights",
    "multiplicity",
    "object_positions",
    "reconstruction_error",
    "signal_efficiency_at",
    "train_autoencoder",
    "wording",
]
