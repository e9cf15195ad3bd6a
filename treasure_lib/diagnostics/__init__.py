"""Diagnostics of tokens and of the data around them: codebook health, leakage checks and label proxies.

    health = diagnostics.codebook_health(track_indices, codebook_size=512)
    table = diagnostics.leakage_table({"multiplicity": mult["summary"], "tokens": tokens_summary})
    print(diagnostics.leakage_verdict(table))

Results are plain dicts with short keys; the caller adds the metrics.json prefix
(`codebook.tracks.level_0.utilization`).
"""

from .codebook import (
    CodebookInputError,
    codebook_health,
    level_usage,
    reencode_agreement,
    reencode_fraction,
    scalar_summary,
)
from .label_proxies import LABEL_PROXIES, check_no_label_proxy
from .leakage import (
    LEAKAGE_ROWS,
    N_SPECIAL,
    LeakageError,
    constant_per_type,
    leakage_table,
    leakage_verdict,
    multiplicity_classifier,
    multiplicity_features,
    shuffle_within_type,
)

__all__ = [
    "LABEL_PROXIES",
    "LEAKAGE_ROWS",
    "N_SPECIAL",
    "CodebookInputError",
    "LeakageError",
    "check_no_label_proxy",
    "codebook_health",
    "constant_per_type",
    "leakage_table",
    "leakage_verdict",
    "level_usage",
    "multiplicity_classifier",
    "multiplicity_features",
    "reencode_agreement",
    "reencode_fraction",
    "scalar_summary",
    "shuffle_within_type",
]
