"""The detector emulation's numbers and the conditions every event shares: beam spot, primary vertex, pileup.

A fast, parametric, ATLAS-like emulation, vectorised over whole batches. Everything in it is an *emulation* with
documented numbers (all in `DetectorConfig`, all settable from `generate.detector` in params): efficiencies,
resolutions and identification scores drawn from truth. Nothing loops over particles in Python. MeV and mm
throughout. The objects live beside this module: `tracks`, `leptons_photons`, `taus`, `jets` (with pileup jets),
`met`; `simulate` runs them in order.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from ..errors import ConfigError

GEV = 1000.0
CALORIMETER_ETA_MAX = 4.9  # the calorimeters' reach: jets and the MET soft term see particles within it


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


def smear_relative(rng: np.random.Generator, values: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """values x (1 + sigma x N(0, 1)), the factor kept above 0.05: a relative Gaussian resolution."""
    return values * np.clip(1.0 + sigma * rng.standard_normal(len(values)), 0.05, None)


# --------------------------------------------------------------------------- vertices and pileup


@dataclass
class EventConditions:
    """Per event of a batch: the pileup and where the hard scatter happened."""

    mu: np.ndarray  # pileup interactions per crossing
    pv_true: np.ndarray  # [n, 3] mm: beam spot position of the hard scatter
    pv_reco: np.ndarray  # [n, 3] mm: reconstructed primary vertex


def event_conditions(rng: np.random.Generator, n: int, cfg: DetectorConfig) -> EventConditions:
    """mu from a Gaussian profile (clipped at `mu_min`), the hard scatter in the beam spot, and its reconstructed
    primary vertex smeared by the vertex resolution [mm], for `n` events."""
    mu = np.clip(rng.normal(cfg.mu_mean, cfg.mu_sigma, n), cfg.mu_min, None)
    sig = np.array([cfg.beamspot_sigma_xy_mm, cfg.beamspot_sigma_xy_mm, cfg.beamspot_sigma_z_mm])
    pv_true = rng.standard_normal((n, 3)) * sig
    res = np.array([cfg.pv_resolution_xy_mm, cfg.pv_resolution_xy_mm, cfg.pv_resolution_z_mm])
    return EventConditions(mu, pv_true, pv_true + rng.standard_normal((n, 3)) * res)
