"""One batch of Pythia events -> reconstructed objects in both output layouts.

`simulate_batch` is the whole chain after the event generator: truth record, tracks,
pileup, leptons, photons, taus, jets and their labels, taggers, MET, and the arrays that
the H5 writer stores (per-feature event arrays and compound jet/track arrays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..collections import Collection
from . import detector as det
from . import jets as jt
from .truth import Truth, ancestry, decay_vertex, weakly_decaying

GEV = 1000.0
TRACE_PT_MIN_MEV = 300.0  # below every reconstruction threshold (tracks 500 MeV, leptons and photons GeV)


@dataclass(frozen=True)
class JetSelection:
    """Which jets enter the jet-level (flavour tagging) files."""

    pt_min_mev: float = 20000.0
    eta_max: float = 2.5
    jvt_min: float = 0.5  # applied below DetectorConfig.jvt_pt_max_mev
    track_d0_max_mm: float = 3.5  # GN2-style track selection
    track_z0sintheta_max_mm: float = 5.0


def pack(
    evt: np.ndarray, pt: np.ndarray, columns: Mapping[str, np.ndarray], n_rows: int, width: int
) -> tuple[dict, np.ndarray]:
    """Flat objects -> padded [n_rows, width] arrays ordered by pT (descending), and the mask."""
    idx, mask = jt.pad_by_group(evt, -pt, n_rows, width)
    out = {}
    for k, v in columns.items():
        v = np.asarray(v)
        out[k] = np.where(mask, v[idx], 0).astype(v.dtype) if len(v) else np.zeros(mask.shape, v.dtype)
    return out, mask


def _objects_columns(o: det.Objects) -> dict:
    return {"pt": o.pt, "eta": o.eta, "phi": o.phi, **o.columns}


def simulate_batch(
    rng: np.random.Generator,
    truth: Truth,
    weights: np.ndarray,
    event_numbers: np.ndarray,
    cfg: det.DetectorConfig,
    event_collections: Mapping[str, Collection] | None,
    jet_collections: Mapping[str, Collection] | None,
    jet_sel: JetSelection = JetSelection(),
) -> dict:
    """Emulate reconstruction for one batch; returns {'events': {path: array}, 'jets': {name: structured}} for the
    requested layouts and 'tracks', the batch's reconstructed `Tracks` (flat, with truth rows; for diagnostics)."""
    ne = truth.n_events
    cond = det.event_conditions(rng, ne, cfg)
    final = np.flatnonzero(truth.final)
    # truth history is traced for the particles that can become tracks, leptons, photons or tau products
    traced = final[truth.pt[final] > TRACE_PT_MIN_MEV]
    pi0 = np.flatnonzero(truth.pid == 111)
    both = ancestry(truth, np.concatenate([traced, pi0]))  # one upward walk for both
    anc, anc_pi0 = both.split(len(traced))

    hs_tracks = det.reconstruct_tracks(rng, truth, traced, anc, cond, cfg)
    tracks = det.Tracks.concat([hs_tracks, det.pileup_and_fake_tracks(rng, cond, cfg)])

    electrons = det.reconstruct_electrons(rng, truth, traced, anc, tracks, cfg)
    muons = det.reconstruct_muons(rng, truth, traced, anc, tracks, cfg)
    photons = det.reconstruct_photons(rng, truth, traced, anc, tracks, cfg)

    # jets from visible particles, without neutrinos, muons, and isolated identified electrons and photons
    apid = np.abs(truth.pid[final])
    used = np.zeros(len(truth.pid), dtype=bool)
    iso_e = electrons.truth_row[
        (electrons.columns["LHMedium"] == 1) & (electrons.columns["trk_iso03"] < 0.15) & (electrons.truth_row >= 0)
    ]
    iso_g = photons.truth_row[(photons.columns["isTight"] == 1) & (photons.columns["trk_iso03"] < 0.15)]
    used[iso_e] = True
    used[iso_g] = True
    visible = final[
        ~np.isin(apid, (12, 14, 16, 13))
        & (np.abs(truth.eta[final]) < 4.9)
        & ~used[final]
        & (truth.e[final] > cfg.jet_constituent_e_min_mev)
    ]
    raw_jets = jt.cluster(truth, visible, cfg.jet_radius, 0.5 * cfg.jet_pt_min_mev)
    # particle-level ("truth") jets: the same clustering plus the muons and isolated e/gamma it excluded
    excluded = final[np.isin(apid, (13,)) | used[final]]
    ie, ij_ex = jt.event_pairs(truth.evt[excluded], raw_jets.evt, ne)
    near = (
        jt.delta_r(truth.eta[excluded[ie]], truth.phi[excluded[ie]], raw_jets.eta[ij_ex], raw_jets.phi[ij_ex])
        < cfg.jet_radius
    )
    truth_jet_pt = raw_jets.pt + np.bincount(ij_ex[near], weights=truth.pt[excluded[ie[near]]], minlength=len(raw_jets))
    jets = jt.smear_jets(rng, raw_jets, cond.mu, cfg)
    truth_dr = jt.delta_r(jets.eta, jets.phi, raw_jets.eta, raw_jets.phi)
    keep_jets = (jets.pt > cfg.jet_pt_min_mev) & (np.abs(jets.eta) < cfg.jet_eta_max)
    jets = jt.select(jets, keep_jets)
    truth_jet_pt, truth_dr = truth_jet_pt[keep_jets], truth_dr[keep_jets]

    taus_true = det.true_hadronic_taus(truth, traced, anc, pi0, anc_pi0)
    weak_b = np.flatnonzero(weakly_decaying(truth, 5))
    weak_c = np.flatnonzero(weakly_decaying(truth, 4))
    labels = jt.flavour_labels(truth, jets, weak_b, weak_c, taus_true, decay_vertex(truth))

    # stochastic pileup jets (no truth flavour, low JVT)
    n_pu = rng.poisson(cond.mu * cfg.pileup_jets_per_interaction)
    pu_evt = np.repeat(np.arange(ne), n_pu)
    npj = len(pu_evt)
    pu_pt = cfg.jet_pt_min_mev + rng.exponential(cfg.pileup_jet_pt_slope_mev, npj)
    all_evt = np.concatenate([jets.evt, pu_evt])
    all_pt = np.concatenate([jets.pt, pu_pt])
    all_eta = np.concatenate([jets.eta, rng.uniform(-cfg.jet_eta_max, cfg.jet_eta_max, npj)])
    all_phi = np.concatenate([jets.phi, rng.uniform(-np.pi, np.pi, npj)])
    all_mass = np.concatenate([jets.mass, pu_pt * rng.uniform(0.05, 0.15, npj)])
    is_pu = np.concatenate([np.zeros(len(jets), np.int8), np.ones(npj, np.int8)])
    jvt = np.where(is_pu == 1, rng.beta(1.0, 5.0, len(all_evt)), rng.beta(8.0, 1.0, len(all_evt))).astype(np.float32)
    label_all = {k: np.concatenate([v, np.zeros(npj, v.dtype)]) for k, v in labels.items()}
    label_all["HadronConeExclTruthLabelLxy"][len(jets) :] = 0
    label_all["HadronConeExclTruthLabelDR"][len(jets) :] = -1
    alljets = jt.Jets(all_evt, all_pt, all_eta, all_phi, all_mass, jets.const_jet, jets.const_row)

    it, ij = jt.associate_tracks(tracks, alljets, ne)
    qg = jt.quark_gluon_variables(tracks, it, ij, alljets)
    lab = label_all["HadronConeExclTruthLabelID"]
    gn2 = jt.tagger_scores(rng, lab, jt.GN2)
    dl1 = jt.tagger_scores(rng, lab, jt.DL1D)

    taus = det.reconstruct_taus(rng, taus_true, alljets.evt, alljets.pt, alljets.eta, alljets.phi, cfg)

    # MET: negative vector sum of objects plus a soft term of the visible particles in no object
    in_object = np.zeros(len(truth.pid), dtype=bool)
    in_object[jets.const_row] = True
    for o in (electrons, muons, photons):
        in_object[o.truth_row[o.truth_row >= 0]] = True
    soft = final[~np.isin(apid, (12, 14, 16)) & (np.abs(truth.eta[final]) < 4.9) & ~in_object[final]]
    mx = np.zeros(ne)
    my = np.zeros(ne)
    sumet = np.zeros(ne)
    hard_jet = (is_pu == 0) | (jvt > jet_sel.jvt_min)
    for evt, pt, phi in (
        (electrons.evt, electrons.pt, electrons.phi),
        (muons.evt, muons.pt, muons.phi),
        (photons.evt, photons.pt, photons.phi),
        (all_evt[hard_jet], all_pt[hard_jet], all_phi[hard_jet]),
    ):
        mx -= np.bincount(evt, weights=pt * np.cos(phi), minlength=ne)
        my -= np.bincount(evt, weights=pt * np.sin(phi), minlength=ne)
        sumet += np.bincount(evt, weights=pt, minlength=ne)
    r = cfg.met_soft_response
    mx -= r * np.bincount(truth.evt[soft], weights=truth.px[soft], minlength=ne)
    my -= r * np.bincount(truth.evt[soft], weights=truth.py[soft], minlength=ne)
    sumet += (
        r * np.bincount(truth.evt[soft], weights=truth.pt[soft], minlength=ne) + cond.mu * cfg.pileup_sumet_mev_per_mu
    )
    noise = cfg.met_soft_noise_mev_per_sqrt_mu * np.sqrt(cond.mu)
    mx += noise * rng.standard_normal(ne)
    my += noise * rng.standard_normal(ne)

    out: dict = {"tracks": tracks}
    if event_collections is not None:
        from_pv = np.abs(tracks.z0 * np.sin(tracks.theta)) < 3.0  # event-level tracks: compatible with the PV
        obj_cols = {
            "electrons": (electrons.evt, electrons.pt, _objects_columns(electrons)),
            "muons": (muons.evt, muons.pt, _objects_columns(muons)),
            "photons": (photons.evt, photons.pt, _objects_columns(photons)),
            "taus": (taus.evt, taus.pt, _objects_columns(taus)),
            "jets": (
                all_evt,
                all_pt,
                {
                    "pt": all_pt,
                    "eta": all_eta,
                    "phi": all_phi,
                    "mass": all_mass,
                    **qg,
                    "DL1d_pb": dl1["DL1dv01_pb"],
                    "DL1d_pc": dl1["DL1dv01_pc"],
                    "DL1d_pu": dl1["DL1dv01_pu"],
                    "GN2_pb": gn2["GN2v01_pb"],
                    "GN2_pc": gn2["GN2v01_pc"],
                    "GN2_pu": gn2["GN2v01_pu"],
                    "HadronConeExclTruthLabelID": lab,
                    "jvt": jvt,
                    "isPileupJet": is_pu,
                },
            ),
            "tracks": (
                tracks.evt[from_pv],
                tracks.pt[from_pv],
                {
                    k: v[from_pv]
                    for k, v in {
                        "pt": tracks.pt,
                        "eta": tracks.eta,
                        "phi": tracks.phi,
                        "d0": tracks.d0,
                        "z0": tracks.z0,
                        "qOverP": tracks.qoverp,
                        "chiSquared": tracks.chi2,
                        "nDoF": tracks.ndof,
                        "ftagTruthOriginLabel": tracks.origin,
                    }.items()
                },
            ),
        }
        scalars = {
            "met": {"met": np.hypot(mx, my), "phi": np.arctan2(my, mx), "sumet": sumet},
            "event": {
                "mu": cond.mu,
                "pvx": cond.pv_reco[:, 0],
                "pvy": cond.pv_reco[:, 1],
                "pvz": cond.pv_reco[:, 2],
                "eventNumber": event_numbers,
                "mcEventWeight": weights,
            },
        }
        out["events"] = event_arrays(event_collections, obj_cols, scalars, ne)

    if jet_collections is not None:
        out["jets"] = jet_arrays(
            jet_collections,
            alljets,
            tracks,
            it,
            ij,
            label_all,
            qg,
            gn2,
            dl1,
            jvt,
            is_pu,
            truth_jet_pt,
            truth_dr,
            cond,
            weights,
            event_numbers,
            cfg,
            jet_sel,
        )
    return out


