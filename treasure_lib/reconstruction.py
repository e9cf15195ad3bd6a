"""One reconstruction metric for every tokenizer kind, in physical units, per feature and per level.

Held-out objects go through the card's own `encode` -> `decode` (after 1, 2, ..., Q levels for
residual tokenizers; binning has one level per feature, so only all levels), and each feature's
reco - orig is summarised the same way for VQ-VAE, k-means and binning, so they compare:

- continuous features: `bias` (mean of reco - orig), `mae`, `resolution` (half the 16-84%
  interval of reco - orig: a Gaussian's sigma, robust to tails), `corr` (Pearson);
  for positive log-scaled features (pt, energies) also `response_iqr_over_median`, the
  (q75 - q25) / median of reco / orig that the field quotes for pT;
- categorical features: `accuracy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

CONTINUOUS = ("bias", "mae", "resolution", "corr")


def summarise(orig: np.ndarray, reco: np.ndarray, categorical: bool, log_scaled: bool) -> dict[str, float]:
    """The summary numbers of one feature from matched 1-d arrays of original and reconstructed values."""
    orig = np.asarray(orig, dtype=np.float64)
    reco = np.asarray(reco, dtype=np.float64)
    if len(orig) == 0:
        return {}
    if categorical:
        return {"accuracy": float(np.mean(orig == reco))}
    res = reco - orig
    q16, q84 = np.quantile(res, [0.16, 0.84])
    corr = float(np.corrcoef(orig, reco)[0, 1]) if orig.std() > 0 and reco.std() > 0 else float("nan")
    out = {
        "bias": float(res.mean()),
        "mae": float(np.abs(res).mean()),
        "resolution": float(0.5 * (q84 - q16)),
        "corr": corr,
    }
    if log_scaled and (orig > 0).all():
        ratio = reco / orig
        q25, q50, q75 = np.quantile(ratio, [0.25, 0.5, 0.75])
        out["response_median"] = float(q50)
        out["response_iqr_over_median"] = float((q75 - q25) / q50) if q50 else float("nan")
    return out


def levels_of(tokenizer) -> list[int]:
    """The level counts a tokenizer can decode with: 1..Q for residual tokenizers, Q alone for binning."""
    q = tokenizer.num_quantizers
    return [q] if tokenizer.kind == "binning" else list(range(1, q + 1))


def reconstruction(tokenizer, features: np.ndarray, mask: np.ndarray, indices: np.ndarray | None = None) -> dict:
    """{level: {feature: {quantity: value}}} for objects [n, m, F] (physical units) through the card."""
    info = tokenizer.collection
    names = list(info["features"])
    categorical = set(info.get("categorical", ()))
    logs = set(info.get("log_features", ()))
    if indices is None:
        indices = tokenizer.encode(features, mask)
    orig = features[mask]
    out: dict = {}
    for q in levels_of(tokenizer):
        reco = tokenizer.decode(indices, levels=q)[mask]
        out[q] = {f: summarise(orig[:, i], reco[:, i], f in categorical, f in logs) for i, f in enumerate(names)}
    return out


def accumulate(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Join (features, mask) chunks of one collection (held-out rows are a bounded sample)."""
    feats, masks = zip(*parts)
    width = max(f.shape[1] for f in feats)
    pad = lambda a, v: np.pad(a, ((0, 0), (0, width - a.shape[1])) + ((0, 0),) * (a.ndim - 2), constant_values=v)  # noqa: E731
    return np.concatenate([pad(f, 0) for f in feats]), np.concatenate([pad(m, False) for m in masks])


def flatten(report: Mapping, prefix: str = "") -> dict[str, float]:
    """{level: {feature: {q: v}}} -> {'<prefix><feature>.<q>': v} for all levels (the last one unlabelled)
    and '<prefix><feature>.level_<k>.<q>' per level."""
    out = {}
    levels = sorted(report)
    for level in levels:
        for feature, numbers in report[level].items():
            for name, value in numbers.items():
                out[f"{prefix}{feature}.level_{level}.{name}"] = value
                if level == levels[-1]:
                    out[f"{prefix}{feature}.{name}"] = value
    return out
