"""Figures of the study book, in one style (mplhep ATLAS; `plots.style.use()`).

Every function takes arrays or the dicts that `metrics` and `diagnostics` return, returns a
matplotlib Figure (made without pyplot: nothing to close), and with `save_to=<dir>` also writes
`<dir>/<name>.png` (110 dpi, tight), e.g. into a run's `figures/`.

    plots.roc_curves({"tokens": (y, score, w)}, save_to=run / "figures")
    plots.residuals({"pt": d_pt / 1e3}, units={"pt": "GeV"})
    plots.table_figure(diagnostics.leakage_table(results), ["row", "name", "auc_text"])
"""

from . import anomaly, style
from .codebook import codebook_usage, token_frequency
from .performance import (
    from_bins,
    from_points,
    label_efficiency,
    performance_vs_variable,
    rejection_vs_efficiency,
    roc_curves,
    training_curves,
)
from .reconstruction import correlation_2d, distributions, residuals, response_vs_pt
from .samples import by_class
from .tables import table_figure

__all__ = [
    "anomaly",
    "by_class",
    "codebook_usage",
    "correlation_2d",
    "distributions",
    "from_bins",
    "from_points",
    "label_efficiency",
    "performance_vs_variable",
    "rejection_vs_efficiency",
    "residuals",
    "response_vs_pt",
    "roc_curves",
    "style",
    "table_figure",
    "token_frequency",
    "training_curves",
]