def _dtype_for(name: str, values: np.ndarray, categorical: tuple) -> np.dtype:
    if values.dtype.kind in "iub":
        return (
            np.dtype(np.int64)
            if name == "eventNumber"
            else (np.dtype(np.int8) if name in categorical or values.dtype == np.int8 else np.dtype(np.int32))
        )
    return np.dtype(np.float32)


def event_arrays(collections: Mapping[str, Collection], obj_cols: dict, scalars: dict, n_events: int) -> dict:
    """Per-feature layout: `<path>/<feature>` [n, max] + `<path>/mask`, scalars [n]."""
    arrays = {}
    for name, c in collections.items():
        if c.is_scalar:
            cols = scalars[name]
            for f in c.features + c.truth:
                arrays[c.feature_path(f)] = np.asarray(cols[f]).astype(
                    _dtype_for(f, np.asarray(cols[f]), c.categorical)
                )
            continue
        evt, pt, cols = obj_cols[name]
        padded, mask = pack(evt, pt, {f: cols[f] for f in c.features + c.truth}, n_events, c.max_objects)
        for f, v in padded.items():
            arrays[c.feature_path(f)] = v.astype(_dtype_for(f, v, c.categorical))
        arrays[c.mask_path] = mask
    return arrays


def _structured(columns: Mapping[str, np.ndarray], names: list[str], categorical: tuple, extra=()) -> np.ndarray:
    fields = [(n, _dtype_for(n, np.asarray(columns[n]), categorical)) for n in names] + list(extra)
    shape = np.asarray(columns[names[0]]).shape
    rec = np.zeros(shape, dtype=np.dtype(fields))
    for n in names:
        rec[n] = columns[n]
    return rec


