"""TREASURE: tokenization of collision data, as a tested library behind a study book."""

__version__ = "0.1.0"
