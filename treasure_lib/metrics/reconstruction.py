"""Reconstruction metrics: how far decoded values lie from the originals, one implementation of each number.

Why this module: the tokenizer cards, chapter 02's reports (`diagnostics.reconstruction`), the lepton-peak study and
the residual figures all quote the same few numbers; computed here once, they agree wherever they are shown.
Inputs are matched 1-d arrays of original and decoded (or reconstructed) values in physical units; outputs are
floats in the same units (ratios dimensionless).

- `robust_summary`: n, median, IQR, sigma68 (half the 16-84% interval: a Gaussian's sigma, robust to tails), mean;
- `response`: reco / orig, its median and (q75 - q25) / median (the field's resolution for pT), with a bootstrap
  error; `response_in_bins` the same in bins of a variable;
- `feature_summary`: one feature's bias (mean of reco - orig), MAE, resolution (sigma68 of reco - orig) and
  correlation, plus the response of positive log-scaled features, or a categorical feature's accuracy;
- `level_metric_items`: {level: {feature: numbers}} as documented metrics.json items.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

RESPONSE_BOOTSTRAP = 100  # resamples of the response's error


def robust_summary(x: np.ndarray) -> dict[str, float]:
    """n, median, iqr (q75 - q25), sigma68 (half the 16-84% interval) and mean of x, in x's unit and precision
    ({'n': 0} for no entries)."""
    if len(x) == 0:
        return {"n": 0}
    q16, q25, q50, q75, q84 = np.quantile(x, [0.16, 0.25, 0.5, 0.75, 0.84])
    return {
        "n": int(len(x)),
        "median": float(q50),
        "iqr": float(q75 - q25),
        "sigma68": float(0.5 * (q84 - q16)),
        "mean": float(x.mean()),
    }


def sigma68(x) -> float:
    """Half the 16-84% interval (float64): the width of a peak that tails do not dominate (NaN for no entries)."""
    return robust_summary(np.asarray(x, dtype=np.float64)).get("sigma68", float("nan"))


def median_and_iqr_over_median(ratio: np.ndarray) -> tuple[float, float]:
    """Median of a response (reco / orig) and its resolution (q75 - q25) / median (NaN where the median is 0)."""
    q25, q50, q75 = np.quantile(ratio, [0.25, 0.5, 0.75])
    return float(q50), float((q75 - q25) / q50) if q50 else float("nan")


def response(reco: np.ndarray, orig: np.ndarray) -> dict[str, float]:
    """Response reco / orig where orig > 0: n, median and the resolution (q75 - q25) / median, with its bootstrap
    error (`RESPONSE_BOOTSTRAP` resamples, fixed seed). Fewer than two entries: n alone."""
    ok = orig > 0
    r = reco[ok] / orig[ok]
    if len(r) < 2:
        return {"n": int(len(r))}
    median, iqr_over_median = median_and_iqr_over_median(r)
    rng = np.random.default_rng(0)
    boot = [median_and_iqr_over_median(r[rng.integers(0, len(r), len(r))])[1] for _ in range(RESPONSE_BOOTSTRAP)]
    return {
        "n": int(len(r)),
        "median": median,
        "iqr_over_median": iqr_over_median,
        "iqr_over_median_err": float(np.std(boot)),
    }


def response_in_bins(variable: np.ndarray, reco: np.ndarray, orig: np.ndarray, edges) -> list[dict]:
    """`response` in bins [low, high) of a variable (e.g. jet pT in GeV): one row per bin with its edges."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (variable >= lo) & (variable < hi)
        rows.append({"low": float(lo), "high": float(hi), **response(reco[sel], orig[sel])})
    return rows


def feature_summary(orig: np.ndarray, reco: np.ndarray, categorical: bool, log_scaled: bool) -> dict[str, float]:
    """One feature's numbers from matched 1-d arrays of original and decoded values (float64, the feature's unit).

    Continuous: `bias` (mean of reco - orig), `mae`, `resolution` (sigma68 of reco - orig), `corr` (Pearson); for
    positive log-scaled features (pt, energies) also `response_median` and `response_iqr_over_median` of reco / orig.
    Categorical: `accuracy`. No entries: {}.
    """
    orig = np.asarray(orig, dtype=np.float64)
    reco = np.asarray(reco, dtype=np.float64)
    if len(orig) == 0:
        return {}
    if categorical:
        return {"accuracy": float(np.mean(orig == reco))}
    res = reco - orig
    corr = float(np.corrcoef(orig, reco)[0, 1]) if orig.std() > 0 and reco.std() > 0 else float("nan")
    out = {
        "bias": float(res.mean()),
        "mae": float(np.abs(res).mean()),
        "resolution": sigma68(res),
        "corr": corr,
    }
    if log_scaled and (orig > 0).all():
        out["response_median"], out["response_iqr_over_median"] = median_and_iqr_over_median(reco / orig)
    return out


def level_metric_items(levels: Mapping, prefix: str = "") -> dict[str, float]:
    """{level: {feature: {quantity: value}}} -> metrics.json items '<prefix><feature>.level_<k>.<quantity>' for every
    level and '<prefix><feature>.<quantity>' (no level named) for the last one."""
    out = {}
    ordered = sorted(levels)
    for level in ordered:
        for feature, numbers in levels[level].items():
            for name, value in numbers.items():
                out[f"{prefix}{feature}.level_{level}.{name}"] = value
                if level == ordered[-1]:
                    out[f"{prefix}{feature}.{name}"] = value
    return out