def jet_arrays(
    collections,
    jets,
    tracks,
    it,
    ij,
    labels,
    qg,
    gn2,
    dl1,
    jvt,
    is_pu,
    truth_jet_pt,
    truth_dr,
    cond,
    weights,
    event_numbers,
    cfg: det.DetectorConfig,
    sel: JetSelection,
) -> dict:
    """Compound layout: `jets` (N,) and `tracks` (N, 40) with `valid`, for jets passing `sel`."""
    n_all = len(jets)
    n_hs = len(truth_jet_pt)  # hard-scatter jets come first, stochastic pileup jets after
    keep = (jets.pt > sel.pt_min_mev) & (np.abs(jets.eta) < sel.eta_max)
    keep &= (jets.pt > cfg.jvt_pt_max_mev) | (jvt > sel.jvt_min)
    jet_rows = np.flatnonzero(keep)
    new_index = np.full(n_all, -1)
    new_index[jet_rows] = np.arange(len(jet_rows))
    # GN2-style track selection, then tracks of kept jets ordered by pT
    t_ok = (np.abs(tracks.d0[it]) < sel.track_d0_max_mm) & (
        np.abs(tracks.z0[it] * np.sin(tracks.theta[it])) < sel.track_z0sintheta_max_mm
    )
    t_ok &= keep[ij]
    it, ij = it[t_ok], new_index[ij[t_ok]]
    kept = jt.Jets(
        jets.evt[jet_rows],
        jets.pt[jet_rows],
        jets.eta[jet_rows],
        jets.phi[jet_rows],
        jets.mass[jet_rows],
        np.zeros(0, int),
        np.zeros(0, int),
    )
    feats = jt.track_jet_features(tracks, it, ij, kept)
    tcols = {
        "pt": tracks.pt[it],
        "d0": tracks.d0[it],
        "d0Uncertainty": tracks.d0_unc[it],
        "z0SinThetaUncertainty": tracks.z0sintheta_unc[it],
        "theta": tracks.theta[it],
        "thetaUncertainty": tracks.theta_unc[it],
        "phiUncertainty": tracks.phi_unc[it],
        "qOverP": tracks.qoverp[it],
        "qOverPUncertainty": tracks.qoverp_unc[it],
        "chiSquared": tracks.chi2[it],
        "numberDoF": tracks.ndof[it],
        "leptonID": tracks.lepton_id[it],
        "ftagTruthOriginLabel": tracks.origin[it],
        "ftagTruthParentBarcode": tracks.parent[it].astype(np.int32),
        **feats,
        **{k: v[it] for k, v in tracks.hits.items()},
    }
    # jet-local truth vertex index: 0 primary, then 1, 2, ... per distinct decaying parent, -1 pileup/fake
    parent = tracks.parent[it]
    vtx = np.full(len(it), -1, dtype=np.int64)
    vtx[np.isin(tracks.origin[it], (2, 7))] = 0
    has_parent = parent >= 0
    if has_parent.any():
        stride = int(parent.max()) + 1  # one integer key per (jet, parent): np.unique on 1-d keys is fast
        keys, inv = np.unique(ij[has_parent].astype(np.int64) * stride + parent[has_parent], return_inverse=True)
        jet_of_key = keys // stride
        first_of_jet = np.searchsorted(jet_of_key, jet_of_key)  # where each jet's parents start
        vtx[has_parent] = inv - first_of_jet[inv] + 1
    tcols["ftagTruthVertexIndex"] = vtx.astype(np.int32)
    c_tracks = collections["tracks"]
    width = c_tracks.max_objects
    padded, mask = pack(ij, tracks.pt[it], tcols, len(jet_rows), width)
    names = [n for n in c_tracks.features + c_tracks.truth]
    track_rec = _structured(padded, names, c_tracks.categorical, extra=[(c_tracks.valid, np.bool_)])
    track_rec[c_tracks.valid] = mask

    evt = jets.evt[jet_rows]
    r = jet_rows
    hs = r < n_hs
    hs_row = np.minimum(r, max(n_hs - 1, 0))
    matched = hs & (np.where(hs, truth_dr[hs_row] if n_hs else 0.0, 1.0) < 0.3)
    jcols = {
        "pt": jets.pt[r],
        "eta": jets.eta[r],
        "mass": jets.mass[r],
        **{k: v[r] for k, v in labels.items()},
        "isTruthJetMatched": matched.astype(np.int8),
        "truthJetPt": np.where(matched, truth_jet_pt[hs_row] if n_hs else 0.0, 0.0),
        "truthJetDR": np.where(matched, truth_dr[hs_row] if n_hs else -1.0, -1.0),
        "jvt": jvt[r],
        "isPileupJet": is_pu[r],
        **{k: v[r] for k, v in gn2.items()},
        **{k: v[r] for k, v in dl1.items()},
        "eventNumber": event_numbers[evt],
        "mcEventWeight": weights[evt].astype(np.float32),
        "averageInteractionsPerCrossing": cond.mu[evt],
    }
    c_jets = collections["jets"]
    jet_rec = _structured(jcols, list(c_jets.features + c_jets.truth), c_jets.categorical)
    return {c_jets.path: jet_rec, c_tracks.path: track_rec}
