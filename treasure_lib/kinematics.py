"""Four-vectors, angles and the particle masses they use: one home, one formula per quantity.

Why this module: the generator, the H -> 4l selection, the reconstruction diagnostics and the lepton-peak study all
turn (pt, eta, phi, mass) into four-vectors and back, wrap azimuthal angles and measure distances in (eta, phi).
Units: momenta, energies and masses in MeV as ATLAS files store them (Z_MASS_GEV says GeV), angles in radians, eta
dimensionless. Functions take numpy arrays of any shape (broadcast) and return arrays.

The formulas are the exact floating-point operations their callers always used: generated files and metrics depend
on them bit for bit. That is also why a four-vector's mass has two summation orders (`four_vector_mass` on
components, `p4_mass` on stacked [..., 4] arrays), and why scikit-hep `vector` is not used here (its formulas
differ in the last bits).
"""

from __future__ import annotations

import numpy as np

ELECTRON_MASS_MEV = 0.511
MUON_MASS_MEV = 105.66
PION_MASS_MEV = 139.57
Z_MASS_GEV = 91.1876
ETA_AT_ZERO_PT = 20.0  # |eta| given to a momentum along the beam (pt = 0)


# --------------------------------------------------------------------------- angles


def wrap_phi(phi):
    """Azimuthal angles [rad] into [-pi, pi)."""
    return (phi + np.pi) % (2 * np.pi) - np.pi


def delta_phi(phi1, phi2):
    """phi1 - phi2 [rad], wrapped into [-pi, pi)."""
    return wrap_phi(phi1 - phi2)


def delta_r(eta1, phi1, eta2, phi2):
    """Distance in (eta, phi): sqrt(deta^2 + dphi^2), dphi wrapped (dimensionless)."""
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


def polar_angle(eta):
    """theta [rad] of a pseudorapidity: 2 arctan(exp(-eta))."""
    return 2.0 * np.arctan(np.exp(-eta))


def eta_of_polar_angle(theta):
    """Pseudorapidity of a polar angle theta [rad] in (0, pi): -ln tan(theta / 2)."""
    return -np.log(np.tan(theta / 2.0))


# --------------------------------------------------------------------------- cartesian -> (pt, eta, phi)


def azimuth(px, py):
    """phi [rad] in [-pi, pi] of a transverse momentum (px, py)."""
    return np.arctan2(py, px)


def pseudorapidity(px, py, pz, pt=None):
    """eta = arcsinh(pz / pt) of a momentum; +-20 (the sign of pz) along the beam, where pt = 0.

    `pt` [same unit as px] if already known: sqrt(px^2 + py^2) otherwise."""
    pt = np.sqrt(px * px + py * py) if pt is None else pt
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    return np.where(pt > 0, eta, np.sign(pz) * ETA_AT_ZERO_PT)


def pt_eta_phi(px, py, pz):
    """(pt, eta, phi) of momenta (px, py, pz): pt in their unit (MeV), phi [rad]."""
    return np.hypot(px, py), pseudorapidity(px, py, pz), azimuth(px, py)


# --------------------------------------------------------------------------- (pt, eta, phi) -> cartesian


def transverse_components(pt, phi):
    """(px, py) = (pt cos phi, pt sin phi) in the unit of pt."""
    return pt * np.cos(phi), pt * np.sin(phi)


def momentum(pt, eta):
    """|p| = pt cosh(eta) in the unit of pt."""
    return pt * np.cosh(eta)


def four_vectors(pt, eta, phi, mass):
    """(E, px, py, pz) in MeV from pt [MeV], eta, phi [rad] and mass [MeV], arrays of any shape."""
    px, py = transverse_components(pt, phi)
    pz = pt * np.sinh(eta)
    return np.sqrt(px**2 + py**2 + pz**2 + mass**2), px, py, pz


# --------------------------------------------------------------------------- masses and frames


def four_vector_mass(e, px, py, pz):
    """Invariant mass sqrt(E^2 - px^2 - py^2 - pz^2) of four-vector components [MeV]; 0 where that is negative."""
    return np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))


