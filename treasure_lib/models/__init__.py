"""The foundation-model half: the sequence backbone, masked-token and next-token pretraining, sampling and
classifiers."""

from .backbone import BackboneConfig, SequenceBackbone, count_parameters, pool, raw_config_matching
from .classifier import MODES, SequenceClassifier, load_backbone_state
from .masking import mask_flat, mask_objects, range_lookup
from .next_token import NextTokenModel, sequence_nll
from .pretrain import MaskedTokenModel

__all__ = [
    "BackboneConfig",
    "SequenceBackbone",
    "count_parameters",
    "pool",
    "raw_config_matching",
    "MODES",
    "SequenceClassifier",
    "load_backbone_state",
    "mask_flat",
    "mask_objects",
    "range_lookup",
    "MaskedTokenModel",
    "NextTokenModel",
    "sequence_nll",
]
