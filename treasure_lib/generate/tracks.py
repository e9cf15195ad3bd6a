"""Tracks: charged particles through the emulated inner detector, pileup and fake tracks, and track isolation.

Each charged final-state particle in acceptance becomes a track with an efficiency, smeared helix parameters
(pT, theta, phi; impact parameters d0 and z0 w.r.t. the reconstructed primary vertex) with estimated uncertainties,
fit quality, hit counts, a truth origin and a soft-lepton tag. Pileup tracks come from other vertices along z, fakes
from nowhere. Numbers in `DetectorConfig`; MeV, mm and radians.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..kinematics import delta_r, eta_of_polar_angle, momentum, polar_angle, wrap_phi
from ..object_collections import TRUTH_ORIGINS
from .detector import GEV, DetectorConfig, EventConditions
from .grouping import event_pairs
from .truth import Ancestry, Truth

PV_Z0SINTHETA_MAX_MM = 3.0  # |z0 sin theta| of a track from the primary vertex


@dataclass
class Tracks:
    """Reconstructed tracks of a batch, one row per track (`evt` says which event)."""

    evt: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    d0: np.ndarray  # transverse IP w.r.t. the reconstructed PV [mm]
    z0: np.ndarray  # longitudinal IP w.r.t. the reconstructed PV [mm]
    d0_unc: np.ndarray
    z0sintheta_unc: np.ndarray
    theta_unc: np.ndarray
    phi_unc: np.ndarray
    qoverp_unc: np.ndarray
    chi2: np.ndarray
    ndof: np.ndarray
    hits: dict  # hit and hole counts, int8 arrays
    lepton_id: np.ndarray  # reconstructed soft-lepton tag: 0 none, 1 electron, 2 muon (`lepton_tags`)
    origin: np.ndarray  # TRUTH_ORIGINS value
    parent: np.ndarray  # truth row of the weakly decaying parent (-1 if none)
    truth_row: np.ndarray  # truth row of the particle (-1 for pileup and fakes)

    @property
    def theta(self) -> np.ndarray:
        """Polar angle [rad]."""
        return polar_angle(self.eta)

    @property
    def qoverp(self) -> np.ndarray:
        """Charge over momentum [1/MeV]."""
        return self.charge / momentum(self.pt, self.eta)

    @property
    def z0sintheta(self) -> np.ndarray:
        """Longitudinal IP projected transverse to the track [mm]."""
        return self.z0 * np.sin(self.theta)

    def from_primary_vertex(self) -> np.ndarray:
        """Tracks compatible with the primary vertex: |z0 sin theta| < `PV_Z0SINTHETA_MAX_MM`."""
        return np.abs(self.z0sintheta) < PV_Z0SINTHETA_MAX_MM

    def take(self, idx: np.ndarray) -> Tracks:
        kw = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "hits"}
        return Tracks(hits={k: v[idx] for k, v in self.hits.items()}, **kw)

    @staticmethod
    def concat(parts: list[Tracks]) -> Tracks:
        kw = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Tracks) if f.name != "hits"}
        hits = {k: np.concatenate([p.hits[k] for p in parts]) for k in parts[0].hits}
        return Tracks(hits=hits, **kw)


def _impact_parameters(px, py, pz, dx, dy, dz):
    """Straight-line transverse and longitudinal IPs of a track from (dx, dy, dz) w.r.t. the PV."""
    pt = np.hypot(px, py)
    d0 = (dx * py - dy * px) / pt
    z0 = dz - (dx * px + dy * py) / pt * (pz / pt)
    return d0, z0


def _track_measurement(rng, cfg: DetectorConfig, evt, pt, eta, phi, charge, d0_true, z0_true, radius):
    """Smear true track parameters and attach uncertainties, fit quality and hit counts."""
    n = len(pt)
    pt_gev = pt / GEV
    theta = polar_angle(eta)
    sin_t = np.sin(theta)
    sig_d0 = np.hypot(cfg.d0_resolution_const_mm, cfg.d0_resolution_msc_mm_gev / (pt_gev * np.sqrt(sin_t)))
    sig_z0st = np.hypot(cfg.z0_resolution_const_mm, cfg.z0_resolution_msc_mm_gev / (pt_gev * np.sqrt(sin_t)))
    tail = np.where(rng.random(n) < cfg.ip_tail_fraction, cfg.ip_tail_scale, 1.0)
    d0 = d0_true + sig_d0 * tail * rng.standard_normal(n)
    z0 = z0_true + sig_z0st / sin_t * tail * rng.standard_normal(n)
    sig_qp_rel = np.hypot(cfg.qoverp_resolution_const, cfg.qoverp_resolution_per_gev * pt_gev)
    pt_reco = pt / np.clip(1.0 + sig_qp_rel * rng.standard_normal(n), 0.2, None)
    sig_theta = np.hypot(cfg.theta_resolution_const_rad, cfg.theta_resolution_msc_rad_gev / pt_gev)
    sig_phi = np.hypot(cfg.phi_resolution_const_rad, cfg.phi_resolution_msc_rad_gev / pt_gev)
    theta_reco = np.clip(theta + sig_theta * rng.standard_normal(n), 1e-3, np.pi - 1e-3)
    eta_reco = eta_of_polar_angle(theta_reco)
    phi_reco = wrap_phi(phi + sig_phi * rng.standard_normal(n))
    est = lambda s: s * np.exp(0.05 * rng.standard_normal(n))  # noqa: E731  (estimated, not true, uncertainty)
    pixel = np.clip(rng.poisson(0.3, n) + 3, 0, 8) - (radius > 120.0) * 3
    ibl = (radius < 30.0) & (rng.random(n) < 0.97)
    nibl = (radius < 45.0) & (rng.random(n) < 0.95)
    sct = np.clip(8 + rng.poisson(0.4, n) - (rng.random(n) < 0.1) * 2, 0, 12) - (radius > 290.0) * 4
    pix_holes = (rng.random(n) < 0.03).astype(np.int8)
    sct_holes = (rng.random(n) < 0.05).astype(np.int8)
    hits = {
        "numberOfPixelHits": np.clip(pixel, 0, None).astype(np.int8),
        "numberOfSCTHits": np.clip(sct, 0, None).astype(np.int8),
        "numberOfInnermostPixelLayerHits": ibl.astype(np.int8),
        "numberOfNextToInnermostPixelLayerHits": nibl.astype(np.int8),
        "numberOfPixelHoles": pix_holes,
        "numberOfSCTHoles": sct_holes,
        "numberOfPixelSharedHits": (rng.random(n) < 0.04).astype(np.int8),
        "numberOfSCTSharedHits": (rng.random(n) < 0.05).astype(np.int8),
    }
    ndof = 2.0 * (hits["numberOfPixelHits"] + hits["numberOfInnermostPixelLayerHits"]) + hits["numberOfSCTHits"] - 5.0
    ndof = np.clip(ndof, 1.0, None)
    chi2 = rng.chisquare(ndof) * np.where(tail > 1.0, 1.6, 1.0)
    return dict(
        evt=evt,
        pt=pt_reco,
        eta=eta_reco,
        phi=phi_reco,
        charge=charge,
        d0=d0,
        z0=z0,
        d0_unc=est(sig_d0),
        z0sintheta_unc=est(sig_z0st),
        theta_unc=est(sig_theta),
        phi_unc=est(sig_phi),
        qoverp_unc=est(sig_qp_rel) * np.abs(charge) / momentum(pt_reco, eta_reco),
        chi2=chi2,
        ndof=ndof,
        hits=hits,
    )


LEPTON_TAG = {"none": 0, "electron": 1, "muon": 2}


def _turn_on(pt: np.ndarray, pt_min: float, width: float) -> np.ndarray:
    """0 below pt_min, rising as 1 - exp(-(pT - pt_min) / width) above it."""
    return np.where(pt > pt_min, -np.expm1(-(pt - pt_min) / width), 0.0)


def lepton_tags(rng, pt: np.ndarray, eta: np.ndarray, true_lepton: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """The tracks' soft-lepton tag (`leptonID`: 0 none, 1 electron, 2 muon) as a reconstruction would give it.

    `true_lepton` says what the track really is (same codes; 0 for hadrons, pileup and fake tracks). True muons
    (electrons) are tagged with the muon (electron) turn-on and plateau, hadrons are fake-tagged at the per-track
    rates above threshold; one uniform draw per track decides, so a track carries at most one tag.
    Momenta in MeV.
    """
    c = cfg
    abs_eta = np.abs(eta)
    in_mu = abs_eta < c.track_muon_tag_eta_max
    in_e = abs_eta < c.track_electron_tag_eta_max
    above_mu = in_mu & (pt > c.track_muon_tag_pt_min_mev)
    above_e = in_e & (pt > c.track_electron_tag_pt_min_mev)
    is_mu, is_e, hadron = true_lepton == LEPTON_TAG["muon"], true_lepton == LEPTON_TAG["electron"], true_lepton == 0
    p_mu = np.where(
        is_mu & in_mu,
        c.track_muon_tag_efficiency * _turn_on(pt, c.track_muon_tag_pt_min_mev, c.track_muon_tag_turn_on_mev),
        0.0,
    )
    p_mu = np.where(hadron & above_mu, c.track_muon_tag_fake_rate, p_mu)
    p_e = np.where(
        is_e & in_e,
        c.track_electron_tag_efficiency
        * _turn_on(pt, c.track_electron_tag_pt_min_mev, c.track_electron_tag_turn_on_mev),
        0.0,
    )
    p_e = np.where(hadron & above_e, c.track_electron_tag_fake_rate, p_e)
    u = rng.random(len(pt))
    return np.select([u < p_mu, u < p_mu + p_e], [LEPTON_TAG["muon"], LEPTON_TAG["electron"]], 0).astype(np.int8)


def reconstruct_tracks(
    rng, truth: Truth, anc_rows: np.ndarray, anc: Ancestry, cond: EventConditions, cfg: DetectorConfig
) -> Tracks:
    """Charged final-state particles in acceptance -> tracks with efficiency, IPs and origins.

    `anc_rows` are the truth rows `anc` was computed for (the final-state particles).
    """
    rows = anc_rows
    charged = truth.charge[rows] != 0
    pt = truth.pt[rows]
    eta = truth.eta[rows]
    # production point relative to the hard-scatter vertex (Pythia puts it at the origin)
    radius = np.hypot(truth.vx[rows], truth.vy[rows])
    abs_eta = np.abs(eta)
    eff = (
        cfg.track_efficiency_central
        + (cfg.track_efficiency_forward - cfg.track_efficiency_central) * abs_eta / cfg.track_eta_max
    )
    eff = eff * np.clip(1.0 - radius / cfg.track_efficiency_displaced_radius_mm, 0.0, 1.0)
    sel = charged & (pt > cfg.track_pt_min_mev) & (abs_eta < cfg.track_eta_max) & (rng.random(len(rows)) < eff)
    idx = np.flatnonzero(sel)
    r = rows[idx]
    evt = truth.evt[r]
    pv_t, pv_r = cond.pv_true[evt], cond.pv_reco[evt]
    dx = truth.vx[r] + pv_t[:, 0] - pv_r[:, 0]
    dy = truth.vy[r] + pv_t[:, 1] - pv_r[:, 1]
    dz = truth.vz[r] + pv_t[:, 2] - pv_r[:, 2]
    d0_true, z0_true = _impact_parameters(truth.px[r], truth.py[r], truth.pz[r], dx, dy, dz)
    meas = _track_measurement(
        rng, cfg, evt, pt[idx], eta[idx], truth.phi[r], truth.charge[r], d0_true, z0_true, radius[idx]
    )
    b, c, tau = anc.weak_b[idx], anc.weak_c[idx], anc.tau[idx]
    o = TRUTH_ORIGINS
    origin = np.select(
        [(b >= 0) & (c >= 0), b >= 0, c >= 0, tau >= 0, radius[idx] > 0.05],
        [o["FromBC"], o["FromB"], o["FromC"], o["FromTau"], o["OtherSecondary"]],
        o["Primary"],
    )
    parent = np.select([c >= 0, b >= 0, tau >= 0], [c, b, tau], -1)
    apid = np.abs(truth.pid[r])
    true_lepton = np.select([apid == 11, apid == 13], [LEPTON_TAG["electron"], LEPTON_TAG["muon"]], 0)
    lepton_id = lepton_tags(rng, meas["pt"], meas["eta"], true_lepton, cfg)
    return Tracks(lepton_id=lepton_id, origin=origin.astype(np.int8), parent=parent, truth_row=r, **meas)


def pileup_and_fake_tracks(rng, cond: EventConditions, cfg: DetectorConfig) -> Tracks:
    """Tracks from pileup vertices spread along z, and random fakes, per event."""
    n_events = len(cond.mu)
    n_pu = rng.poisson(cond.mu * cfg.pileup_tracks_per_interaction)
    n_fake = rng.poisson(np.full(n_events, cfg.fake_tracks_per_event))
    parts = []
    for counts, origin in ((n_pu, TRUTH_ORIGINS["Pileup"]), (n_fake, TRUTH_ORIGINS["Fake"])):
        evt = np.repeat(np.arange(n_events), counts)
        n = len(evt)
        pt = cfg.track_pt_min_mev + rng.exponential(cfg.pileup_track_pt_slope_mev, n)
        eta = rng.uniform(-cfg.track_eta_max, cfg.track_eta_max, n)
        phi = rng.uniform(-np.pi, np.pi, n)
        charge = rng.choice([-1.0, 1.0], n)
        if origin == TRUTH_ORIGINS["Pileup"]:
            z_vtx = rng.normal(0.0, cfg.beamspot_sigma_z_mm, n)
            d0_true, z0_true = np.zeros(n), z_vtx - cond.pv_reco[evt, 2]
        else:
            d0_true, z0_true = rng.normal(0, 1.0, n), rng.normal(0, 3.0, n)
        meas = _track_measurement(rng, cfg, evt, pt, eta, phi, charge, d0_true, z0_true, np.zeros(n))
        if origin == TRUTH_ORIGINS["Fake"]:
            meas["chi2"] = meas["chi2"] * 3.0
        tags = lepton_tags(rng, meas["pt"], meas["eta"], np.zeros(n, np.int8), cfg)  # hadron-like: fake tags only
        parts.append(
            Tracks(
                lepton_id=tags,
                origin=np.full(n, origin, np.int8),
                parent=np.full(n, -1),
                truth_row=np.full(n, -1),
                **meas,
            )
        )
    return Tracks.concat(parts)


def track_isolation(
    evt,
    eta,
    phi,
    pt,
    tracks: Tracks,
    n_events: int,
    cone: float = 0.3,
    exclude_rows: np.ndarray | None = None,
    obj_rows: np.ndarray | None = None,
) -> np.ndarray:
    """trk_iso03: sum pT of tracks within `cone` (|z0 sin theta| < 3 mm), excluding the object's own track,
    divided by the object's pT (dimensionless)."""
    pv_like = tracks.from_primary_vertex()
    ia, ib = event_pairs(evt, tracks.evt, n_events)
    near = (delta_r(eta[ia], phi[ia], tracks.eta[ib], tracks.phi[ib]) < cone) & pv_like[ib]
    if obj_rows is not None:
        near &= tracks.truth_row[ib] != obj_rows[ia]
    total = np.bincount(ia[near], weights=tracks.pt[ib[near]], minlength=len(evt))
    return total / pt
