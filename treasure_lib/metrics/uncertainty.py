"""Statistical uncertainties: effective counts, binomial and Hanley-McNeil errors, the bootstrap.

Weighted samples are treated as `n_eff = (sum w)^2 / sum w^2` unweighted events: the
"binomial with the effective number of weighted events" convention of ATLAS flavour tagging.
With equal weights n_eff = n; spread or mixed-sign weights give fewer, as they should.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ._checks import MetricInputError


def n_effective(weight) -> float:
    """(sum w)^2 / sum w^2: the number of unweighted events with the same relative error."""
    w = np.asarray(weight, dtype=np.float64).reshape(-1)
    sum_w2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / sum_w2 if sum_w2 > 0 else 0.0


def binomial_error(efficiency, n_eff):
    """sqrt(eff (1 - eff) / n_eff); 0 outside [0, 1] (possible with negative weights), nan if n_eff <= 0."""
    eff = np.asarray(efficiency, dtype=np.float64)
    n = np.asarray(n_eff, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.sqrt(np.clip(eff * (1.0 - eff), 0.0, None) / n)
    err = np.where(n > 0, err, np.nan)
    return float(err) if err.ndim == 0 else err


def hanley_mcneil(auc: float, n_signal: float, n_background: float) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982) for n_signal positives and n_background negatives.

    SE^2 = [A(1-A) + (n_s - 1)(Q1 - A^2) + (n_b - 1)(Q2 - A^2)] / (n_s n_b),
    Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A). Counts may be effective (non-integer) numbers.
    """
    if not (n_signal > 0 and n_background > 0):
        return float("nan")
    a = float(auc)
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_signal - 1) * (q1 - a * a) + (n_background - 1) * (q2 - a * a)) / (n_signal * n_background)
    return float(np.sqrt(max(var, 0.0)))


def resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each bootstrap replicate (n draws with replacement); one stream per seed.

    Every bootstrap in this package draws through here, so a fast path that turns the indices
    into per-row counts sees exactly the replicates the generic `bootstrap` would.
    """
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, size=n)


def resample_counts(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """The same replicates as `resample_indices`, as row multiplicities [n] (uint8 where they fit,
    which makes the gathers of the fast paths cache-friendly)."""
    for idx in resample_indices(n, n_boot, seed):
        counts = np.bincount(idx, minlength=n)
        yield counts.astype(np.uint8) if counts.max(initial=0) < 256 else counts


def summarise_replicates(value, replicates, level: float) -> dict:
    """value, std (ddof 1) and the central `level` percentile interval; NaN replicates are left out."""
    reps = np.asarray(replicates, dtype=np.float64)
    ok = ~np.isnan(reps).reshape(len(reps), -1).any(axis=1) if reps.size else np.zeros(0, bool)
    reps = reps[ok]
    tail = 50.0 * (1.0 - level)
    if len(reps) < 2:
        nan = np.full(np.shape(value), np.nan)
        std = low = high = nan
    else:
        std = np.std(reps, axis=0, ddof=1)
        low, high = np.percentile(reps, [tail, 100.0 - tail], axis=0)
    scalar = np.ndim(value) == 0
    cast = float if scalar else np.asarray
    return {"value": cast(value), "std": cast(std), "low": cast(low), "high": cast(high)}


def check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise MetricInputError(f"confidence level must be in (0, 1), got {level}")
    return float(level)


def bootstrap(stat_fn: Callable, *arrays, n_boot: int = 200, seed: int = 0, level: float = 0.68) -> dict:
    """Bootstrap a statistic by resampling rows (events) with replacement, weights travelling with their rows.

    `stat_fn(*arrays)` returns a number or an array (e.g. a curve on a grid); `None` entries in
    `arrays` are passed through (weight=None). Returns dict(value, std, low, high): `value` on the
    full sample, `std` of the replicates, `low`/`high` their central `level` percentile interval.
    A replicate for which `stat_fn` raises MetricInputError (e.g. it drew no signal) is dropped.
    Deterministic for a seed.
    """
    level = check_level(level)
    given = [np.asarray(a) if a is not None else None for a in arrays]
    lengths = {len(a) for a in given if a is not None}
    if len(lengths) != 1:
        raise MetricInputError(f"bootstrap needs arrays of one length (rows), got lengths {sorted(lengths)}")
    value = stat_fn(*given)
    replicates = []
    for idx in resample_indices(lengths.pop(), n_boot, seed):
        try:
            resampled = (a[idx] if a is not None else None for a in given)
            replicates.append(np.asarray(stat_fn(*resampled), dtype=np.float64))
        except MetricInputError:
            replicates.append(np.full(np.shape(value), np.nan))
    return summarise_replicates(value, replicates, level)
