"""Jets: anti-kt clustering (FastJet) of visible particles, calorimeter response, pileup jets, and their tracks.

Jets are clustered from truth particles (`cluster`), smeared by the jet energy and angular resolutions
(`smear_jets`), joined by stochastic pileup jets with a JVT score, and matched to tracks (the FTAG association
cone) for the track-jet variables and the quark/gluon variables. Labels come from `jet_labels`, tagger scores
from `taggers`. MeV and radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import fastjet
import numpy as np

from ..kinematics import delta_phi, delta_r, four_vector_mass, pt_eta_phi, wrap_phi
from .detector import CALORIMETER_ETA_MAX, GEV, DetectorConfig
from .grouping import event_pairs, pad_by_group
from .tracks import Tracks
from .truth import NEUTRINOS, Truth


@dataclass
class Jets:
    """Jets of a batch, flat (`evt` says which event)."""

    evt: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    const_jet: np.ndarray  # for each constituent: its jet
    const_row: np.ndarray  # for each constituent: its truth row

    def __len__(self) -> int:
        return len(self.evt)


def _silence_banner() -> None:
    """FastJet prints its banner on first use, once per process: print it into /dev/null."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            fastjet.ClusterSequence(
                [fastjet.PseudoJet(1.0, 0.0, 0.0, 1.0)], fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
            )
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_silence_banner()


def cluster(truth: Truth, rows: np.ndarray, radius: float, min_pt_mev: float) -> Jets:
    """Anti-kt on the given truth rows (ascending, so grouped by event), vectorised over events."""
    counts = np.bincount(truth.evt[rows], minlength=truth.n_events)
    particles = ak.unflatten(
        ak.zip({"px": truth.px[rows], "py": truth.py[rows], "pz": truth.pz[rows], "E": truth.e[rows]}), counts
    )
    seq = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    index = seq.constituent_index(min_pt=min_pt_mev)
    jets_per_event = ak.to_numpy(ak.num(index, axis=1))
    const_per_jet = ak.to_numpy(ak.flatten(ak.num(index, axis=2)))
    local = ak.to_numpy(ak.flatten(index, axis=None)).astype(np.int64)
    jet_evt = np.repeat(np.arange(truth.n_events), jets_per_event)
    const_jet = np.repeat(np.arange(len(jet_evt)), const_per_jet)
    row_offsets = np.concatenate([[0], np.cumsum(counts)])
    const_row = rows[row_offsets[jet_evt[const_jet]] + local]
    sums = {
        k: np.bincount(const_jet, weights=getattr(truth, k)[const_row], minlength=len(jet_evt))
        for k in ("px", "py", "pz", "e")
    }
    pt, eta, phi = pt_eta_phi(sums["px"], sums["py"], sums["pz"])
    mass = four_vector_mass(sums["e"], sums["px"], sums["py"], sums["pz"])
    return Jets(jet_evt, pt, eta, phi, mass, const_jet, const_row)


def smear_jets(rng, jets: Jets, mu: np.ndarray, cfg: DetectorConfig) -> Jets:
    """JES/JER: sigma/pT = N/pT (+) S/sqrt(pT) (+) C, with the noise term growing with pileup."""
    pt_gev = jets.pt / GEV
    noise = cfg.jer_noise_mev / GEV * np.sqrt(mu[jets.evt] / 50.0)
    sigma = np.sqrt((noise / pt_gev) ** 2 + cfg.jer_stochastic**2 / pt_gev + cfg.jer_constant**2)
    scale = cfg.jes_scale * np.clip(1.0 + sigma * rng.standard_normal(len(jets)), 0.1, None)
    sigma_angle = np.hypot(cfg.jet_angular_resolution_const, cfg.jet_angular_resolution_gev / pt_gev)
    eta = jets.eta + sigma_angle * rng.standard_normal(len(jets))
    phi = wrap_phi(jets.phi + sigma_angle * rng.standard_normal(len(jets)))
    return Jets(jets.evt, jets.pt * scale, eta, phi, jets.mass * scale, jets.const_jet, jets.const_row)


