"""Comparing classifiers fairly: every model and training seed on the SAME bootstrap replicates of the test rows.

    stat_fn = functools.partial(metrics.flavour_statistics, f_c=0.2, f_tau=0.01)
    boot = metrics.paired_bootstrap(stat_fn, labels, weight, {"tokens": [p0, p1, p2], "fine-tuned": [q0, q1, q2]})
    boot.summary("tokens")                                  # mean over seeds, test-sample error, seed spread
    comparison = boot.compare("fine-tuned", "tokens", "light_rejection_at_77")
    metrics.difference_sentence(comparison, "tokens, fine-tuned", "tokens", "light-jet rejection at 77% b-efficiency")

Why paired: two models scored on the same test jets share that sample's luck, so their difference fluctuates far
less than either value; the two errors in quadrature overstate its error and hide real gains. Why each statistic
recomputes its working point: the cut that keeps 77% of the b jets is itself measured on the test sample (with 850
b jets the b-efficiency moves ~1.4%, the light rejection ~20%); a bootstrap that holds the cut fixed misses that.
Why seeds: a second training seed can move a number as much as the test sample does, so the seed spread enters
every error below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..formatting import fmt
from ..object_collections import FLAVOUR_NAMES
from . import _checks
from .flavour import LIGHT, TAU, B, C, discriminant_b, efficiency_thresholds, percent, rejection_from_efficiency
from .roc import RankedScores, _area, one_vs_rest_aucs
from .uncertainty import resample_indices

SIGNIFICANCE_THRESHOLD = 2.0  # |difference| / its error from which the book calls a difference significant
MAX_DROPPED_FRACTION = 0.10  # more non-finite replicates than this and an error is not quoted (NaN)


def significance(diff: float, err: float, threshold: float = SIGNIFICANCE_THRESHOLD) -> bool:
    """The project's one rule for "significantly different": |diff| >= threshold * err, with a finite diff and a
    finite, positive err (an error that is NaN or 0 says nothing, so nothing is called significant)."""
    diff, err = float(diff), float(err)
    return bool(math.isfinite(diff) and math.isfinite(err) and err > 0 and abs(diff) >= threshold * err)


# ----------------------------------------------------------------------------- statistics for one prediction


def _percent_names(values) -> list[int]:
    names = [percent(v) for v in np.atleast_1d(values)]
    if len(set(names)) != len(names):
        raise _checks.MetricInputError(f"working points {list(values)} do not have distinct integer percents")
    return names


def _passing(ranked: RankedScores, sorted_classes: np.ndarray, n_classes: int, thresholds) -> tuple:
    """(weight of each class with score >= each threshold [T, K], each class's total weight [K]), read off the
    one descending sort `ranked` already holds; `sorted_classes` are the class indices in that order."""
    weighted = np.zeros((ranked.score.size + 1, n_classes))
    weighted[np.arange(1, ranked.score.size + 1), sorted_classes] = ranked.weight
    cumulative = np.cumsum(weighted, axis=0)
    n_pass = np.searchsorted(-ranked.score, -np.asarray(thresholds, dtype=np.float64), side="right")
    return cumulative[n_pass], cumulative[-1]


def flavour_statistics(
    labels, probs, weight=None, *, f_c: float = 0.2, f_tau: float = 0.01, efficiencies=(0.70, 0.77, 0.85)
) -> dict[str, float]:
    """A jet flavour tagger's numbers, each working point cut recomputed from THIS sample (so that a bootstrap
    replicate moves the cut as the real test sample would).

    D_b = ln(p_b / (f_c p_c + f_tau p_tau + (1 - f_c - f_tau) p_light)) (`discriminant_b`); per efficiency NN:
    threshold_at_NN (the D_b cut keeping NN% of the b jets' weight), light_rejection_at_NN, c_rejection_at_NN and,
    when tau jets are present, tau_rejection_at_NN (inf when no such jet passes); auc_b (b vs rest with D_b as the
    score) and auc_macro (one-vs-rest on the probs columns, mean over the classes present). A 3-column tagger
    (b, c, light) needs f_tau=0: with f_tau > 0 this raises rather than silently using a different discriminant
    than a 4-column tagger would, which would make their rejections incomparable. Raises MetricInputError when b,
    c or light jets have no weight. One sort of D_b serves the cuts, rejections and auc_b; the macro AUC sorts
    each column once (together ~1 ms per call on 4k jets, about half of it the macro AUC).
    """
    p = _checks.probabilities(probs)
    y = _checks.class_labels(labels, len(FLAVOUR_NAMES))
    if y.size != p.shape[0]:
        raise _checks.MetricInputError(f"labels has {y.size} rows but probs has {p.shape[0]}; expected one per jet")
    if f_tau and p.shape[1] < 4:
        raise _checks.MetricInputError(
            f"f_tau={f_tau} needs a tau column, but probs has {p.shape[1]} columns "
            "(b, c, light): pass f_tau=0 for a tagger without tau"
        )
    w = _checks.weights(weight, y.size)
    names = _percent_names(efficiencies)
    disc = discriminant_b(p, f_c, f_tau)
    flavours = [B, C, LIGHT] + ([TAU] if np.any(y == TAU) else [])
    totals = np.bincount(y, weights=w, minlength=len(FLAVOUR_NAMES))
    for c in flavours:
        _checks.positive_total(totals[c], f"{FLAVOUR_NAMES[c]} jets")
    thresholds = efficiency_thresholds(disc, y == B, efficiencies, w)
    ranked = RankedScores(y == B, disc, w)
    passed, totals = _passing(ranked, y[ranked.order], len(FLAVOUR_NAMES), thresholds)
    out = {f"threshold_at_{nn}": float(t) for nn, t in zip(names, thresholds)}
    for c in flavours[1:]:
        rejection = rejection_from_efficiency(passed[:, c] / totals[c], np.nan)[0]  # the value; its error is ours
        out.update({f"{FLAVOUR_NAMES[c]}_rejection_at_{nn}": float(r) for nn, r in zip(names, rejection)})
    out["auc_b"] = _area(*ranked.cumulative())
    aucs = one_vs_rest_aucs(y, p, w, classes=range(min(p.shape[1], len(FLAVOUR_NAMES))))
    out["auc_macro"] = float(np.mean(list(aucs.values())))
    return out


def binary_statistics(labels, score, weight=None, *, background_rejections=(0.5, 0.9)) -> dict[str, float]:
    """Signal (labels == 1) vs background: auc, and per rejection NN signal_efficiency_at_rejection_NN, the
    weighted signal fraction passing the score cut that rejects NN% of the background weight, the cut recomputed
    from this sample (as `efficiency_thresholds`: it keeps at least 1 - NN% of the background)."""
    s = _checks.column(score, "score")
    y = _checks.column(labels, "labels", s.size, dtype=np.int64)
    w = _checks.weights(weight, s.size)
    rejections = np.atleast_1d(np.asarray(background_rejections, dtype=np.float64))
    if np.any((rejections < 0) | (rejections >= 1)):
        raise _checks.MetricInputError(f"background rejections must be in [0, 1), got {rejections.tolist()}")
    names = _percent_names(rejections)
    ranked = RankedScores(y, s, w)
    total_signal, _ = ranked.totals()
    thresholds = efficiency_thresholds(s, y != 1, 1.0 - rejections, w)
    passed, _ = _passing(ranked, ranked.signal.astype(np.int64), 2, thresholds)
    out = {"auc": _area(*ranked.cumulative())}
    out.update({f"signal_efficiency_at_rejection_{nn}": float(e) for nn, e in zip(names, passed[:, 1] / total_signal)})
    return out


def multiclass_statistics(labels, probs, weight=None) -> dict[str, float]:
    """auc_macro and auc_<k> (one-vs-rest on column k) for each class index k present with other classes beside it."""
    p = _checks.probabilities(probs)
    y = _checks.class_labels(labels, p.shape[1])
    if y.size != p.shape[0]:
        raise _checks.MetricInputError(f"labels has {y.size} rows but probs has {p.shape[0]}; expected one per event")
    aucs = one_vs_rest_aucs(y, p, weight)
    if not aucs:
        raise _checks.MetricInputError("multiclass statistics need at least two classes present in labels")
    return {"auc_macro": float(np.mean(list(aucs.values()))), **{f"auc_{c}": float(v) for c, v in aucs.items()}}


# ----------------------------------------------------------------------------- the paired bootstrap


def _replicate_std(values: np.ndarray) -> tuple[float, float]:
    """(std with ddof 1 of the finite replicates, fraction dropped); NaN std when over MAX_DROPPED_FRACTION of
    them are not finite (e.g. an infinite rejection: no background passed) or fewer than two remain."""
    finite = np.isfinite(values)
    dropped = 1.0 - finite.mean() if values.size else 1.0
    if dropped > MAX_DROPPED_FRACTION or finite.sum() < 2:
        return float("nan"), float(dropped)
    return float(np.std(values[finite], ddof=1)), float(dropped)


def _seed_variance_of_mean(nominal: np.ndarray) -> float:
    """s^2 / n over seeds (ddof 1): the seed contribution to the error of a seed mean; 0 with one seed, where the
    spread cannot be measured (the comparison then rests on that model's test-sample error alone)."""
    if nominal.size < 2:
        return 0.0
    if not np.isfinite(nominal).all():  # an infinite rejection: no spread to quote, so no error either
        return float("nan")
    return float(np.var(nominal, ddof=1) / nominal.size)


@dataclass(frozen=True)
class Comparison:
    """Model a minus model b on one statistic: diff of the seed means with its paired test-sample error, the seed
    error sqrt(s_a^2/n_a + s_b^2/n_b), their quadrature sum err, z = diff / err and the `significance` verdict.
    value_/err_/n_seeds_ describe each model alone (err_a: its seed mean's test-sample and seed error, unpaired)."""

    a: str
    b: str
    stat: str
    diff: float
    err_test: float
    err_seed: float
    err: float
    z: float
    significant: bool
    value_a: float
    err_a: float
    n_seeds_a: int
    value_b: float
    err_b: float
    n_seeds_b: int
    dropped_fraction: float  # of replicates whose paired difference was not finite


@dataclass(frozen=True)
class PairedBootstrap:
    """Per model: nominal[name] [n_seeds, n_stats] on the full test sample and replicates[name]
    [n_boot, n_seeds, n_stats] on the bootstrap replicates, replicate i being the same rows for every model."""

    names: tuple[str, ...]
    stats: tuple[str, ...]
    nominal: Mapping[str, np.ndarray]
    replicates: Mapping[str, np.ndarray]

    def _check_name(self, name: str) -> None:
        if name not in self.nominal:
            raise _checks.MetricInputError(f"no model {name!r} in the bootstrap; it has {list(self.names)}")

    def _columns(self, name: str, stat: str) -> tuple[np.ndarray, np.ndarray]:
        """(nominal values per seed [n_seeds], seed mean per replicate [n_boot]) of one model and statistic."""
        self._check_name(name)
        if stat not in self.stats:
            raise _checks.MetricInputError(f"no statistic {stat!r} in the bootstrap; it has {list(self.stats)}")
        j = self.stats.index(stat)
        return self.nominal[name][:, j], self.replicates[name][:, :, j].mean(axis=1)

    def summary(self, name: str) -> dict[str, float]:
        """Per statistic: <stat> (mean over seeds), <stat>_err (bootstrap std of the seed mean: the test-sample
        error, working points recomputed), <stat>_seed_std (std over seeds, NaN with one seed); and n_seeds."""
        self._check_name(name)
        out: dict[str, float] = {}
        for stat in self.stats:
            nominal, replicates = self._columns(name, stat)
            out[stat] = float(np.mean(nominal))
            out[f"{stat}_err"] = _replicate_std(replicates)[0]
            finite = nominal.size > 1 and np.isfinite(nominal).all()  # an infinite rejection has no spread
            if not finite:
                out[f"{stat}_seed_std"] = float("nan")
            else:  # seeds that agree exactly (a deterministic model) have a spread of exactly 0, not 1e-16
                out[f"{stat}_seed_std"] = 0.0 if np.ptp(nominal) == 0 else float(np.std(nominal, ddof=1))
        out["n_seeds"] = self.nominal[name].shape[0]
        return out

    def compare(self, a: str, b: str, stat: str) -> Comparison:
        """a minus b on `stat`, paired: each replicate's seed mean of a minus that of b on the same rows."""
        nominal_a, replicates_a = self._columns(a, stat)
        nominal_b, replicates_b = self._columns(b, stat)
        diff = float(np.mean(nominal_a) - np.mean(nominal_b))
        with np.errstate(invalid="ignore"):  # inf - inf in a replicate is dropped like any non-finite one
            err_test, dropped = _replicate_std(replicates_a - replicates_b)
        err_seed = math.sqrt(_seed_variance_of_mean(nominal_a) + _seed_variance_of_mean(nominal_b))
        err = math.hypot(err_test, err_seed)
        alone = [
            math.hypot(_replicate_std(r)[0], math.sqrt(_seed_variance_of_mean(n)))
            for n, r in ((nominal_a, replicates_a), (nominal_b, replicates_b))
        ]
        return Comparison(
            a=a,
            b=b,
            stat=stat,
            diff=diff,
            err_test=err_test,
            err_seed=err_seed,
            err=err,
            z=diff / err if err > 0 else float("nan"),
            significant=significance(diff, err),
            value_a=float(np.mean(nominal_a)),
            err_a=alone[0],
            n_seeds_a=nominal_a.size,
            value_b=float(np.mean(nominal_b)),
            err_b=alone[1],
            n_seeds_b=nominal_b.size,
            dropped_fraction=dropped,
        )


def _checked_predictions(predictions: Mapping[str, Sequence], n: int) -> dict[str, list[np.ndarray]]:
    if not predictions:
        raise _checks.MetricInputError("paired_bootstrap needs at least one model in predictions")
    out = {}
    for name, seeds in predictions.items():
        arrays = [np.asarray(a) for a in seeds]
        if not arrays:
            raise _checks.MetricInputError(f"model {name!r} has no seed: expected a list with one prediction per seed")
        for i, a in enumerate(arrays):
            if a.ndim not in (1, 2) or a.shape[0] != n:
                raise _checks.MetricInputError(
                    f"model {name!r} seed {i}: prediction has shape {a.shape}, expected "
                    f"{n} rows (one per test row, in the order of labels)"
                )
        out[str(name)] = arrays
    return out


def paired_bootstrap(
    stat_fn: Callable[..., Mapping[str, float]],
    labels,
    weight,
    predictions: Mapping[str, Sequence[np.ndarray]],
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> PairedBootstrap:
    """`stat_fn(labels, prediction, weight) -> {stat: value}` for every model and training seed, on the full test
    sample and on `n_boot` bootstrap replicates, each replicate ONE draw of row indices (`resample_indices`, so
    deterministic for a seed) applied to every model and seed: that makes differences paired.

    predictions[name] holds one array per seed (probs [n, C] or scores [n]) on the same rows as `labels`. The
    statistics are those of the first nominal call; a replicate where stat_fn raises MetricInputError (no signal
    drawn, say) or leaves a statistic out is NaN there. Cost: (1 + n_boot) calls of stat_fn per model and seed.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise _checks.MetricInputError(f"labels must be 1-d (one per test row), got shape {y.shape}")
    w = None if weight is None else _checks.weights(weight, y.size)
    models = _checked_predictions(predictions, y.size)
    nominal_dicts = {name: [stat_fn(y, a, w) for a in arrays] for name, arrays in models.items()}
    stats = tuple(next(iter(nominal_dicts.values()))[0])

    def row(values: Mapping[str, float]) -> list[float]:
        return [float(values.get(s, np.nan)) for s in stats]

    nominal = {
        name: np.array([row(d) for d in dicts]).reshape(len(dicts), len(stats)) for name, dicts in nominal_dicts.items()
    }
    replicates = {name: np.full((n_boot, len(arrays), len(stats)), np.nan) for name, arrays in models.items()}
    for i, idx in enumerate(resample_indices(y.size, n_boot, seed)):
        y_i, w_i = y[idx], None if w is None else w[idx]
        for name, arrays in models.items():
            for s, a in enumerate(arrays):
                try:
                    replicates[name][i, s] = row(stat_fn(y_i, a[idx], w_i))
                except _checks.MetricInputError:
                    pass  # stays NaN: this replicate cannot measure the statistic
    return PairedBootstrap(names=tuple(models), stats=stats, nominal=nominal, replicates=replicates)


# ----------------------------------------------------------------------------- the verdict in words


def difference_sentence(
    comparison: Comparison,
    a_label: str,
    b_label: str,
    quantity: str,
    *,
    higher_is_better: bool = True,
    rows: str = "jets",
) -> str:
    """The book's verdict on a comparison, numbers formatted by the one formatter (`formatting.fmt`), e.g.
    "By light-jet rejection at 77% b-efficiency, tokens, fine-tuned (12.3 ± 1.1) is ahead of tokens (10.1 ± 0.9)
    by 2.2 ± 0.8 (2.8 sigma; paired bootstrap over the same test jets, 3 seeds each)." `rows` names the test rows
    (jets, events); `higher_is_better` says whether a larger value is ahead (rejections, AUCs) or behind (losses).
    Rounding is the formatter's alone (uncertainty to two significant figures), so there is no digits argument.
    """

    c = comparison
    a = f"{a_label} ({fmt(c.value_a, c.err_a)})"
    b = f"{b_label} ({fmt(c.value_b, c.err_b)})"
    seeds = (
        f"{c.n_seeds_a} seed{'s' if c.n_seeds_a != 1 else ''} each"
        if c.n_seeds_a == c.n_seeds_b
        else f"{c.n_seeds_a} and {c.n_seeds_b} seeds"
    )
    method = f"paired bootstrap over the same test {rows}, {seeds}"
    if not math.isfinite(c.err):
        why = (
            f"over {MAX_DROPPED_FRACTION:.0%} of the bootstrap replicates give no finite value"
            if c.dropped_fraction > MAX_DROPPED_FRACTION
            else "a value is not finite"
        )
        return f"By {quantity}, {a} and {b} cannot be compared: {why} ({method})."
    sigma = f"{abs(c.z):.1f} sigma; " if math.isfinite(c.z) else ""
    if c.significant:
        verb = "ahead of" if (c.diff > 0) == higher_is_better else "behind"
        return f"By {quantity}, {a} is {verb} {b} by {fmt(abs(c.diff), c.err)} ({sigma}{method})."
    return (
        f"By {quantity}, {a} is not significantly different from {b}: the difference is "
        f"{fmt(c.diff, c.err)} ({sigma}{method})."
    )
