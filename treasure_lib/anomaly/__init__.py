"""Anomaly scores for held-out samples beyond the standard model, their baselines and their statistics."""

from .autoencoder import ObjectAutoencoder, autoencoder_scores, matched_hidden, train_autoencoder
from .masked_likelihood import masked_pseudo_nll
from .positions import multiplicity, object_positions
from .reconstruction import reconstruction_error

__all__ = [
    "ObjectAutoencoder",
    "autoencoder_scores",
    "masked_pseudo_nll",
    "matched_hidden",
    "multiplicity",
    "object_positions",
    "reconstruction_error",
    "train_autoencoder",
]