def select(jets: Jets, keep: np.ndarray) -> Jets:
    """Keep some jets (constituent lists follow, with jet indices renumbered)."""
    new_index = np.cumsum(keep) - 1
    ck = keep[jets.const_jet]
    return Jets(
        jets.evt[keep],
        jets.pt[keep],
        jets.eta[keep],
        jets.phi[keep],
        jets.mass[keep],
        new_index[jets.const_jet[ck]],
        jets.const_row[ck],
    )


def reconstruct_jets(rng, truth: Truth, final: np.ndarray, removed: np.ndarray, mu: np.ndarray, cfg: DetectorConfig):
    """Hard-scatter jets above `jet_pt_min_mev` within `jet_eta_max`, with their particle-level pT and distance.

    Clustered from the visible final-state particles (no neutrinos, no muons, none of the `removed` truth rows: the
    isolated identified electrons and photons; within the calorimeters, E above `jet_constituent_e_min_mev`), then
    smeared (`smear_jets`). The particle-level ("truth") jet is the same clustering plus the muons and removed particles
    within the jet radius. Returns (jets, truth_pt [MeV], truth_dr: DeltaR of the smeared to the clustered axis).
    """
    ne = truth.n_events
    apid = np.abs(truth.pid[final])
    used = np.zeros(len(truth.pid), dtype=bool)
    used[removed] = True
    visible = final[
        ~np.isin(apid, (*NEUTRINOS, 13))
        & (np.abs(truth.eta[final]) < CALORIMETER_ETA_MAX)
        & ~used[final]
        & (truth.e[final] > cfg.jet_constituent_e_min_mev)
    ]
    raw_jets = cluster(truth, visible, cfg.jet_radius, 0.5 * cfg.jet_pt_min_mev)
    excluded = final[np.isin(apid, (13,)) | used[final]]
    ie, ij = event_pairs(truth.evt[excluded], raw_jets.evt, ne)
    near = (
        delta_r(truth.eta[excluded[ie]], truth.phi[excluded[ie]], raw_jets.eta[ij], raw_jets.phi[ij]) < cfg.jet_radius
    )
    truth_pt = raw_jets.pt + np.bincount(ij[near], weights=truth.pt[excluded[ie[near]]], minlength=len(raw_jets))
    jets = smear_jets(rng, raw_jets, mu, cfg)
    truth_dr = delta_r(jets.eta, jets.phi, raw_jets.eta, raw_jets.phi)
    keep = (jets.pt > cfg.jet_pt_min_mev) & (np.abs(jets.eta) < cfg.jet_eta_max)
    return select(jets, keep), truth_pt[keep], truth_dr[keep]


# --------------------------------------------------------------------------- pileup jets


def add_pileup_jets(rng, jets: Jets, mu: np.ndarray, cfg: DetectorConfig) -> tuple[Jets, np.ndarray]:
    """The hard-scatter jets followed by stochastic pileup jets, and is_pileup (int8, 1 for those).

    Per event Poisson(mu x `pileup_jets_per_interaction`) pileup jets: pT = `jet_pt_min_mev` + an exponential of
    slope `pileup_jet_pt_slope_mev`, flat in |eta| < `jet_eta_max` and in phi, mass 5-15% of pT [MeV]; no
    constituents, no truth flavour."""
    n_pu = rng.poisson(mu * cfg.pileup_jets_per_interaction)
    pu_evt = np.repeat(np.arange(len(mu)), n_pu)
    npj = len(pu_evt)
    pu_pt = cfg.jet_pt_min_mev + rng.exponential(cfg.pileup_jet_pt_slope_mev, npj)
    all_evt = np.concatenate([jets.evt, pu_evt])
    all_pt = np.concatenate([jets.pt, pu_pt])
    all_eta = np.concatenate([jets.eta, rng.uniform(-cfg.jet_eta_max, cfg.jet_eta_max, npj)])
    all_phi = np.concatenate([jets.phi, rng.uniform(-np.pi, np.pi, npj)])
    all_mass = np.concatenate([jets.mass, pu_pt * rng.uniform(0.05, 0.15, npj)])
    is_pileup = np.concatenate([np.zeros(len(jets), np.int8), np.ones(npj, np.int8)])
    return Jets(all_evt, all_pt, all_eta, all_phi, all_mass, jets.const_jet, jets.const_row), is_pileup


