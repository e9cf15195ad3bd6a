"""Which positions of a row are objects: the one definition every anomaly score and control counts over.

An object position is a real position (`mask`) of a collection (`type_ids > 0`: CLS, SEP and PAD are type 0) and,
when the rows hold tokens, one whose level-0 id is a code (>= N_SPECIAL), as whole-object masking in pretraining
selects them. In the flat layout every code position counts: an object there is its Q consecutive codes.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError
from ..vocabulary import N_SPECIAL


def object_positions(rows: dict) -> np.ndarray:
    """[N, L] bool: the object positions of each row (`rows` holds `mask`, `type_ids` and optionally `tokens`)."""
    for key in ("mask", "type_ids"):
        if key not in rows:
            raise InputFileError(f"rows without '{key}': expected the columns of read_split (mask, type_ids, ...)")
    mask, type_ids = np.asarray(rows["mask"], dtype=bool), np.asarray(rows["type_ids"])
    if mask.ndim != 2 or type_ids.shape != mask.shape:
        raise InputFileError(f"mask {mask.shape} and type_ids {type_ids.shape} must both be [rows, positions]")
    objects = mask & (type_ids > 0)
    if "tokens" in rows:
        tokens = np.asarray(rows["tokens"])
        if tokens.shape[:2] != mask.shape:
            raise InputFileError(f"tokens {tokens.shape} do not match mask {mask.shape}: expected [rows, positions, Q]")
        objects &= (tokens[..., 0] if tokens.ndim == 3 else tokens) >= N_SPECIAL
    return objects


def multiplicity(rows: dict) -> np.ndarray:
    """Object positions per row, int64 [N]: the control variable of a score that might only count objects."""
    return object_positions(rows).sum(axis=1).astype(np.int64)
