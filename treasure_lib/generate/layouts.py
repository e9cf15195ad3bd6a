"""A reconstructed batch as the arrays the H5 writer stores, in both ATLAS layouts.

- per-feature (`event_layout`): `<path>/<feature>` [n_events, max_objects] ordered by pT, with `<path>/mask`, and
  event scalars [n_events] (MET, event info), for the collections of the events set;
- compound (`jet_layout`): a structured `jets` array (N,) of the jets passing the jet selection and `tracks`
  (N, max_tracks) with a `valid` field, as the flavour-tagging dumper writes them.
Values in MeV and mm; integer and flag features as int8 / int32, the rest float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..object_collections import Collection
from .detector import DetectorConfig
from .grouping import pad_by_group
from .jets import Jets, track_jet_features
from .tracks import Tracks

if TYPE_CHECKING:
    from .simulate import JetReconstruction, JetSelection, Reconstruction


def pack(
    evt: np.ndarray, pt: np.ndarray, columns: Mapping[str, np.ndarray], n_rows: int, width: int
) -> tuple[dict, np.ndarray]:
    """Flat objects -> padded [n_rows, width] arrays ordered by pT (descending), and the mask."""
    idx, mask = pad_by_group(evt, -pt, n_rows, width)
    out = {}
    for k, v in columns.items():
        v = np.asarray(v)
        out[k] = np.where(mask, v[idx], 0).astype(v.dtype) if len(v) else np.zeros(mask.shape, v.dtype)
    return out, mask


def _dtype_for(name: str, values: np.ndarray, categorical: tuple) -> np.dtype:
    if values.dtype.kind in "iub":
        return (
            np.dtype(np.int64)
            if name == "eventNumber"
            else (np.dtype(np.int8) if name in categorical or values.dtype == np.int8 else np.dtype(np.int32))
        )
    return np.dtype(np.float32)


# --------------------------------------------------------------------------- per-feature (events)


def event_layout(
    collections: Mapping[str, Collection], reco: Reconstruction, event_numbers: np.ndarray, weights: np.ndarray
) -> dict:
    """The events set's collections of one batch: objects padded by event, scalars per event."""
    tracks, jets = reco.tracks, reco.jets
    j = jets.jets
    from_pv = tracks.from_primary_vertex()  # event-level tracks: compatible with the PV
    track_columns = {
        "pt": tracks.pt,
        "eta": tracks.eta,
        "phi": tracks.phi,
        "d0": tracks.d0,
        "z0": tracks.z0,
        "qOverP": tracks.qoverp,
        "chiSquared": tracks.chi2,
        "nDoF": tracks.ndof,
        "ftagTruthOriginLabel": tracks.origin,
    }
    jet_columns = {
        "pt": j.pt,
        "eta": j.eta,
        "phi": j.phi,
        "mass": j.mass,
        **jets.quark_gluon,
        **{f"DL1d_{p}": jets.dl1[f"DL1dv01_{p}"] for p in ("pb", "pc", "pu")},
        **{f"GN2_{p}": jets.gn2[f"GN2v01_{p}"] for p in ("pb", "pc", "pu")},
        "HadronConeExclTruthLabelID": jets.labels["HadronConeExclTruthLabelID"],
        "jvt": jets.jvt,
        "isPileupJet": jets.is_pileup,
    }
    objects = {
        name: (o.evt, o.pt, {"pt": o.pt, "eta": o.eta, "phi": o.phi, **o.columns})
        for name, o in (
            ("electrons", reco.electrons),
            ("muons", reco.muons),
            ("photons", reco.photons),
            ("taus", reco.taus),
        )
    }
    objects["jets"] = (j.evt, j.pt, jet_columns)
    objects["tracks"] = (tracks.evt[from_pv], tracks.pt[from_pv], {k: v[from_pv] for k, v in track_columns.items()})
    cond = reco.conditions
    scalars = {
        "met": reco.met,
        "event": {
            "mu": cond.mu,
            "pvx": cond.pv_reco[:, 0],
            "pvy": cond.pv_reco[:, 1],
            "pvz": cond.pv_reco[:, 2],
            "eventNumber": event_numbers,
            "mcEventWeight": weights,
        },
    }
    return event_arrays(collections, objects, scalars, len(cond.mu))


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


# --------------------------------------------------------------------------- compound (jets and their tracks)


def _structured(columns: Mapping[str, np.ndarray], names: list[str], categorical: tuple, extra=()) -> np.ndarray:
    fields = [(n, _dtype_for(n, np.asarray(columns[n]), categorical)) for n in names] + list(extra)
    shape = np.asarray(columns[names[0]]).shape
    rec = np.zeros(shape, dtype=np.dtype(fields))
    for n in names:
        rec[n] = columns[n]
    return rec