def jvt_scores(rng, is_pileup: np.ndarray) -> np.ndarray:
    """The jet vertex tagger's score (float32): Beta(1, 5) for pileup jets, Beta(8, 1) for hard-scatter jets."""
    n = len(is_pileup)
    return np.where(is_pileup == 1, rng.beta(1.0, 5.0, n), rng.beta(8.0, 1.0, n)).astype(np.float32)


# --------------------------------------------------------------------------- tracks in jets


def association_cone(jet_pt_mev: np.ndarray) -> np.ndarray:
    """The FTAG track-to-jet association cone: 0.239 + exp(-1.22 - 1.64e-5 pT[MeV])."""
    return 0.239 + np.exp(-1.22 - 1.64e-5 * jet_pt_mev)


def associate_tracks(tracks: Tracks, jets: Jets, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Each track to its nearest jet within the pT-dependent cone: (track index, jet index) pairs."""
    it, ij = event_pairs(tracks.evt, jets.evt, n_events)
    dr = delta_r(tracks.eta[it], tracks.phi[it], jets.eta[ij], jets.phi[ij])
    inside = dr < association_cone(jets.pt[ij])
    it, ij, dr = it[inside], ij[inside], dr[inside]
    order = np.lexsort((dr, it))
    it, ij = it[order], ij[order]
    first = np.ones(len(it), dtype=bool)
    first[1:] = it[1:] != it[:-1]
    return it[first], ij[first]


def track_jet_features(tracks: Tracks, it: np.ndarray, ij: np.ndarray, jets: Jets) -> dict:
    """Per associated track: lifetime-signed IPs and significances, deta, dphi, ptfrac."""
    t = tracks
    dphi = delta_phi(t.phi[it], jets.phi[ij])
    deta = t.eta[it] - jets.eta[ij]
    d0, z0st = t.d0[it], t.z0sintheta[it]
    # lifetime sign: positive when the track crosses the jet axis downstream of the PV
    sd0 = np.sign(np.sin(dphi) * d0) * np.abs(d0)
    sz0 = np.sign(-deta * z0st) * np.abs(z0st)
    return {
        "deta": deta,
        "dphi": dphi,
        "ptfrac": t.pt[it] / jets.pt[ij],
        "z0SinTheta": z0st,
        "lifetimeSignedD0": sd0,
        "lifetimeSignedD0Significance": sd0 / t.d0_unc[it],
        "lifetimeSignedZ0SinTheta": sz0,
        "lifetimeSignedZ0SinThetaSignificance": sz0 / t.z0sintheta_unc[it],
    }


def quark_gluon_variables(tracks: Tracks, it: np.ndarray, ij: np.ndarray, jets: Jets, width: int = 20) -> dict:
    """n_trk (pT > 1 GeV), QG_nTracks (pT > 500 MeV), track width and C1 (beta = 0.2) from associated tracks.

    C1 sums over pairs of the leading `width` tracks (pairs of softer tracks weigh pT_i pT_j, negligible).
    """
    n = len(jets)
    pt = tracks.pt[it]
    dr = delta_r(tracks.eta[it], tracks.phi[it], jets.eta[ij], jets.phi[ij])
    sum_pt = np.bincount(ij, weights=pt, minlength=n)
    n_trk = np.bincount(ij[pt > 1000.0], minlength=n)
    n_qg = np.bincount(ij, minlength=n)
    width_ = np.divide(np.bincount(ij, weights=pt * dr, minlength=n), sum_pt, out=np.zeros(n), where=sum_pt > 0)
    # C1 = sum_{i<j} pT_i pT_j dR_ij^0.2 / (sum pT)^2, on padded arrays
    idx, mask = pad_by_group(ij, -pt, n, width)
    p = np.where(mask, pt[idx], 0.0)
    eta = np.where(mask, tracks.eta[it][idx], 0.0)
    phi = np.where(mask, tracks.phi[it][idx], 0.0)
    drij = delta_r(eta[:, :, None], phi[:, :, None], eta[:, None, :], phi[:, None, :])
    pair = p[:, :, None] * p[:, None, :] * drij**0.2
    c1 = np.divide(0.5 * pair.sum(axis=(1, 2)), sum_pt**2, out=np.zeros(n), where=sum_pt > 0)
    return {"n_trk": n_trk, "QG_nTracks": n_qg, "QG_tracksWidth": width_, "QG_tracksC1": c1}
