"""Missing transverse momentum: the negative vector sum of the reconstructed objects plus a soft term.

The soft term is the visible final-state particles within the calorimeters that no object took, scaled by a response
(`met_soft_response`), plus pileup: a scalar-sum contribution per interaction and a Gaussian noise growing with
sqrt(mu). MeV and radians.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..kinematics import azimuth, transverse_components
from .detector import CALORIMETER_ETA_MAX, DetectorConfig
from .truth import NEUTRINOS, Truth


def soft_term_rows(truth: Truth, final: np.ndarray, object_rows: Sequence[np.ndarray]) -> np.ndarray:
    """Visible final-state truth rows (|eta| < `CALORIMETER_ETA_MAX`) in none of the objects' truth rows (rows >= 0)."""
    in_object = np.zeros(len(truth.pid), dtype=bool)
    for rows in object_rows:
        in_object[rows[rows >= 0]] = True
    visible = ~np.isin(np.abs(truth.pid[final]), NEUTRINOS) & (np.abs(truth.eta[final]) < CALORIMETER_ETA_MAX)
    return final[visible & ~in_object[final]]


def missing_et(
    rng,
    truth: Truth,
    objects: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    soft: np.ndarray,
    mu: np.ndarray,
    cfg: DetectorConfig,
) -> dict[str, np.ndarray]:
    """Per event: `met` [MeV], its `phi` [rad] and `sumet` [MeV] from the objects' (evt, pt [MeV], phi) and the
    soft term's truth rows, with pileup's scalar sum and noise (`mu` per event)."""
    ne = truth.n_events
    mx = np.zeros(ne)
    my = np.zeros(ne)
    sumet = np.zeros(ne)
    for evt, pt, phi in objects:
        px, py = transverse_components(pt, phi)
        mx -= np.bincount(evt, weights=px, minlength=ne)
        my -= np.bincount(evt, weights=py, minlength=ne)
        sumet += np.bincount(evt, weights=pt, minlength=ne)
    r = cfg.met_soft_response
    mx -= r * np.bincount(truth.evt[soft], weights=truth.px[soft], minlength=ne)
    my -= r * np.bincount(truth.evt[soft], weights=truth.py[soft], minlength=ne)
    sumet += r * np.bincount(truth.evt[soft], weights=truth.pt[soft], minlength=ne) + mu * cfg.pileup_sumet_mev_per_mu
    noise = cfg.met_soft_noise_mev_per_sqrt_mu * np.sqrt(mu)
    mx += noise * rng.standard_normal(ne)
    my += noise * rng.standard_normal(ne)
    return {"met": np.hypot(mx, my), "phi": azimuth(mx, my), "sumet": sumet}
