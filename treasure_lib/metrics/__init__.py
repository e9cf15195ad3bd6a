"""Classifier metrics with uncertainties, for weighted (MC) samples.

    summary = metrics.flavour_summary(labels, probs, weight)        # jets: b / c / light / tau
    summary = metrics.binary_summary(is_signal, score, weight)      # events: signal vs background
    rows = metrics.in_bins(jet_pt / 1e3, [20, 50, 100, 250], fn, labels, probs, weight)

Conventions:
- Every metric takes per-event weights (None = 1). Weights enter as they are, negative ones
  included: weighted sums stay unbiased, curves may step back, and n_eff = (sum w)^2 / sum w^2
  shrinks. A class whose total weight is not positive raises MetricInputError.
- Binary tasks: signal is y_true == 1, everything else background. Equal scores form one ROC
  point (as scikit-learn), so signal-background ties count one half in the AUC.
- Errors: `_err` keys are binomial / Hanley-McNeil with effective numbers of events unless the
  docstring says bootstrap; bootstraps resample events with replacement, deterministic per seed.
- Summaries are flat dicts with short keys (`light_rejection_at_77`); the caller prefixes them
  (`classify.flavour.tokens.`). Working points are named by integer percent.
"""

from . import sample_variables, two_sample
from ._checks import MetricInputError
from .flavour import (
    WORKING_POINTS,
    discriminant_b,
    efficiency_thresholds,
    flavour_rejection_curves,
    flavour_summary,
    passing_fraction,
    rejection_at_efficiency,
)
from .paired import (
    SIGNIFICANCE_THRESHOLD,
    Comparison,
    PairedBootstrap,
    binary_statistics,
    difference_sentence,
    flavour_statistics,
    multiclass_statistics,
    paired_bootstrap,
    significance,
)
from .roc import (
    RankedScores,
    accuracy,
    auc,
    auc_uncertainty,
    bootstrap_auc,
    bootstrap_macro_auc,
    fpr_at_tpr,
    macro_auc,
    one_vs_rest_aucs,
    roc_band,
    roc_curve,
    roc_points,
)
from .summary import binary_summary, in_bins, multiclass_summary
from .uncertainty import binomial_error, bootstrap, hanley_mcneil, n_effective
from .weights import normalise_weights

__all__ = [
    "SIGNIFICANCE_THRESHOLD",
    "WORKING_POINTS",
    "Comparison",
    "MetricInputError",
    "PairedBootstrap",
    "RankedScores",
    "accuracy",
    "auc",
    "auc_uncertainty",
    "binary_statistics",
    "binary_summary",
    "binomial_error",
    "bootstrap",
    "bootstrap_auc",
    "bootstrap_macro_auc",
    "difference_sentence",
    "discriminant_b",
    "efficiency_thresholds",
    "flavour_rejection_curves",
    "flavour_statistics",
    "flavour_summary",
    "fpr_at_tpr",
    "hanley_mcneil",
    "in_bins",
    "macro_auc",
    "multiclass_statistics",
    "multiclass_summary",
    "n_effective",
    "normalise_weights",
    "one_vs_rest_aucs",
    "paired_bootstrap",
    "passing_fraction",
    "rejection_at_efficiency",
    "roc_band",
    "roc_curve",
    "roc_points",
    "sample_variables",
    "significance",
    "two_sample",
]
