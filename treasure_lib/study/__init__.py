"""A study's steps for the chapters: stages (data, cards, tokens, backbone, classifiers), data summary, leakage,
generalisation. Chapters call these and show the results; the analyses themselves live in `diagnostics`,
`metrics` and `training`."""
from . import data, generalisation, leakage, stages

__all__ = ["data", "generalisation", "leakage", "stages"]
