"""A fast, parametric, ATLAS-like detector emulation, vectorised over whole batches.

Everything here is an *emulation* with documented numbers (all in `DetectorConfig`, all
settable from `generate.detector` in params): efficiencies, resolutions and identification
scores drawn from truth. Nothing loops over particles in Python. MeV and mm throughout.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from ..collections import TRUTH_ORIGINS
from ..errors import ConfigError
from .truth import Ancestry, Truth, delta_phi, eta_of

GEV = 1000.0


@dataclass(frozen=True)
class DetectorConfig:
    """Every number of the emulation. Resolutions are Gaussian unless a tail is named."""

    # beam spot and primary vertex [mm]
    beamspot_sigma_xy_mm: float = 0.010
    beamspot_sigma_z_mm: float = 35.0
    pv_resolution_xy_mm: float = 0.012
    pv_resolution_z_mm: float = 0.030
    # pileup: mu from a Run-3-like Gaussian profile, tracks from other vertices along z
    mu_mean: float = 52.0
    mu_sigma: float = 12.0
    mu_min: float = 10.0
    pileup_tracks_per_interaction: float = 4.0  # charged, pT > track_pt_min_mev, |eta| < track_eta_max
    pileup_track_pt_slope_mev: float = 600.0  # exponential spectrum above threshold
    pileup_jets_per_interaction: float = 0.004  # stochastic pileup jets above jet_pt_min_mev
    pileup_jet_pt_slope_mev: float = 6000.0
    pileup_rho_mev_per_mu: float = 120.0  # soft pileup pT density per interaction (per unit area)
    pileup_sumet_mev_per_mu: float = 3000.0  # soft pileup scalar sum ET per interaction
    # tracking
    track_pt_min_mev: float = 500.0
    track_eta_max: float = 2.5
    track_efficiency_central: float = 0.92  # at eta = 0, falling linearly to the forward value
    track_efficiency_forward: float = 0.82  # at |eta| = track_eta_max
    track_efficiency_displaced_radius_mm: float = 300.0  # efficiency falls linearly to 0 at this production radius
    fake_tracks_per_event: float = 1.5
    d0_resolution_const_mm: float = 0.010  # sigma(d0) = 10 um (+) 80 um / pT[GeV]
    d0_resolution_msc_mm_gev: float = 0.080
    z0_resolution_const_mm: float = 0.040  # sigma(z0 sin theta) = 40 um (+) 120 um / pT[GeV]
    z0_resolution_msc_mm_gev: float = 0.120
    ip_tail_fraction: float = 0.03  # fraction of tracks with a wider IP resolution
    ip_tail_scale: float = 3.0
    qoverp_resolution_const: float = 0.012  # sigma(q/p)/(q/p) = 1.2% (+) 0.04% * pT[GeV]
    qoverp_resolution_per_gev: float = 0.0004
    theta_resolution_const_rad: float = 0.0002
    theta_resolution_msc_rad_gev: float = 0.0015
    phi_resolution_const_rad: float = 0.0001
    phi_resolution_msc_rad_gev: float = 0.0012
    # soft-lepton tag of tracks (the flavour-tagging `leptonID`): a reconstruction with a turn-on, a plateau and
    # fakes, eff(pT) = plateau * (1 - exp(-(pT - pt_min) / turn_on)) above pt_min. Muons: a muon-spectrometer
    # match, out of reach below ~3 GeV where muons range out in the calorimeter. Electrons inside jets: the
    # calorimeter cluster is shared with hadrons, so the plateau is lower. Fakes: charged hadrons above threshold
    # (pion and kaon decays in flight and punch-through for muons, pi0 overlaps and conversions for electrons),
    # pileup and fake tracks included.
    track_muon_tag_pt_min_mev: float = 3000.0
    track_muon_tag_turn_on_mev: float = 1000.0
    track_muon_tag_efficiency: float = 0.90  # plateau, true muons
    track_muon_tag_eta_max: float = 2.5
    track_muon_tag_fake_rate: float = 0.003  # per charged-hadron track above track_muon_tag_pt_min_mev
    track_electron_tag_pt_min_mev: float = 3000.0
    track_electron_tag_turn_on_mev: float = 1500.0
    track_electron_tag_efficiency: float = 0.65  # plateau, true electrons in jets
    track_electron_tag_eta_max: float = 2.47
    track_electron_tag_fake_rate: float = 0.008  # per charged-hadron track above track_electron_tag_pt_min_mev
    # electrons
    electron_pt_min_mev: float = 7000.0
    electron_eta_max: float = 2.47
    electron_efficiency: float = 0.92
    electron_resolution_stochastic: float = 0.10  # sigma(E)/E = 10%/sqrt(E[GeV]) (+) 0.7%
    electron_resolution_const: float = 0.007
    electron_fake_rate: float = 0.004  # per charged hadron above electron_pt_min_mev
    # muons
    muon_pt_min_mev: float = 5000.0
    muon_eta_max: float = 2.7
    muon_efficiency: float = 0.96
    muon_resolution_const: float = 0.02
    muon_resolution_per_gev: float = 0.0001
    muon_fake_rate: float = 0.001
    # photons
    photon_pt_min_mev: float = 10000.0
    photon_eta_max: float = 2.37
    photon_efficiency: float = 0.85
    # identification: a Gaussian discriminant per origin, shifted down by isolation
    id_score_prompt: float = 2.5
    id_score_nonprompt: float = 1.0
    id_score_fake: float = -0.5
    id_isolation_penalty: float = 2.0  # score -= penalty * trk_iso03
    # hadronic taus
    tau_pt_min_mev: float = 20000.0
    tau_eta_max: float = 2.5
    tau_efficiency_1p: float = 0.65
    tau_efficiency_3p: float = 0.50
    tau_resolution: float = 0.08
    tau_decay_mode_purity: float = 0.75  # probability NNDecayMode equals the true mode
    tau_fake_rate_per_jet: float = 0.02
    # jets (anti-kt R = 0.4 on visible particles)
    jet_radius: float = 0.4
    jet_constituent_e_min_mev: float = 300.0  # calorimeter-like threshold: softer particles form no cluster
    jet_pt_min_mev: float = 20000.0
    jet_eta_max: float = 4.5
    jer_noise_mev: float = 2500.0  # sigma(pT)/pT = N/pT (+) S/sqrt(pT) (+) C, N grows with sqrt(mu/50)
    jer_stochastic: float = 0.75
    jer_constant: float = 0.04
    jes_scale: float = 1.0
    jet_angular_resolution_const: float = 0.005  # sigma(eta), sigma(phi) = 0.005 (+) 0.5 / pT[GeV]
    jet_angular_resolution_gev: float = 0.5
    jvt_pt_max_mev: float = 60000.0  # JVT applies below this pT
    # MET soft term
    met_soft_response: float = 0.6
    met_soft_noise_mev_per_sqrt_mu: float = 900.0


def detector_config(overrides: Mapping | None) -> DetectorConfig:
    """Build from `generate.detector`; unknown names suggest the closest parameter."""
    names = [f.name for f in fields(DetectorConfig)]
    for key in overrides or {}:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(
                f"unknown detector parameter 'generate.detector.{key}'"
                + (f"; did you mean '{close[0]}'?" if close else "")
            )
    return DetectorConfig(**{k: float(v) for k, v in (overrides or {}).items()})


# --------------------------------------------------------------------------- helpers


def event_pairs(evt_a: np.ndarray, evt_b: np.ndarray, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with evt_a[i] == evt_b[j], without a Python loop over events."""
    order_b = np.argsort(evt_b, kind="stable")
    counts_b = np.bincount(evt_b, minlength=n_events)
    offs_b = np.concatenate([[0], np.cumsum(counts_b)])
    per_a = counts_b[evt_a]
    ia = np.repeat(np.arange(len(evt_a)), per_a)
    start = np.repeat(np.cumsum(per_a) - per_a, per_a)
    ib = order_b[offs_b[evt_a[ia]] + (np.arange(len(ia)) - start)]
    return ia, ib


def delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


def smear_relative(rng: np.random.Generator, values: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return values * np.clip(1.0 + sigma * rng.standard_normal(len(values)), 0.05, None)


def scalar_sum_by_event(values: np.ndarray, evt: np.ndarray, n_events: int) -> np.ndarray:
    return np.bincount(evt, weights=values, minlength=n_events)


# --------------------------------------------------------------------------- vertices and pileup


@dataclass
class EventConditions:
    mu: np.ndarray  # pileup interactions per crossing
    pv_true: np.ndarray  # [n, 3] mm: beam spot position of the hard scatter
    pv_reco: np.ndarray  # [n, 3] mm: reconstructed primary vertex


def event_conditions(rng: np.random.Generator, n: int, cfg: DetectorConfig) -> EventConditions:
    mu = np.clip(rng.normal(cfg.mu_mean, cfg.mu_sigma, n), cfg.mu_min, None)
    sig = np.array([cfg.beamspot_sigma_xy_mm, cfg.beamspot_sigma_xy_mm, cfg.beamspot_sigma_z_mm])
    pv_true = rng.standard_normal((n, 3)) * sig
    res = np.array([cfg.pv_resolution_xy_mm, cfg.pv_resolution_xy_mm, cfg.pv_resolution_z_mm])
    return EventConditions(mu, pv_true, pv_true + rng.standard_normal((n, 3)) * res)


# --------------------------------------------------------------------------- tracks


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
        return 2.0 * np.arctan(np.exp(-self.eta))

    @property
    def qoverp(self) -> np.ndarray:
        return self.charge / (self.pt * np.cosh(self.eta))

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
    theta = 2.0 * np.arctan(np.exp(-eta))
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
    eta_reco = -np.log(np.tan(theta_reco / 2.0))
    phi_reco = (phi + sig_phi * rng.standard_normal(n) + np.pi) % (2 * np.pi) - np.pi
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
        qoverp_unc=est(sig_qp_rel) * np.abs(charge) / (pt_reco * np.cosh(eta_reco)),
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
    pv_like = np.abs(tracks.z0 * np.sin(tracks.theta)) < 3.0
    ia, ib = event_pairs(evt, tracks.evt, n_events)
    near = (delta_r(eta[ia], phi[ia], tracks.eta[ib], tracks.phi[ib]) < cone) & pv_like[ib]
    if obj_rows is not None:
        near &= tracks.truth_row[ib] != obj_rows[ia]
    total = np.bincount(ia[near], weights=tracks.pt[ib[near]], minlength=len(evt))
    return total / pt


# --------------------------------------------------------------------------- leptons and photons


def _identify(rng, cfg: DetectorConfig, kind: np.ndarray, iso: np.ndarray) -> np.ndarray:
    """An ID discriminant: higher for prompt objects, lower for non-prompt and fakes, worse when not isolated."""
    mean = np.select([kind == 1, kind == 2], [cfg.id_score_prompt, cfg.id_score_nonprompt], cfg.id_score_fake)
    return mean - cfg.id_isolation_penalty * np.clip(iso, 0, 2) + rng.standard_normal(len(kind))


def _origin_kind(anc: Ancestry, idx: np.ndarray) -> np.ndarray:
    """1 prompt (from W/Z/H/top or a tau from them), 2 non-prompt (from a hadron)."""
    return np.where(anc.from_hadron[idx], 2, 1)


@dataclass
class Objects:
    """Reconstructed objects of one type for a batch (flat, `evt` says which event)."""

    evt: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    columns: dict  # further per-object features, by output name
    truth_row: np.ndarray  # truth row (-1 for fakes)

    def __len__(self) -> int:
        return len(self.evt)


def _candidates(rng, sel: np.ndarray, eff: float) -> np.ndarray:
    """Positions passing the selection and an efficiency draw."""
    keep = sel & (rng.random(len(sel)) < eff)
    return np.flatnonzero(keep)


def reconstruct_electrons(rng, truth: Truth, rows, anc: Ancestry, tracks: Tracks, cfg: DetectorConfig) -> Objects:
    apid = np.abs(truth.pid[rows])
    pt, eta = truth.pt[rows], truth.eta[rows]
    crack = (np.abs(eta) > 1.37) & (np.abs(eta) < 1.52)
    real = _candidates(
        rng,
        (apid == 11) & (pt > cfg.electron_pt_min_mev * 0.8) & (np.abs(eta) < cfg.electron_eta_max) & ~crack,
        cfg.electron_efficiency,
    )
    hadron = (truth.charge[rows] != 0) & (apid > 100)
    fake = _candidates(
        rng,
        hadron & (pt > cfg.electron_pt_min_mev) & (np.abs(eta) < cfg.electron_eta_max) & ~crack,
        cfg.electron_fake_rate,
    )
    idx = np.concatenate([real, fake])
    kind = np.concatenate([_origin_kind(anc, real), np.zeros(len(fake), int)])
    r = rows[idx]
    e = truth.e[r]
    sigma = np.sqrt((cfg.electron_resolution_stochastic / np.sqrt(e / GEV)) ** 2 + cfg.electron_resolution_const**2)
    pt_reco = smear_relative(rng, truth.pt[r], sigma)
    keep = pt_reco > cfg.electron_pt_min_mev
    idx, kind, r, pt_reco = idx[keep], kind[keep], r[keep], pt_reco[keep]
    evt, eta, phi = truth.evt[r], truth.eta[r], truth.phi[r]
    iso = track_isolation(evt, eta, phi, pt_reco, tracks, truth.n_events, obj_rows=r)
    score = _identify(rng, cfg, kind, iso)
    charge = np.where(kind == 0, rng.choice([-1.0, 1.0], len(r)), truth.charge[r])
    charge = np.where(rng.random(len(r)) < 0.002, -charge, charge)  # charge flip
    cols = {
        "charge": charge,
        "trk_iso03": iso,
        "LHLoose": (score > 0.3).astype(np.int8),
        "LHMedium": (score > 1.0).astype(np.int8),
        "LHTight": (score > 1.8).astype(np.int8),
        "truthOrigin": kind.astype(np.int8),
    }
    return Objects(evt, pt_reco, eta, phi, cols, np.where(kind == 0, -1, r))


def reconstruct_muons(rng, truth: Truth, rows, anc: Ancestry, tracks: Tracks, cfg: DetectorConfig) -> Objects:
    apid = np.abs(truth.pid[rows])
    pt, eta = truth.pt[rows], truth.eta[rows]
    acc = np.abs(eta) < cfg.muon_eta_max
    real = _candidates(rng, (apid == 13) & (pt > cfg.muon_pt_min_mev * 0.8) & acc, cfg.muon_efficiency)
    hadron = (truth.charge[rows] != 0) & (apid > 100)
    fake = _candidates(rng, hadron & (pt > cfg.muon_pt_min_mev) & acc, cfg.muon_fake_rate)
    idx = np.concatenate([real, fake])
    kind = np.concatenate([_origin_kind(anc, real), np.zeros(len(fake), int)])
    r = rows[idx]
    sigma = np.hypot(cfg.muon_resolution_const, cfg.muon_resolution_per_gev * truth.pt[r] / GEV)
    pt_reco = smear_relative(rng, truth.pt[r], sigma)
    keep = pt_reco > cfg.muon_pt_min_mev
    kind, r, pt_reco = kind[keep], r[keep], pt_reco[keep]
    evt, eta, phi = truth.evt[r], truth.eta[r], truth.phi[r]
    iso = track_isolation(evt, eta, phi, pt_reco, tracks, truth.n_events, obj_rows=r)
    score = _identify(rng, cfg, kind, iso)
    quality = np.select([score > 1.8, score > 1.0, score > 0.3], [0, 1, 2], 3).astype(
        np.int8
    )  # Tight 0 ... VeryLoose 3
    mtype = np.where(np.abs(eta) > 2.5, 1, np.where(rng.random(len(r)) < 0.95, 0, 2)).astype(
        np.int8
    )  # Combined 0, StandAlone 1, SegmentTagged 2
    cols = {
        "charge": truth.charge[r],
        "trk_iso03": iso,
        "quality": quality,
        "muonType": mtype,
        "truthOrigin": kind.astype(np.int8),
    }
    return Objects(evt, pt_reco, eta, phi, cols, np.where(kind == 0, -1, r))


def reconstruct_photons(rng, truth: Truth, rows, anc: Ancestry, tracks: Tracks, cfg: DetectorConfig) -> Objects:
    pid = truth.pid[rows]
    pt, eta = truth.pt[rows], truth.eta[rows]
    crack = (np.abs(eta) > 1.37) & (np.abs(eta) < 1.52)
    idx = _candidates(
        rng,
        (pid == 22) & (pt > cfg.photon_pt_min_mev * 0.8) & (np.abs(eta) < cfg.photon_eta_max) & ~crack,
        cfg.photon_efficiency,
    )
    kind = np.where(anc.from_hadron[idx], 2, 1)  # 1 prompt (hard process, radiation), 2 from hadron decays (pi0)
    r = rows[idx]
    e = truth.e[r]
    sigma = np.sqrt((cfg.electron_resolution_stochastic / np.sqrt(e / GEV)) ** 2 + cfg.electron_resolution_const**2)
    pt_reco = smear_relative(rng, truth.pt[r], sigma)
    keep = pt_reco > cfg.photon_pt_min_mev
    kind, r, pt_reco = kind[keep], r[keep], pt_reco[keep]
    evt, eta, phi = truth.evt[r], truth.eta[r], truth.phi[r]
    iso = track_isolation(evt, eta, phi, pt_reco, tracks, truth.n_events)
    score = _identify(rng, cfg, kind, iso)
    cols = {
        "trk_iso03": iso,
        "isLoose": (score > 0.5).astype(np.int8),
        "isTight": (score > 1.6).astype(np.int8),
        "truthOrigin": kind.astype(np.int8),
    }
    return Objects(evt, pt_reco, eta, phi, cols, r)


# --------------------------------------------------------------------------- hadronic taus

TAU_MODES = {"1p0n": 0, "1p1n": 1, "1pXn": 2, "3p0n": 3, "3pXn": 4}


def true_hadronic_taus(
    truth: Truth, final_rows: np.ndarray, anc_final: Ancestry, pi0_rows: np.ndarray, anc_pi0: Ancestry
) -> dict:
    """Visible 4-momentum, prongs and decay mode of every hadronically decaying tau."""
    n = len(truth.pid)
    has_tau = anc_final.tau >= 0
    fr, tau_of = final_rows[has_tau], anc_final.tau[has_tau]
    apid = np.abs(truth.pid[fr])
    visible = ~np.isin(apid, (12, 14, 16))
    leptonic = np.zeros(n, dtype=bool)
    leptonic[tau_of[np.isin(apid, (11, 13))]] = True
    sums = {
        k: np.bincount(tau_of[visible], weights=getattr(truth, k)[fr[visible]], minlength=n)
        for k in ("px", "py", "pz", "e")
    }
    prongs = np.bincount(tau_of[(truth.charge[fr] != 0) & visible], minlength=n)
    charge = np.bincount(tau_of[visible], weights=truth.charge[fr[visible]], minlength=n)
    pi0 = np.bincount(anc_pi0.tau[anc_pi0.tau >= 0], minlength=n)
    taus = np.flatnonzero((np.bincount(tau_of, minlength=n) > 0) & ~leptonic & np.isin(prongs, (1, 3)))
    npi0 = pi0[taus]
    mode = np.where(prongs[taus] == 1, np.select([npi0 == 0, npi0 == 1], [0, 1], 2), np.where(npi0 == 0, 3, 4))
    px, py, pz, e = (sums[k][taus] for k in ("px", "py", "pz", "e"))
    return {
        "row": taus,
        "evt": truth.evt[taus],
        "pt": np.hypot(px, py),
        "eta": eta_of(px, py, pz),
        "phi": np.arctan2(py, px),
        "prongs": prongs[taus],
        "mode": mode,
        "charge": charge[taus],
    }


def reconstruct_taus(rng, true_taus: dict, jets_evt, jets_pt, jets_eta, jets_phi, cfg: DetectorConfig) -> Objects:
    """True hadronic taus with efficiency and resolution, plus jets faking taus."""
    pt, eta = true_taus["pt"], true_taus["eta"]
    eff = np.where(true_taus["prongs"] == 1, cfg.tau_efficiency_1p, cfg.tau_efficiency_3p)
    keep = (pt > cfg.tau_pt_min_mev * 0.8) & (np.abs(eta) < cfg.tau_eta_max) & (rng.random(len(pt)) < eff)
    t = {k: v[keep] for k, v in true_taus.items()}
    n_real = len(t["pt"])
    fake = (
        (jets_pt > cfg.tau_pt_min_mev)
        & (np.abs(jets_eta) < cfg.tau_eta_max)
        & (rng.random(len(jets_pt)) < cfg.tau_fake_rate_per_jet)
    )
    nf = int(fake.sum())
    fake_prongs = np.where(rng.random(nf) < 0.7, 1, 3)
    fake_mode = np.where(fake_prongs == 1, rng.integers(0, 3, nf), rng.integers(3, 5, nf))
    evt = np.concatenate([t["evt"], jets_evt[fake]])
    pt_all = np.concatenate([smear_relative(rng, t["pt"], np.full(n_real, cfg.tau_resolution)), jets_pt[fake] * 0.85])
    prongs = np.concatenate([t["prongs"], fake_prongs])
    true_mode = np.concatenate([t["mode"], fake_mode])
    migrate = rng.random(len(evt)) > cfg.tau_decay_mode_purity
    neighbour = np.where(
        prongs == 1, np.clip(true_mode + rng.choice([-1, 1], len(evt)), 0, 2), np.where(true_mode == 3, 4, 3)
    )
    mode = np.where(migrate, neighbour, true_mode)
    is_true = np.concatenate([np.ones(n_real, bool), np.zeros(nf, bool)])
    jet_score = np.where(is_true, rng.beta(5.0, 1.5, len(evt)), rng.beta(1.2, 4.0, len(evt)))
    ele_score = np.where(is_true, rng.beta(1.0, 6.0, len(evt)), rng.beta(1.0, 3.0, len(evt)))
    charge = np.concatenate([t["charge"], rng.choice([-1.0, 1.0], nf)])
    sel = pt_all > cfg.tau_pt_min_mev
    cols = {
        "charge": charge[sel],
        "is_1prong": (prongs == 1)[sel].astype(np.int8),
        "NNDecayMode": mode[sel].astype(np.int8),
        "RNNJetScore": jet_score[sel],
        "RNNEleScore": ele_score[sel],
        "isTruthTau": is_true[sel].astype(np.int8),
    }
    eta_all = np.concatenate([t["eta"], jets_eta[fake]])
    phi_all = np.concatenate([t["phi"], jets_phi[fake]])
    rows = np.concatenate([t["row"], np.full(nf, -1)])
    return Objects(evt[sel], pt_all[sel], eta_all[sel], phi_all[sel], cols, rows[sel])
