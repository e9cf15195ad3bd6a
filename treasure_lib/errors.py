"""Errors a user can act on: each names the file, collection, feature or key at fault."""


class TreasureError(Exception):
    """Base class: everything the library raises on purpose."""


class ConfigError(TreasureError, ValueError):
    """A parameter file or override is malformed, unknown or of the wrong type."""


class InputFileError(TreasureError, ValueError):
    """An input H5 file is missing, unreadable, or does not hold what a collection expects."""


class MetricInputError(TreasureError, ValueError):
    """Arrays given to a metric disagree in length, hold NaN, or leave a class without weight."""


class LeakageError(TreasureError, ValueError):
    """A split overlap, a label proxy among model inputs, or sequence arrays that do not fit."""


class CodebookInputError(TreasureError, ValueError):
    """Code indices that cannot belong to the codebook they are measured against."""
