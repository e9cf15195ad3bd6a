"""One batch of Pythia events -> reconstructed objects in both output layouts.

`simulate_batch` is the whole chain after the event generator, one named step per concept: event conditions,
truth history, tracks (with pileup and fakes), electrons, muons and photons, jets (hard scatter, then pileup), their
labels, track association and tagger scores, hadronic taus, MET; then the arrays the H5 writer stores
(`layouts`). Every step draws from the one random generator in this fixed order: the same seed gives the same files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..object_collections import Collection
from . import jet_labels, layouts, taggers
from . import jets as jt
from .detector import DetectorConfig, EventConditions, event_conditions
from .leptons_photons import Objects, reconstruct_electrons, reconstruct_muons, reconstruct_photons
from .met import missing_et, soft_term_rows
from .taus import reconstruct_taus, true_hadronic_taus
from .tracks import Tracks, pileup_and_fake_tracks, reconstruct_tracks
from .truth import Ancestry, Truth, ancestry, decay_vertex, weakly_decaying

TRACE_PT_MIN_MEV = 300.0  # below every reconstruction threshold (tracks 500 MeV, leptons and photons GeV)
ISOLATED_EGAMMA_MAX = 0.15  # trk_iso03 of the identified electrons and photons that are not jet constituents


@dataclass(frozen=True)
class JetSelection:
    """Which jets enter the jet-level (flavour tagging) files."""

    pt_min_mev: float = 20000.0
    eta_max: float = 2.5
    jvt_min: float = 0.5  # applied below DetectorConfig.jvt_pt_max_mev
    track_d0_max_mm: float = 3.5  # GN2-style track selection
    track_z0sintheta_max_mm: float = 5.0


@dataclass
class TruthHistory:
    """The final-state rows traced upwards (those that can become objects) and the pi0s, with their ancestors."""

    final: np.ndarray  # truth rows of the final state
    traced: np.ndarray  # final-state rows above TRACE_PT_MIN_MEV
    anc: Ancestry  # of `traced`
    pi0: np.ndarray  # truth rows of the pi0s
    anc_pi0: Ancestry


@dataclass
class JetReconstruction:
    """Every jet of a batch, hard-scatter jets first, with what the layouts store about them."""

    jets: jt.Jets  # hard-scatter jets, then stochastic pileup jets
    n_hard_scatter: int
    truth_pt: np.ndarray  # [n_hard_scatter] particle-level jet pT [MeV]
    truth_dr: np.ndarray  # [n_hard_scatter] DeltaR of the jet to its particle-level jet
    is_pileup: np.ndarray  # int8
    jvt: np.ndarray  # float32
    labels: dict  # truth flavour labels (`jet_labels`)
    track_rows: np.ndarray  # associated (track, jet) pairs: the track index ...
    jet_rows: np.ndarray  # ... and the jet index
    quark_gluon: dict  # `jets.quark_gluon_variables`
    gn2: dict  # `taggers.tagger_scores` of GN2 and DL1d
    dl1: dict


@dataclass
class Reconstruction:
    """One batch after the detector emulation: flat objects (`evt` says which event) and per-event quantities."""

    conditions: EventConditions
    tracks: Tracks
    electrons: Objects
    muons: Objects
    photons: Objects
    taus: Objects
    jets: JetReconstruction
    met: dict  # per event: met, phi, sumet


def truth_history(truth: Truth) -> TruthHistory:
    """Ancestors of the final-state particles that can become tracks, leptons, photons or tau products, and of the
    pi0s (tau decay modes), in one upward walk."""
    final = np.flatnonzero(truth.final)
    traced = final[truth.pt[final] > TRACE_PT_MIN_MEV]
    pi0 = np.flatnonzero(truth.pid == 111)
    anc, anc_pi0 = ancestry(truth, np.concatenate([traced, pi0])).split(len(traced))
    return TruthHistory(final, traced, anc, pi0, anc_pi0)


def isolated_egamma_rows(electrons: Objects, photons: Objects) -> np.ndarray:
    """Truth rows of the identified, isolated electrons (LHMedium) and photons (isTight): objects of their own,
    not jet constituents."""
    iso_e = electrons.truth_row[
        (electrons.columns["LHMedium"] == 1)
        & (electrons.columns["trk_iso03"] < ISOLATED_EGAMMA_MAX)
        & (electrons.truth_row >= 0)
    ]
    iso_g = photons.truth_row[(photons.columns["isTight"] == 1) & (photons.columns["trk_iso03"] < ISOLATED_EGAMMA_MAX)]
    return np.concatenate([iso_e, iso_g])


def reconstruct_all_jets(
    rng, truth: Truth, history: TruthHistory, removed: np.ndarray, tracks: Tracks, mu: np.ndarray, cfg
) -> tuple[JetReconstruction, dict]:
    """Hard-scatter jets, their labels, pileup jets with JVT, track association, quark/gluon variables and tagger
    scores; also the true hadronic taus the labels used."""
    jets, truth_pt, truth_dr = jt.reconstruct_jets(rng, truth, history.final, removed, mu, cfg)
    taus_true = true_hadronic_taus(truth, history.traced, history.anc, history.pi0, history.anc_pi0)
    weak_b = np.flatnonzero(weakly_decaying(truth, 5))
    weak_c = np.flatnonzero(weakly_decaying(truth, 4))
    labels = jet_labels.flavour_labels(truth, jets, weak_b, weak_c, taus_true, decay_vertex(truth))
    all_jets, is_pileup = jt.add_pileup_jets(rng, jets, mu, cfg)
    jvt = jt.jvt_scores(rng, is_pileup)
    labels = jet_labels.append_pileup_labels(labels, len(all_jets) - len(jets))
    it, ij = jt.associate_tracks(tracks, all_jets, truth.n_events)
    qg = jt.quark_gluon_variables(tracks, it, ij, all_jets)
    label_id = labels["HadronConeExclTruthLabelID"]
    gn2 = taggers.tagger_scores(rng, label_id, taggers.GN2)
    dl1 = taggers.tagger_scores(rng, label_id, taggers.DL1D)
    rec = JetReconstruction(all_jets, len(jets), truth_pt, truth_dr, is_pileup, jvt, labels, it, ij, qg, gn2, dl1)
    return rec, taus_true


def simulate_batch(
    rng: np.random.Generator,
    truth: Truth,
    weights: np.ndarray,
    event_numbers: np.ndarray,
    cfg: DetectorConfig,
    event_collections: Mapping[str, Collection] | None,
    jet_collections: Mapping[str, Collection] | None,
    jet_sel: JetSelection = JetSelection(),
) -> dict:
    """Emulate reconstruction for one batch; returns {'events': {path: array}, 'jets': {name: structured}} for the
    requested layouts and 'tracks', the batch's reconstructed `Tracks` (flat, with truth rows; for diagnostics)."""
    reco = reconstruct(rng, truth, cfg, jet_sel)
    out: dict = {"tracks": reco.tracks}
    if event_collections is not None:
        out["events"] = layouts.event_layout(event_collections, reco, event_numbers, weights)
    if jet_collections is not None:
        out["jets"] = layouts.jet_layout(jet_collections, reco, event_numbers, weights, cfg, jet_sel)
    return out


