"""Flavour tagging: the b-tagging discriminant, working points and background rejections.

Classes follow `object_collections.FLAVOUR_NAMES` by fixed index: b 0, c 1, light 2, tau 3; `probs`
columns are in that order (a 3-column tagger without tau is accepted). A working point keeps at
least the requested weighted b-jet efficiency: a jet is tagged when D_b >= threshold.
"""

from __future__ import annotations

import numpy as np

from ..object_collections import FLAVOUR_NAMES
from . import _checks
from .roc import accuracy, bootstrap_macro_auc
from .uncertainty import binomial_error, n_effective

B, C, LIGHT, TAU = range(4)
WORKING_POINTS = (0.70, 0.77, 0.80, 0.85)
EPSILON = 1e-10  # as atlas-ftag-tools' get_discriminant: keeps log finite when a probability is 0
EFFICIENCY_TOLERANCE = 1e-9  # absorbs rounding in cumulative sums (1 - 0.77 is not 0.23 in floats)
CURVE_EFFICIENCIES = np.linspace(0.5, 0.95, 46)  # b-jet efficiencies of a rejection curve


def discriminant_b(probs, f_c: float, f_tau: float = 0.0) -> np.ndarray:
    """D_b = log((p_b + eps) / (f_c p_c + f_tau p_tau + (1 - f_c - f_tau) p_u + eps)), eps = 1e-10.

    The epsilon (added to both sides, as atlas-ftag-tools does) keeps D_b finite where a
    probability is exactly 0; it moves D_b only for probabilities near 1e-10.
    """
    p = _checks.probabilities(probs)
    if p.shape[1] < 3 or (f_tau and p.shape[1] < 4):
        raise _checks.MetricInputError(f"discriminant_b needs probs columns (b, c, light[, tau]), got {p.shape[1]}")
    if not (0.0 <= f_c <= 1.0 and 0.0 <= f_tau <= 1.0 - f_c):
        raise _checks.MetricInputError(f"need 0 <= f_c, f_tau and f_c + f_tau <= 1, got f_c={f_c}, f_tau={f_tau}")
    denominator = f_c * p[:, C] + (1.0 - f_c - f_tau) * p[:, LIGHT] + (f_tau * p[:, TAU] if f_tau else 0.0)
    return np.log((p[:, B] + EPSILON) / (denominator + EPSILON))


def percent(efficiency: float) -> int:
    """The integer-percent name of a working point (0.77 -> 77)."""
    return round(100 * efficiency)


def efficiency_thresholds(disc, is_signal, efficiencies=WORKING_POINTS, weight=None) -> np.ndarray:
    """Per efficiency, the largest signal D value whose cut `disc >= threshold` keeps at least that
    weighted signal fraction (the weighted signal-efficiency quantile, exact on small samples).

    With negative weights the kept fraction can step back; the threshold is where it first reaches eff.
    """
    disc = _checks.column(disc, "disc")
    sig = _checks.column(is_signal, "is_signal", disc.size, dtype=bool)
    w = _checks.weights(weight, disc.size)[sig]
    effs = np.asarray(efficiencies, dtype=np.float64)
    if np.any((effs <= 0) | (effs > 1)):
        raise _checks.MetricInputError(f"efficiencies must be in (0, 1], got {effs.tolist()}")
    total = _checks.positive_total(w.sum(), "signal")
    values, group = np.unique(disc[sig], return_inverse=True)
    below = np.maximum.accumulate(np.r_[0.0, np.cumsum(np.bincount(group, weights=w, minlength=values.size))[:-1]])
    k = np.searchsorted(below / total, 1.0 - effs + EFFICIENCY_TOLERANCE, side="right") - 1
    return values[k]


def passing_fraction(disc, selected, thresholds, weight=None, what: str = "background") -> np.ndarray:
    """Weighted fraction of the `selected` events with disc >= each threshold."""
    disc = _checks.column(disc, "disc")
    sel = _checks.column(selected, "selection", disc.size, dtype=bool)
    w = _checks.weights(weight, disc.size)[sel]
    total = _checks.positive_total(w.sum(), what)
    d = disc[sel]
    return np.array([w[d >= t].sum() / total for t in np.atleast_1d(thresholds)])


