"""Hadronic taus: the visible decay products of true taus, and their reconstruction with jets faking them.

A true hadronic tau is a decaying tau with one or three charged visible products (no electron or muon); its visible
four-momentum, prongs and decay mode (`TAU_MODES`, by the number of pi0s) come from the truth record. Reconstruction
applies the 1- and 3-prong efficiencies and a pT resolution; jets fake taus at a fixed rate. Decay-mode migration,
RNN jet and electron scores are drawn by truth. Numbers in `DetectorConfig`; MeV.
"""

from __future__ import annotations

import numpy as np

from ..kinematics import pt_eta_phi
from .detector import DetectorConfig, smear_relative
from .leptons_photons import Objects
from .truth import Ancestry, Truth

TAU_MODES = {"1p0n": 0, "1p1n": 1, "1pXn": 2, "3p0n": 3, "3pXn": 4}  # the values of `NNDecayMode` and `mode`


def true_hadronic_taus(
    truth: Truth, final_rows: np.ndarray, anc_final: Ancestry, pi0_rows: np.ndarray, anc_pi0: Ancestry
) -> dict:
    """Visible momentum (pt [MeV], eta, phi), prongs, decay mode and charge of every hadronically decaying tau."""
    n = len(truth.pid)
    has_tau = anc_final.tau >= 0
    fr, tau_of = final_rows[has_tau], anc_final.tau[has_tau]
    apid = np.abs(truth.pid[fr])
    visible = ~np.isin(apid, (12, 14, 16))
    leptonic = np.zeros(n, dtype=bool)
    leptonic[tau_of[np.isin(apid, (11, 13))]] = True
    sums = {
        k: np.bincount(tau_of[visible], weights=getattr(truth, k)[fr[visible]], minlength=n) for k in ("px", "py", "pz")
    }
    prongs = np.bincount(tau_of[(truth.charge[fr] != 0) & visible], minlength=n)
    charge = np.bincount(tau_of[visible], weights=truth.charge[fr[visible]], minlength=n)
    pi0 = np.bincount(anc_pi0.tau[anc_pi0.tau >= 0], minlength=n)
    taus = np.flatnonzero((np.bincount(tau_of, minlength=n) > 0) & ~leptonic & np.isin(prongs, (1, 3)))
    npi0 = pi0[taus]
    mode = np.where(prongs[taus] == 1, np.select([npi0 == 0, npi0 == 1], [0, 1], 2), np.where(npi0 == 0, 3, 4))
    pt, eta, phi = pt_eta_phi(*(sums[k][taus] for k in ("px", "py", "pz")))
    return {
        "row": taus,
        "evt": truth.evt[taus],
        "pt": pt,
        "eta": eta,
        "phi": phi,
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
