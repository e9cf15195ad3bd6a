"""Codebook health of one collection's tokens: how many codes are used, how evenly, and whether
decoding a token and encoding the result gives the token back.

    health = codebook_health(track_indices, codebook_size=512)   # {"level_1": {...}, "level_2": ...}
    metrics.update(scalar_summary(health, prefix="codebook.tracks."))

Indices are a collection's *local* code indices (0..K-1, not vocabulary ids), shaped
[n_objects, Q] or [n, m, Q]; -1 marks an absent object (padding) or a level it does not have.
Entropies use the natural log: H = -sum_k p_k log p_k over the codes' usage frequencies p_k,
perplexity = exp(H) (the number of equally used codes with the same entropy: 1 for a single
code, K for uniform use), normalized_entropy = H / log K (0 for one code, 1 for uniform use).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..errors import CodebookInputError


def _as_levels(indices) -> np.ndarray:
    """Indices as [n_objects, Q] int64 (a 1-d array is one level; [n, m, Q] is flattened)."""
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        raise CodebookInputError(f"token indices must be integers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr.reshape(-1, arr.shape[-1]).astype(np.int64, copy=False)


def level_usage(codes, codebook_size: int) -> dict:
    """Usage statistics of one level's codes (1-d local indices, -1 = absent, ignored).

    Keys: n_objects (present codes counted), codebook_size, used_codes, utilization (used / K),
    dead_codes (never used), entropy (nats), perplexity (exp entropy), normalized_entropy
    (entropy / log K; nan for K = 1), max_frequency (share of the most used code), counts [K]
    (objects per code), sorted_frequency [K] (shares, descending, summing to 1).
    With no objects: utilization 0, every code dead, entropies and frequencies nan / zeros.
    """
    k = int(codebook_size)
    if k < 1:
        raise CodebookInputError(f"codebook_size must be >= 1, got {codebook_size}")
    codes = np.asarray(codes).reshape(-1)
    present = codes[codes >= 0]
    if present.size and present.max() >= k:
        raise CodebookInputError(
            f"code {int(present.max())} is outside a codebook of {k} codes "
            "(pass local indices 0..K-1, not vocabulary ids)"
        )
    if np.any(codes < -1):
        raise CodebookInputError(f"token indices below -1 ({int(codes.min())}); -1 is the only absent marker")
    counts = np.bincount(present, minlength=k)
    n = int(present.size)
    used = int(np.count_nonzero(counts))
    if n:
        p = counts / n
        nz = p[p > 0]
        entropy = float(-np.sum(nz * np.log(nz)))
        sorted_frequency = np.sort(p)[::-1]
    else:
        entropy, sorted_frequency = float("nan"), np.zeros(k)
    return {
        "n_objects": n,
        "codebook_size": k,
        "used_codes": used,
        "utilization": used / k,
        "dead_codes": k - used,
        "entropy": entropy,
        "perplexity": float(np.exp(entropy)),
        "normalized_entropy": entropy / float(np.log(k)) if k > 1 else float("nan"),
        "max_frequency": float(sorted_frequency[0]) if n else float("nan"),
        "counts": counts,
        "sorted_frequency": sorted_frequency,
    }


def codebook_health(indices, codebook_size: int | list[int]) -> dict[str, dict]:
    """`level_usage` for each level of one collection: {"level_1": {...}, "level_2": {...}, ...} (1 = the first
    quantizer level, as in the tokenizer's own metrics).

    `indices` [n_objects, Q] or [n, m, Q] local codes (-1 absent); `codebook_size` one K for all
    levels or a list with one per level.
    """
    levels = _as_levels(indices)
    q = levels.shape[1]
    sizes = [int(codebook_size)] * q if np.ndim(codebook_size) == 0 else [int(s) for s in codebook_size]
    if len(sizes) != q:
        raise CodebookInputError(f"{len(sizes)} codebook sizes for {q} levels")
    return {f"level_{j + 1}": level_usage(levels[:, j], sizes[j]) for j in range(q)}


def scalar_summary(health: Mapping[str, Mapping], prefix: str = "") -> dict[str, float]:
    """The scalar entries of a `codebook_health` report as flat metric keys
    (`<prefix>level_1.utilization`, ...); the per-code arrays are left out."""
    out = {}
    for level, stats in health.items():
        for key, value in stats.items():
            if np.ndim(value) == 0:
                out[f"{prefix}{level}.{key}"] = value if isinstance(value, int) else float(value)
    return out


def reencode_agreement(encode_fn: Callable, decode_fn: Callable, indices, batch_size: int = 65536) -> dict:
    """Decode tokens, encode the decoded features, and count the objects whose codes came back.

    `decode_fn(indices [n, m, Q]) -> features [n, m, F]` and `encode_fn(features, mask [n, m]) ->
    indices [n, m, Q]` are a tokenizer card's `decode` and `encode`. `indices` is [n, m, Q] or
    [n_objects, Q] (treated as n_objects rows of one object); objects whose level-0 index is -1
    are absent and not counted. Rows are processed `batch_size` objects at a time.

    Returns fraction (objects with every level unchanged / objects), level_fraction [Q] (per level),
    n_objects. A healthy residual codebook gives fractions near 1; a low level-0 fraction means
    codes decode to features that the encoder assigns elsewhere (overlapping or unreachable codes).
    """
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        raise CodebookInputError(f"token indices must be integers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise CodebookInputError(f"indices must be [n, m, Q] or [n_objects, Q], got shape {arr.shape}")
    n, m, q = arr.shape
    rows_per_batch = max(1, batch_size // max(m, 1))
    same_all = same_level = n_objects = 0
    for start in range(0, n, rows_per_batch):
        part = np.ascontiguousarray(arr[start : start + rows_per_batch])
        mask = part[..., 0] >= 0
        again = np.asarray(encode_fn(decode_fn(part), mask))
        if again.shape != part.shape:
            raise CodebookInputError(f"encode(decode(indices)) has shape {again.shape}, expected {part.shape}")
        equal = again[mask] == part[mask]  # [objects, Q]
        same_all += int(np.count_nonzero(equal.all(axis=1)))
        same_level = same_level + equal.sum(axis=0)
        n_objects += int(np.count_nonzero(mask))
    if n_objects == 0:
        return {"fraction": float("nan"), "level_fraction": np.full(q, np.nan), "n_objects": 0}
    return {
        "fraction": same_all / n_objects,
        "level_fraction": np.asarray(same_level) / n_objects,
        "n_objects": n_objects,
    }


def reencode_fraction(encode_fn: Callable, decode_fn: Callable, indices, batch_size: int = 65536) -> float:
    """Fraction of objects whose tokens (all levels) are unchanged after decode -> encode
    (see `reencode_agreement`, which also gives the per-level fractions)."""
    return reencode_agreement(encode_fn, decode_fn, indices, batch_size)["fraction"]
