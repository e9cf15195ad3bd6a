"""Jet flavour labels from truth, as ATLAS defines them.

HadronConeExclTruthLabelID takes weakly decaying b, then c hadrons with pT > 5 GeV within DeltaR < 0.3 of the jet
(each hadron to its nearest jet only), then hadronic taus, else light; the Extended variant counts them (55, 54, 5,
44, 4, 15, 0). The ghost labels count hadrons within DeltaR < 0.4 of any jet; the parton label is the most energetic
quark or gluon within 0.4. Also the labelling hadron's pT [MeV], decay length Lxy [mm] and DeltaR.
"""

from __future__ import annotations

import numpy as np

from ..kinematics import delta_r
from .grouping import event_pairs
from .jets import Jets
from .truth import Truth

HADRON_LABEL_PT_MIN_MEV = 5000.0
LABEL_CONE = 0.3
GHOST_CONE = 0.4
TAU_LABEL_PT_MIN_MEV = 10000.0


def nearest_within(evt_a, eta_a, phi_a, evt_j, eta_j, phi_j, n_events: int, cone: float):
    """For each object a: the nearest jet within `cone` (-1 if none) and its DeltaR."""
    ia, ij = event_pairs(evt_a, evt_j, n_events)
    dr = delta_r(eta_a[ia], phi_a[ia], eta_j[ij], phi_j[ij])
    inside = dr < cone
    ia, ij, dr = ia[inside], ij[inside], dr[inside]
    order = np.lexsort((dr, ia))
    ia, ij, dr = ia[order], ij[order], dr[order]
    first = np.ones(len(ia), dtype=bool)
    first[1:] = ia[1:] != ia[:-1]
    best = np.full(len(evt_a), -1)
    best_dr = np.full(len(evt_a), np.inf)
    best[ia[first]] = ij[first]
    best_dr[ia[first]] = dr[first]
    return best, best_dr


def _counts_in_cone(evt_a, eta_a, phi_a, jets: Jets, n_events, cone):
    ia, ij = event_pairs(evt_a, jets.evt, n_events)
    inside = delta_r(eta_a[ia], phi_a[ia], jets.eta[ij], jets.phi[ij]) < cone
    return np.bincount(ij[inside], minlength=len(jets))


def flavour_labels(
    truth: Truth, jets: Jets, weak_b: np.ndarray, weak_c: np.ndarray, taus: dict, dec_xyz: tuple
) -> dict:
    """HadronConeExcl (and Extended), HadronGhost (and Extended), PartonTruthLabelID, label-hadron info."""
    n, ne = len(jets), truth.n_events
    out = {}
    hadrons = {}
    for flav, rows in ((5, weak_b), (4, weak_c)):
        rows = rows[truth.pt[rows] > HADRON_LABEL_PT_MIN_MEV]
        hadrons[flav] = rows
    tau_sel = taus["pt"] > TAU_LABEL_PT_MIN_MEV
    label_pt = np.zeros(n)
    label_lxy = np.zeros(n)
    label_dr = np.full(n, -1.0)
    counts = {}
    for flav in (5, 4):
        rows = hadrons[flav]
        jet, dr = nearest_within(
            truth.evt[rows], truth.eta[rows], truth.phi[rows], jets.evt, jets.eta, jets.phi, ne, LABEL_CONE
        )
        ok = jet >= 0
        counts[flav] = np.bincount(jet[ok], minlength=n)
        counts[f"ghost{flav}"] = _counts_in_cone(
            truth.evt[rows], truth.eta[rows], truth.phi[rows], jets, ne, GHOST_CONE
        )
        # the leading labelling hadron's pT, decay length and distance (b first, then c)
        order = np.argsort(truth.pt[rows[ok]])  # ascending: the last write (highest pT) wins
        j, r = jet[ok][order], rows[ok][order]
        unset = (label_dr < 0)[j] if flav == 4 else np.ones(len(j), bool)
        label_pt[j[unset]] = truth.pt[r[unset]]
        label_lxy[j[unset]] = np.hypot(dec_xyz[0][r[unset]], dec_xyz[1][r[unset]])
        label_dr[j[unset]] = dr[ok][order][unset]
    tj, _ = nearest_within(
        taus["evt"][tau_sel], taus["eta"][tau_sel], taus["phi"][tau_sel], jets.evt, jets.eta, jets.phi, ne, LABEL_CONE
    )
    ntau = np.bincount(tj[tj >= 0], minlength=n)
    ghost_tau = _counts_in_cone(taus["evt"][tau_sel], taus["eta"][tau_sel], taus["phi"][tau_sel], jets, ne, GHOST_CONE)
    nb, nc = counts[5], counts[4]
    out["HadronConeExclTruthLabelID"] = np.select([nb > 0, nc > 0, ntau > 0], [5, 4, 15], 0)
    out["HadronConeExclExtendedTruthLabelID"] = np.select(
        [nb >= 2, (nb == 1) & (nc >= 1), nb == 1, nc >= 2, nc == 1, ntau > 0], [55, 54, 5, 44, 4, 15], 0
    )
    gb, gc = counts["ghost5"], counts["ghost4"]
    out["HadronGhostTruthLabelID"] = np.select([gb > 0, gc > 0, ghost_tau > 0], [5, 4, 15], 0)
    out["HadronGhostExtendedTruthLabelID"] = np.select(
        [gb >= 2, (gb == 1) & (gc >= 1), gb == 1, gc >= 2, gc == 1, ghost_tau > 0], [55, 54, 5, 44, 4, 15], 0
    )
    out["HadronConeExclTruthLabelPt"] = label_pt
    out["HadronConeExclTruthLabelLxy"] = label_lxy
    out["HadronConeExclTruthLabelDR"] = label_dr
    # parton label: the most energetic quark or gluon (pT > 5 GeV) within DeltaR < 0.4
    apid = np.abs(truth.pid)
    partons = np.flatnonzero(
        ((apid <= 5) & (apid >= 1) | (apid == 21)) & (truth.pt > HADRON_LABEL_PT_MIN_MEV) & (truth.status < 0)
    )
    ip, ij = event_pairs(truth.evt[partons], jets.evt, ne)
    inside = delta_r(truth.eta[partons[ip]], truth.phi[partons[ip]], jets.eta[ij], jets.phi[ij]) < GHOST_CONE
    ip, ij = ip[inside], ij[inside]
    energy = truth.e[partons[ip]]
    order = np.argsort(energy)
    parton = np.zeros(n, dtype=np.int64)
    parton[ij[order]] = apid[partons[ip[order]]]
    out["PartonTruthLabelID"] = parton
    return {k: v.astype(np.float32 if v.dtype.kind == "f" else np.int32) for k, v in out.items()}


def append_pileup_labels(labels: dict, n_pileup: int) -> dict:
    """The hard-scatter jets' labels followed by those of `n_pileup` pileup jets: every label 0 (no hadron, no
    parton, light), HadronConeExclTruthLabelDR -1 (no labelling hadron)."""
    n_hard = len(next(iter(labels.values())))
    out = {k: np.concatenate([v, np.zeros(n_pileup, v.dtype)]) for k, v in labels.items()}
    out["HadronConeExclTruthLabelLxy"][n_hard:] = 0
    out["HadronConeExclTruthLabelDR"][n_hard:] = -1
    return out
