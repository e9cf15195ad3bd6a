"""Anomaly scores for held-out samples beyond the standard model, their baselines and their statistics.

    nll = anomaly.masked_pseudo_nll(pretrained, token_rows)["nll"]           # the pretrained model's score
    reco = anomaly.reconstruction_error(feature_rows, decoded_rows)           # the tokenizer's own error
    model, info = anomaly.train_autoencoder(train_rows, val_rows, hidden=anomaly.matched_hidden(...), ...)
    boot = metrics.paired_bootstrap(anomaly.anomaly_statistics, labels, weights, {score: [per-seed scores]})
    anomaly.wording.signal_verdict("the dark shower", {score: boot.summary(score), ...}, supervised=...)

Higher scores are more anomalous. Pure functions and small models: nothing here reads params or writes a run.
"""

from . import wording
from .autoencoder import ObjectAutoencoder, autoencoder_scores, matched_hidden, train_autoencoder
from .masked_likelihood import masked_pseudo_nll
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