def reconstruct(rng: np.random.Generator, truth: Truth, cfg: DetectorConfig, jet_sel: JetSelection) -> Reconstruction:
    """The detector emulation of one batch, step by step (the order of the random draws is the files' identity)."""
    cond = event_conditions(rng, truth.n_events, cfg)
    history = truth_history(truth)
    hs_tracks = reconstruct_tracks(rng, truth, history.traced, history.anc, cond, cfg)
    tracks = Tracks.concat([hs_tracks, pileup_and_fake_tracks(rng, cond, cfg)])
    electrons = reconstruct_electrons(rng, truth, history.traced, history.anc, tracks, cfg)
    muons = reconstruct_muons(rng, truth, history.traced, history.anc, tracks, cfg)
    photons = reconstruct_photons(rng, truth, history.traced, history.anc, tracks, cfg)
    jets, taus_true = reconstruct_all_jets(
        rng, truth, history, isolated_egamma_rows(electrons, photons), tracks, cond.mu, cfg
    )
    j = jets.jets
    taus = reconstruct_taus(rng, taus_true, j.evt, j.pt, j.eta, j.phi, cfg)
    # MET: the leptons, photons and jets (pileup jets that pass JVT count as jets), plus a soft term
    hard = (jets.is_pileup == 0) | (jets.jvt > jet_sel.jvt_min)
    objects = [(o.evt, o.pt, o.phi) for o in (electrons, muons, photons)] + [(j.evt[hard], j.pt[hard], j.phi[hard])]
    soft = soft_term_rows(truth, history.final, [j.const_row, electrons.truth_row, muons.truth_row, photons.truth_row])
    met = missing_et(rng, truth, objects, soft, cond.mu, cfg)
    return Reconstruction(cond, tracks, electrons, muons, photons, taus, jets, met)
