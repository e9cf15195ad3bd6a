"""Small physics helpers for objects stored as (pt [MeV], eta, phi): invariant masses, Z candidates."""

from __future__ import annotations

import numpy as np

ELECTRON_MASS_MEV = 0.511
MUON_MASS_MEV = 105.66
Z_MASS_GEV = 91.1876


def four_vectors(pt, eta, phi, mass):
    """(E, px, py, pz) in MeV from arrays of any shape."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.sqrt(px**2 + py**2 + pz**2 + mass**2), px, py, pz


def invariant_mass(pt, eta, phi, mass, axis: int = -1) -> np.ndarray:
    """Invariant mass (MeV) of the objects summed along `axis`."""
    e, px, py, pz = (c.sum(axis=axis) for c in four_vectors(pt, eta, phi, mass))
    return np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))


def best_z_candidate(pt, eta, phi, mass, charge, flavour, good) -> np.ndarray:
    """Per event, the opposite-sign same-flavour pair mass (MeV) closest to the Z mass (NaN if none).

    Inputs are [n_events, n_leptons]; `flavour` is any label equal for same-flavour leptons.
    """
    n = pt.shape[1]
    i, j = np.triu_indices(n, 1)
    pair = lambda a: np.stack([a[:, i], a[:, j]], axis=-1)  # noqa: E731  -> [events, pairs, 2]
    m = invariant_mass(pair(pt), pair(eta), pair(phi), pair(mass))
    ok = good[:, i] & good[:, j] & (charge[:, i] * charge[:, j] < 0) & (flavour[:, i] == flavour[:, j])
    dist = np.where(ok, np.abs(m / 1e3 - Z_MASS_GEV), np.inf)
    best = dist.argmin(axis=1)
    return np.where(np.isfinite(dist.min(axis=1)), m[np.arange(len(m)), best], np.nan)