def jet_layout(
    collections: Mapping[str, Collection],
    reco: Reconstruction,
    event_numbers: np.ndarray,
    weights: np.ndarray,
    cfg: DetectorConfig,
    sel: JetSelection,
) -> dict:
    """Compound layout: `jets` (N,) and `tracks` (N, 40) with `valid`, for jets passing `sel`."""
    jets = reco.jets
    j = jets.jets
    keep = (j.pt > sel.pt_min_mev) & (np.abs(j.eta) < sel.eta_max)
    keep &= (j.pt > cfg.jvt_pt_max_mev) | (jets.jvt > sel.jvt_min)
    jet_rows = np.flatnonzero(keep)
    c_jets, c_tracks = collections["jets"], collections["tracks"]
    track_rec = _track_records(c_tracks, reco.tracks, jets, keep, jet_rows, sel)
    jcols = _jet_columns(jets, jet_rows, reco, event_numbers, weights)
    jet_rec = _structured(jcols, list(c_jets.features + c_jets.truth), c_jets.categorical)
    return {c_jets.path: jet_rec, c_tracks.path: track_rec}


def _track_records(
    c: Collection,
    tracks: Tracks,
    jets: JetReconstruction,
    keep: np.ndarray,
    jet_rows: np.ndarray,
    sel: JetSelection,
) -> np.ndarray:
    """[N, max_objects] structured tracks of the kept jets: GN2-style selection, ordered by pT, with `valid`."""
    j = jets.jets
    new_index = np.full(len(j), -1)
    new_index[jet_rows] = np.arange(len(jet_rows))
    it, ij = jets.track_rows, jets.jet_rows
    t_ok = (np.abs(tracks.d0[it]) < sel.track_d0_max_mm) & (np.abs(tracks.z0sintheta[it]) < sel.track_z0sintheta_max_mm)
    t_ok &= keep[ij]
    it, ij = it[t_ok], new_index[ij[t_ok]]
    empty = np.zeros(0, int)
    kept = Jets(j.evt[jet_rows], j.pt[jet_rows], j.eta[jet_rows], j.phi[jet_rows], j.mass[jet_rows], empty, empty)
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
        **track_jet_features(tracks, it, ij, kept),
        **{k: v[it] for k, v in tracks.hits.items()},
        "ftagTruthVertexIndex": _truth_vertex_index(tracks, it, ij).astype(np.int32),
    }
    padded, mask = pack(ij, tracks.pt[it], tcols, len(jet_rows), c.max_objects)
    rec = _structured(padded, list(c.features + c.truth), c.categorical, extra=[(c.valid, np.bool_)])
    rec[c.valid] = mask
    return rec


def _truth_vertex_index(tracks: Tracks, it: np.ndarray, ij: np.ndarray) -> np.ndarray:
    """Jet-local truth vertex index of each (track, jet): 0 primary, then 1, 2, ... per distinct decaying parent,
    -1 pileup / fake."""
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
    return vtx


def _jet_columns(
    jets: JetReconstruction, r: np.ndarray, reco: Reconstruction, event_numbers: np.ndarray, weights: np.ndarray
) -> dict:
    """The kept jets' columns: kinematics, labels, particle-level match, JVT, tagger scores, event info."""
    j = jets.jets
    evt = j.evt[r]
    n_hs = jets.n_hard_scatter  # hard-scatter jets come first, stochastic pileup jets after
    hs = r < n_hs
    hs_row = np.minimum(r, max(n_hs - 1, 0))
    matched = hs & (np.where(hs, jets.truth_dr[hs_row] if n_hs else 0.0, 1.0) < 0.3)
    return {
        "pt": j.pt[r],
        "eta": j.eta[r],
        "mass": j.mass[r],
        **{k: v[r] for k, v in jets.labels.items()},
        "isTruthJetMatched": matched.astype(np.int8),
        "truthJetPt": np.where(matched, jets.truth_pt[hs_row] if n_hs else 0.0, 0.0),
        "truthJetDR": np.where(matched, jets.truth_dr[hs_row] if n_hs else -1.0, -1.0),
        "jvt": jets.jvt[r],
        "isPileupJet": jets.is_pileup[r],
        **{k: v[r] for k, v in jets.gn2.items()},
        **{k: v[r] for k, v in jets.dl1.items()},
        "eventNumber": event_numbers[evt],
        "mcEventWeight": weights[evt].astype(np.float32),
        "averageInteractionsPerCrossing": reco.conditions.mu[evt],
    }
