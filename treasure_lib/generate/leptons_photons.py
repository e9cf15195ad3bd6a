"""Electrons, muons and photons: truth particles (and hadrons faking them) through efficiency, resolution,
isolation and an identification score.

Real objects: final-state e / mu / gamma in acceptance, kept with an efficiency, their pT smeared (electrons and
photons by the calorimeter resolution, muons by the tracker and spectrometer). Fakes: charged hadrons above
threshold at a small rate. Every object gets its track isolation (trk_iso03) and an ID discriminant drawn from
its origin (prompt, non-prompt, fake) and isolation, cut into the ATLAS-like working points. Numbers in
`DetectorConfig`; MeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detector import GEV, DetectorConfig, smear_relative
from .tracks import Tracks, track_isolation
from .truth import Ancestry, Truth

CRACK_ETA = (1.37, 1.52)  # the calorimeter's barrel-endcap transition: no electron or photon is reconstructed there


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


def _identify(rng, cfg: DetectorConfig, kind: np.ndarray, iso: np.ndarray) -> np.ndarray:
    """An ID discriminant: higher for prompt objects, lower for non-prompt and fakes, worse when not isolated."""
    mean = np.select([kind == 1, kind == 2], [cfg.id_score_prompt, cfg.id_score_nonprompt], cfg.id_score_fake)
    return mean - cfg.id_isolation_penalty * np.clip(iso, 0, 2) + rng.standard_normal(len(kind))


def _origin_kind(anc: Ancestry, idx: np.ndarray) -> np.ndarray:
    """1 prompt (from W/Z/H/top or a tau from them, or radiation for photons), 2 non-prompt (from a hadron)."""
    return np.where(anc.from_hadron[idx], 2, 1)


def _candidates(rng, sel: np.ndarray, eff: float) -> np.ndarray:
    """Positions passing the selection and an efficiency draw."""
    keep = sel & (rng.random(len(sel)) < eff)
    return np.flatnonzero(keep)


def _in_calorimeter(eta: np.ndarray, eta_max: float) -> np.ndarray:
    """|eta| < eta_max and outside the barrel-endcap crack (electrons and photons)."""
    crack = (np.abs(eta) > CRACK_ETA[0]) & (np.abs(eta) < CRACK_ETA[1])
    return (np.abs(eta) < eta_max) & ~crack


def _real_and_fake(rng, truth: Truth, rows, anc: Ancestry, pdg_id: int, pt_min_mev: float, acceptance, eff, fake_rate):
    """Truth rows of the real candidates (|pdg id|, pT above 0.8 x threshold, in acceptance, efficiency) then of
    charged hadrons faking them (pT above threshold, fake rate), and their kind (1 prompt, 2 non-prompt, 0 fake)."""
    apid = np.abs(truth.pid[rows])
    pt = truth.pt[rows]
    real = _candidates(rng, (apid == pdg_id) & (pt > pt_min_mev * 0.8) & acceptance, eff)
    hadron = (truth.charge[rows] != 0) & (apid > 100)
    fake = _candidates(rng, hadron & (pt > pt_min_mev) & acceptance, fake_rate)
    idx = np.concatenate([real, fake])
    return rows[idx], np.concatenate([_origin_kind(anc, real), np.zeros(len(fake), int)])


def _egamma_pt(rng, truth: Truth, r: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """Calorimeter pT of electrons and photons: sigma(E)/E = S / sqrt(E[GeV]) (+) C [MeV]."""
    e = truth.e[r]
    sigma = np.sqrt((cfg.electron_resolution_stochastic / np.sqrt(e / GEV)) ** 2 + cfg.electron_resolution_const**2)
    return smear_relative(rng, truth.pt[r], sigma)


@dataclass
class _Measured:
    """Candidates above their reconstructed-pT threshold, with isolation and ID score."""

    row: np.ndarray
    kind: np.ndarray
    evt: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    iso: np.ndarray
    score: np.ndarray


def _above_threshold(rng, truth: Truth, r, kind, pt_reco, pt_min_mev, tracks: Tracks, cfg, own_track: bool):
    """Keep pT_reco > threshold, then isolation (excluding the object's own track when it has one) and ID score."""
    keep = pt_reco > pt_min_mev
    kind, r, pt_reco = kind[keep], r[keep], pt_reco[keep]
    evt, eta, phi = truth.evt[r], truth.eta[r], truth.phi[r]
    iso = track_isolation(evt, eta, phi, pt_reco, tracks, truth.n_events, obj_rows=r if own_track else None)
    return _Measured(r, kind, evt, pt_reco, eta, phi, iso, _identify(rng, cfg, kind, iso))


def reconstruct_electrons(rng, truth: Truth, rows, anc: Ancestry, tracks: Tracks, cfg: DetectorConfig) -> Objects:
    """Electrons with LHLoose / LHMedium / LHTight flags, charge (random for fakes, 0.2% flipped), truthOrigin."""
    acc = _in_calorimeter(truth.eta[rows], cfg.electron_eta_max)
    r, kind = _real_and_fake(
        rng, truth, rows, anc, 11, cfg.electron_pt_min_mev, acc, cfg.electron_efficiency, cfg.electron_fake_rate
    )
    pt_reco = _egamma_pt(rng, truth, r, cfg)
    m = _above_threshold(rng, truth, r, kind, pt_reco, cfg.electron_pt_min_mev, tracks, cfg, own_track=True)
    charge = np.where(m.kind == 0, rng.choice([-1.0, 1.0], len(m.row)), truth.charge[m.row])
    charge = np.where(rng.random(len(m.row)) < 0.002, -charge, charge)  # charge flip
    cols = {
        "charge": charge,
        "trk_iso03": m.iso,
        "LHLoose": (m.score > 0.3).astype(np.int8),
        "LHMedium": (m.score > 1.0).astype(np.int8),
        "LHTight": (m.score > 1.8).astype(np.int8),
        "truthOrigin": m.kind.astype(np.int8),
    }
    return Objects(m.evt, m.pt, m.eta, m.phi, cols, np.where(m.kind == 0, -1, m.row))


def reconstruct_muons(rng, truth: Truth, rows, anc: Ancestry, tracks: Tracks, cfg: DetectorConfig) -> Objects:
    """Muons with quality (Tight 0 ... VeryLoose 3), muonType (Combined 0, StandAlone 1, SegmentTagged 2)."""
    acc = np.abs(truth.eta[rows]) < cfg.muon_eta_max
    r, kind = _real_and_fake(
        rng, truth, rows, anc, 13, cfg.muon_pt_min_mev, acc, cfg.muon_efficiency, cfg.muon_fake_rate
    )
    sigma = np.hypot(cfg.muon_resolution_const, cfg.muon_resolution_per_gev * truth.pt[r] / GEV)
    pt_reco = smear_relative(rng, truth.pt[r], sigma)
    m = _above_threshold(rng, truth, r, kind, pt_reco, cfg.muon_pt_min_mev, tracks, cfg, own_track=True)
    quality = np.select([m.score > 1.8, m.score > 1.0, m.score > 0.3], [0, 1, 2], 3).astype(np.int8)
    mtype = np.where(np.abs(m.eta) > 2.5, 1, np.where(rng.random(len(m.row)) < 0.95, 0, 2)).astype(np.int8)
    cols = {
        "charge": truth.charge[m.row],
        "trk_iso03": m.iso,
        "quality": quality,
        "muonType": mtype,
        "truthOrigin": m.kind.astype(np.int8),
    }
    return Objects(m.evt, m.pt, m.eta, m.phi, cols, np.where(m.kind == 0, -1, m.row))


def reconstruct_photons(rng, truth: Truth, rows, anc: Ancestry, tracks: Tracks, cfg: DetectorConfig) -> Objects:
    """Photons with isLoose / isTight flags and truthOrigin (1 prompt: hard process, radiation; 2 from hadron
    decays such as pi0). No fakes."""
    sel = (truth.pid[rows] == 22) & (truth.pt[rows] > cfg.photon_pt_min_mev * 0.8)
    idx = _candidates(rng, sel & _in_calorimeter(truth.eta[rows], cfg.photon_eta_max), cfg.photon_efficiency)
    r, kind = rows[idx], _origin_kind(anc, idx)
    pt_reco = _egamma_pt(rng, truth, r, cfg)
    m = _above_threshold(rng, truth, r, kind, pt_reco, cfg.photon_pt_min_mev, tracks, cfg, own_track=False)
    cols = {
        "trk_iso03": m.iso,
        "isLoose": (m.score > 0.5).astype(np.int8),
        "isTight": (m.score > 1.6).astype(np.int8),
        "truthOrigin": m.kind.astype(np.int8),
    }
    return Objects(m.evt, m.pt, m.eta, m.phi, cols, m.row)