def rejection_from_efficiency(efficiency, n_eff) -> tuple[np.ndarray, np.ndarray]:
    """(1 / eff, binomial error propagated: sigma_eff / eff^2); (inf, nan) when nothing passes
    (eff == 0), (nan, nan) when negative weights make eff < 0."""
    eff = np.asarray(efficiency, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rej = np.where(eff > 0, 1.0 / eff, np.where(eff == 0, np.inf, np.nan))
        err = np.where(eff > 0, binomial_error(eff, n_eff) / eff**2, np.nan)
    return rej, err


def rejection_at_efficiency(disc, is_signal, is_background, efficiencies=WORKING_POINTS, weight=None) -> dict:
    """{eff: (rejection, rejection_err, threshold)} at each signal-efficiency working point.

    rejection = 1 / weighted background efficiency at the threshold; the error is binomial with the
    background's effective number of events; (inf, nan) when no background passes.
    """
    thresholds = efficiency_thresholds(disc, is_signal, efficiencies, weight)
    disc = _checks.column(disc, "disc")
    bkg = _checks.column(is_background, "is_background", disc.size, dtype=bool)
    eff_b = passing_fraction(disc, bkg, thresholds, weight)
    n_eff = n_effective(_checks.weights(weight, bkg.size)[bkg])
    rej, err = rejection_from_efficiency(eff_b, n_eff)
    return {float(e): (float(r), float(s), float(t)) for e, r, s, t in zip(efficiencies, rej, err, thresholds)}


def flavour_rejection_curves(
    labels, probs, weight=None, efficiencies=CURVE_EFFICIENCIES, f_c: float = 0.2, backgrounds=("c", "light", "tau")
) -> dict:
    """b-tagging rejections along a b-efficiency scan (what `plots.rejection_vs_efficiency` draws):
    dict(efficiency, rejection {flavour: array}, rejection_err {flavour: array}, n_background {flavour: n_eff});
    D_b as `discriminant_b(probs, f_c)`, classes by the fixed index of `object_collections.FLAVOUR_NAMES`
    (b 0, c 1, light 2, tau 3). Flavours absent from `labels` are skipped; errors are binomial with the
    background's effective number of jets."""
    y = np.asarray(labels).astype(np.int64)
    w = np.ones(y.size) if weight is None else np.asarray(weight, dtype=np.float64)
    disc = discriminant_b(probs, f_c)
    effs = np.asarray(efficiencies, dtype=np.float64)
    out = {"efficiency": effs, "rejection": {}, "rejection_err": {}, "n_background": {}}
    for flavour in backgrounds:
        c = FLAVOUR_NAMES.index(flavour)
        if not np.any(y == c):
            continue
        points = rejection_at_efficiency(disc, y == FLAVOUR_NAMES.index("b"), y == c, effs, weight)
        out["rejection"][flavour] = np.array([points[float(e)][0] for e in effs])
        out["rejection_err"][flavour] = np.array([points[float(e)][1] for e in effs])
        out["n_background"][flavour] = n_effective(w[y == c])
    return out


def flavour_summary(
    labels,
    probs,
    weight=None,
    f_c: float = 0.2,
    efficiencies=WORKING_POINTS,
    *,
    f_tau: float = 0.0,
    n_boot: int = 200,
    seed: int = 0,
) -> dict:
    """Flat dict of a jet flavour tagger's performance (short keys; the caller adds its prefix).

    Keys: auc_macro, auc_macro_err (bootstrap std), accuracy, n_<flavour> (jets per class),
    auc_<flavour> and auc_<flavour>_err (one-vs-rest, Hanley-McNeil with n_eff), and per working
    point NN in integer percent: threshold_at_NN (D_b cut), b_efficiency_at_NN (achieved),
    <flavour>_rejection_at_NN and _err for c, light, tau. Keys of a flavour absent from `labels`
    are left out rather than written as NaN. Rejections may be inf when no background jet passes.
    The bootstrap costs ~0.15 s per replicate per million jets; n_boot=0 skips it (auc_macro_err nan).
    """
    p = _checks.probabilities(probs)
    y = _checks.class_labels(labels, len(FLAVOUR_NAMES))
    w = _checks.weights(weight, y.size)
    names = [percent(e) for e in efficiencies]
    if len(set(names)) != len(names):
        raise _checks.MetricInputError(f"efficiencies {list(efficiencies)} do not have distinct integer percents")
    classes = range(min(p.shape[1], len(FLAVOUR_NAMES)))
    boot = bootstrap_macro_auc(y, p, w, classes, n_boot=n_boot, seed=seed)
    out = {"auc_macro": boot["value"], "auc_macro_err": boot["std"], "accuracy": accuracy(y, p, w)}
    for c, name in enumerate(FLAVOUR_NAMES):
        out[f"n_{name}"] = int(np.count_nonzero(y == c))
    for c, value in boot["per_class"].items():
        out[f"auc_{FLAVOUR_NAMES[c]}"], out[f"auc_{FLAVOUR_NAMES[c]}_err"] = value, boot["per_class_err"][c]
    disc = discriminant_b(p, f_c, f_tau)
    thresholds = efficiency_thresholds(disc, y == B, efficiencies, w)
    for nn, t, e in zip(names, thresholds, passing_fraction(disc, y == B, thresholds, w, "b jets")):
        out[f"threshold_at_{nn}"], out[f"b_efficiency_at_{nn}"] = float(t), float(e)
    for c in (C, LIGHT, TAU):
        if not np.any(y == c):
            continue
        name = FLAVOUR_NAMES[c]
        eff = passing_fraction(disc, y == c, thresholds, w, f"{name} jets")
        for nn, r, s in zip(names, *rejection_from_efficiency(eff, n_effective(w[y == c]))):
            out[f"{name}_rejection_at_{nn}"], out[f"{name}_rejection_at_{nn}_err"] = float(r), float(s)
    return out
