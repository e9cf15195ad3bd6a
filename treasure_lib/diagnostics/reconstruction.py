"""What tokenization costs in physics quantities, through each card's own encode -> decode: the reports.

- per collection and feature, after 1, 2, ..., Q levels: bias, MAE, resolution, correlation
  (`levels_report`, the same numbers for every tokenizer kind: VQ-VAE, k-means and binning);
- jets: the jet 4-vector summed from decoded tracks vs from the original tracks, with the response
  resolution (q75 - q25) / median of pT_reco / pT_orig overall and in bins of jet pT (the field's
  definition), mass and eta/phi;
- events: m_ll (the Z candidate) and m_4l from decoded leptons vs the original ones (resolution and
  the shift of the Z and H peaks);
- the cost table: bits per object (Q log2 K) beside the reconstruction floor.
The numbers are `treasure_lib.metrics.reconstruction`'s and the four-vectors `treasure_lib.kinematics`'; this module
only assembles them. Inputs are arrays (the held-out rows are read by `io.reader.read_split_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..kinematics import ELECTRON_MASS_MEV, MUON_MASS_MEV, invariant_mass, track_sum, z_candidate_mass
from ..metrics.reconstruction import feature_summary, level_metric_items, response, response_in_bins, robust_summary

Z_WINDOW_GEV, H_WINDOW_GEV = (81.0, 101.0), (115.0, 135.0)


# ---------------------------------------------------------------------------- per feature, through a card


def levels_of(tokenizer) -> list[int]:
    """The level counts a tokenizer can decode with: 1..Q for residual tokenizers, Q alone for binning."""
    q = tokenizer.num_quantizers
    return [q] if tokenizer.kind == "binning" else list(range(1, q + 1))


def levels_report(tokenizer, features: np.ndarray, mask: np.ndarray, indices: np.ndarray | None = None) -> dict:
    """{level: {feature: {quantity: value}}} (`feature_summary`) for objects [n, m, F] (physical units) encoded and
    decoded by the card with each of its level counts."""
    info = tokenizer.collection
    names = list(info["features"])
    categorical = set(info.get("categorical", ()))
    logs = set(info.get("log_features", ()))
    if indices is None:
        indices = tokenizer.encode(features, mask)
    orig = features[mask]
    out: dict = {}
    for q in levels_of(tokenizer):
        reco = tokenizer.decode(indices, levels=q)[mask]
        out[q] = {f: feature_summary(orig[:, i], reco[:, i], f in categorical, f in logs) for i, f in enumerate(names)}
    return out


# ---------------------------------------------------------------------------- jets from tracks


def jet_report(
    tracks_orig: np.ndarray,
    tracks_reco: np.ndarray,
    mask: np.ndarray,
    names,
    jet_eta: np.ndarray,
    jet_pt_gev: np.ndarray,
    pt_edges_gev=(20, 40, 60, 100, 150, 250, 400, 1000),
) -> dict:
    """Jets summed from original vs decoded tracks: pT response overall and in jet-pT bins, mass, eta, phi."""
    i = {n: k for k, n in enumerate(names)}
    orig = track_sum(*(tracks_orig[..., i[f]] for f in ("pt", "deta", "dphi")), mask, jet_eta)
    reco = track_sum(*(tracks_reco[..., i[f]] for f in ("pt", "deta", "dphi")), mask, jet_eta)
    has = mask.any(1)
    out = {
        "pt_response": response(reco["pt"][has], orig["pt"][has]),
        "mass_residual_gev": robust_summary((reco["mass"] - orig["mass"])[has] / 1e3),
        "mass_response": response(reco["mass"][has], orig["mass"][has]),
        "eta_residual": robust_summary((reco["eta"] - orig["eta"])[has]),
        "phi_residual": robust_summary((reco["phi"] - orig["phi"])[has]),
        "pt_response_in_bins": response_in_bins(jet_pt_gev[has], reco["pt"][has], orig["pt"][has], list(pt_edges_gev)),
    }
    out["arrays"] = {
        "pt_orig": orig["pt"][has],
        "pt_reco": reco["pt"][has],
        "mass_orig": orig["mass"][has],
        "mass_reco": reco["mass"][has],
        "jet_pt_gev": jet_pt_gev[has],
    }
    return out


# ---------------------------------------------------------------------------- leptons: m_ll and m_4l


def leptons(electrons: tuple[np.ndarray, np.ndarray], muons: tuple[np.ndarray, np.ndarray], e_names, mu_names) -> dict:
    """Electrons and muons side by side: pt [MeV], eta, phi, mass, charge, flavour (11 / 13), valid."""
    cols = {}
    for key in ("pt", "eta", "phi", "charge"):
        cols[key] = np.concatenate(
            [electrons[0][..., list(e_names).index(key)], muons[0][..., list(mu_names).index(key)]], 1
        )
    valid = np.concatenate([electrons[1], muons[1]], 1)
    flavour = np.concatenate([np.full(electrons[1].shape, 11), np.full(muons[1].shape, 13)], 1)
    mass = np.where(flavour == 11, ELECTRON_MASS_MEV, MUON_MASS_MEV)
    return {**cols, "mass": mass, "flavour": flavour, "valid": valid}


def four_lepton_mass(lep: Mapping) -> np.ndarray:
    """m_4l [MeV] of the four leading valid leptons (NaN with fewer than four)."""
    key = np.where(lep["valid"], lep["pt"], -np.inf)
    order = np.argsort(-key, axis=1)[:, :4]
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    m = invariant_mass(take(lep["pt"]), take(lep["eta"]), take(lep["phi"]), take(lep["mass"]))
    return np.where(take(lep["valid"]).all(1), m, np.nan)


def lepton_mass_report(orig: Mapping, reco: Mapping) -> dict:
    """m_ll (Z candidate) and m_4l from decoded vs original leptons: residual resolution and peak shifts [GeV]."""
    out = {}
    for name, fn, window in (("mll", _z_mass, Z_WINDOW_GEV), ("m4l", four_lepton_mass, H_WINDOW_GEV)):
        a, b = fn(orig) / 1e3, fn(reco) / 1e3
        both = np.isfinite(a) & np.isfinite(b)
        peak_a = a[both & (a > window[0]) & (a < window[1])]
        peak_b = b[both & (b > window[0]) & (b < window[1])]
        out[name] = {
            "residual_gev": robust_summary(b[both] - a[both]),
            "peak_orig_gev": float(np.median(peak_a)) if len(peak_a) else float("nan"),
            "peak_reco_gev": float(np.median(peak_b)) if len(peak_b) else float("nan"),
            "n": int(both.sum()),
        }
        out[name]["peak_shift_gev"] = out[name]["peak_reco_gev"] - out[name]["peak_orig_gev"]
        out[name]["arrays"] = {"orig": a[both], "reco": b[both]}
    return out


def _z_mass(lep: Mapping) -> np.ndarray:
    return z_candidate_mass(lep["pt"], lep["eta"], lep["phi"], lep["mass"], lep["charge"], lep["flavour"], lep["valid"])


# ---------------------------------------------------------------------------- per collection and the cost table


def collection_report(tok, features: np.ndarray, mask: np.ndarray) -> dict:
    """Per-feature numbers at every level, plus the original and fully decoded values of the valid objects."""
    indices = tok.encode(features, mask)
    report = levels_report(tok, features, mask, indices)
    decoded = {q: tok.decode(indices, levels=q) for q in levels_of(tok)}
    return {
        "levels": report,
        "indices": indices,
        "orig": features[mask],
        "reco": decoded[max(decoded)][mask],
        "decoded": decoded,
    }


def bits_per_object(tok) -> float:
    """Information a token group can carry: Q x log2 K bits (binning: the sum over features of log2 bins)."""
    return float(tok.num_quantizers * np.log2(tok.codebook_size))


def cost_row(name: str, tok, report: Mapping, key_feature: str = "pt") -> dict:
    """One row of the cost table: bits, and the reconstruction floor of a key feature after all levels."""
    last = report["levels"][max(report["levels"])]
    numbers = last.get(key_feature, {})
    return {
        "collection": name,
        "levels": tok.num_quantizers,
        "codebook_size": tok.codebook_size,
        "bits_per_object": bits_per_object(tok),
        f"{key_feature}_response_iqr_over_median": numbers.get("response_iqr_over_median", float("nan")),
        f"{key_feature}_mae": numbers.get("mae", float("nan")),
    }


def metric_items(collection: str, report: Mapping) -> dict[str, float]:
    """The per-feature numbers as documented metrics.json keys (`tokenizer.<collection>.<feature>...`)."""
    return level_metric_items(report["levels"], f"tokenizer.{collection}.")
