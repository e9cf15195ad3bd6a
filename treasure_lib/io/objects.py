"""Per-row object handling after reading: order by pt, keep `max_objects`, and the azimuthal frame.

Absolute phi carries no physics (the detector is symmetric in phi) but costs codebook capacity,
so event studies express every phi relative to the leading object of the event
(`data.phi_reference: leading`): the highest-pt object among the collections that carry both
`pt` and `phi`, after cuts. MET's phi is rotated the same way. Jets' tracks already use dphi.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..kinematics import wrap_phi
from ..object_collections import Collection
from .batch import ObjectArrays

PHI_REFERENCES = ("none", "leading")


def sort_and_truncate(oa: ObjectArrays, c: Collection) -> tuple[ObjectArrays, int]:
    """Order objects by `order_by` (descending, valid first) and keep `max_objects`; returns the truncated count."""
    feats, mask = oa.features, oa.mask
    width = feats.shape[1]
    if c.is_scalar:
        return oa, 0
    if c.order_by is not None:
        key = np.where(mask, feats[..., c.index(c.order_by)], -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
    else:
        order = np.argsort(~mask, axis=1, kind="stable")
    already = np.array_equal(order, np.broadcast_to(np.arange(width), order.shape))
    truth = oa.truth
    if not already:
        feats = np.take_along_axis(feats, order[..., None], axis=1)
        mask = np.take_along_axis(mask, order, axis=1)
        truth = {k: np.take_along_axis(v, order, axis=1) for k, v in truth.items()}
    n = c.max_objects
    truncated = int(mask[:, n:].sum()) if width > n else 0
    if width > n:
        feats, mask, truth = feats[:, :n], mask[:, :n], {k: v[:, :n] for k, v in truth.items()}
    elif width < n:
        pad = n - width
        feats = np.pad(feats, ((0, 0), (0, pad), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
        truth = {k: np.pad(v, ((0, 0), (0, pad))) for k, v in truth.items()}
    return ObjectArrays(np.ascontiguousarray(feats), np.ascontiguousarray(mask), oa.names, truth), truncated


def reference_collections(collections: Mapping[str, Collection]) -> list[str]:
    """Object collections that can define the leading object: those with both `pt` and `phi`."""
    return [n for n, c in collections.items() if not c.is_scalar and "pt" in c.features and "phi" in c.features]


def leading_phi(cols: Mapping[str, ObjectArrays], names: list[str], n_rows: int) -> np.ndarray:
    """Phi of the highest-pt valid object over `names` in each row (0 where a row has none)."""
    best_pt = np.full(n_rows, -np.inf)
    best_phi = np.zeros(n_rows, dtype=np.float32)
    for name in names:
        oa = cols[name]
        pt = np.where(oa.mask, oa.feature("pt"), -np.inf)
        j = pt.argmax(axis=1)
        top = pt[np.arange(n_rows), j]
        better = top > best_pt
        best_pt = np.where(better, top, best_pt)
        best_phi = np.where(better, oa.feature("phi")[np.arange(n_rows), j], best_phi)
    return best_phi


def rotate_phi(cols: Mapping[str, ObjectArrays], collections: Mapping[str, Collection], reference: np.ndarray) -> None:
    """Replace every `phi` feature (objects and scalars such as MET) by phi - reference, wrapped; in place."""
    for name, oa in cols.items():
        if "phi" not in collections[name].features:
            continue
        i = oa.names.index("phi")
        rotated = wrap_phi(oa.features[..., i] - reference[:, None]).astype(np.float32)
        oa.features[..., i] = np.where(oa.mask, rotated, 0.0)