def p4_mass(p4):
    """Invariant mass sqrt(E^2 - |p|^2) of four-vectors stacked as [..., 4] = (E, px, py, pz) [MeV]; 0 where negative.

    The same quantity as `four_vector_mass`, summed as |p|^2 first (the H -> 4l selection's order, kept bit for bit)."""
    return np.sqrt(np.clip(p4[..., 0] ** 2 - (p4[..., 1:] ** 2).sum(-1), 0.0, None))


def invariant_mass(pt, eta, phi, mass, axis: int = -1):
    """Invariant mass [MeV] of the objects (pt [MeV], eta, phi, mass [MeV]) summed along `axis`."""
    return four_vector_mass(*(c.sum(axis=axis) for c in four_vectors(pt, eta, phi, mass)))


def boost_to_rest_frame(p, frame):
    """Four-vectors `p` seen in the rest frame of `frame` (both [..., 4] = (E, px, py, pz), broadcast; `frame`
    time-like). Any energy unit; the result is in the unit of `p`."""
    beta = frame[..., 1:] / frame[..., :1]
    b2 = (beta**2).sum(-1, keepdims=True)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (beta * p[..., 1:]).sum(-1, keepdims=True)
    # (gamma - 1) / beta^2 written as gamma^2 / (gamma + 1): finite for a frame at rest
    vec = p[..., 1:] + (gamma**2 / (gamma + 1.0) * bp - gamma * p[..., :1]) * beta
    return np.concatenate([gamma * (p[..., :1] - bp), vec], axis=-1)


def track_sum(pt, deta, dphi, valid, jet_eta) -> dict:
    """The four-vector sum of each jet's tracks, taken as pions: {pt [MeV], eta, phi [rad], mass [MeV]} per jet.

    Tracks [n_jets, n_tracks]: pt [MeV], deta and dphi relative to the jet axis (so the summed phi is relative to it
    too), `valid` the mask; `jet_eta` [n_jets] places the tracks in eta. A jet without tracks gets pt 0 and eta 0.
    """
    eta = jet_eta[:, None] + deta
    e_pt = np.where(valid, pt, 0.0)
    px, py = (c.sum(1) for c in transverse_components(e_pt, dphi))
    pz = (e_pt * np.sinh(eta)).sum(1)
    energy = np.where(valid, np.sqrt(momentum(pt, eta) ** 2 + PION_MASS_MEV**2), 0.0).sum(1)
    jet_pt = np.hypot(px, py)
    p = np.sqrt(jet_pt**2 + pz**2)
    return {
        "pt": jet_pt,
        "eta": np.arcsinh(np.divide(pz, jet_pt, out=np.zeros_like(pz), where=jet_pt > 0)),
        "phi": azimuth(px, py),
        "mass": np.sqrt(np.clip(energy**2 - p**2, 0, None)),
    }


# --------------------------------------------------------------------------- lepton pairs


def z_candidate_mass(pt, eta, phi, mass, charge, flavour, good):
    """Per event, the mass [MeV] of the opposite-sign same-flavour pair closest to the Z mass (NaN if none).

    Inputs are [n_events, n_leptons] (pt and mass in MeV); `flavour` is any label equal for same-flavour leptons,
    `good` says which leptons may pair.
    """
    n = pt.shape[1]
    i, j = np.triu_indices(n, 1)
    pair = lambda a: np.stack([a[:, i], a[:, j]], axis=-1)  # noqa: E731  -> [events, pairs, 2]
    m = invariant_mass(pair(pt), pair(eta), pair(phi), pair(mass))
    ok = good[:, i] & good[:, j] & (charge[:, i] * charge[:, j] < 0) & (flavour[:, i] == flavour[:, j])
    dist = np.where(ok, np.abs(m / 1e3 - Z_MASS_GEV), np.inf)
    best = dist.argmin(axis=1)
    return np.where(np.isfinite(dist.min(axis=1)), m[np.arange(len(m)), best], np.nan)
