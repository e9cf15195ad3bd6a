"""What tokenization costs in physics quantities, through each card's own encode -> decode.

- per collection and feature, after 1, 2, ..., Q levels: bias, MAE, resolution, correlation
  (`treasure_lib.reconstruction`, the same numbers for every tokenizer kind);
- jets: the jet 4-vector summed from decoded tracks vs from the original tracks, with the response
  resolution (q75 - q25) / median of pT_reco / pT_orig overall and in bins of jet pT (the field's
  definition), mass and eta/phi;
- events: m_ll (the Z candidate) and m_4l from decoded leptons vs the original ones (resolution and
  the shift of the Z and H peaks);
- the cost table: bits per object (Q log2 K) beside the reconstruction floor.
Inputs are arrays; `held_out` reads the rows (test split by default) with the study's reader.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import splits
from ..physics import ELECTRON_MASS_MEV, MUON_MASS_MEV, best_z_candidate, invariant_mass
from ..reconstruction import flatten, levels_of, reconstruction

PION_MASS_MEV = 139.57
Z_WINDOW_GEV, H_WINDOW_GEV = (81.0, 101.0), (115.0, 135.0)


def held_out(params: Mapping, split: str = "test", max_rows: int = 20_000):
    """Rows of one split (all collections of the study), in file order, up to `max_rows` per file."""
    from ..io.batch import concat
    from ..io.reader import H5Stream

    stream = H5Stream.from_data(params["data"], select_split=splits.parse(split))
    stream.max_rows = None
    parts, per_file = [], {}
    for batch in stream:
        taken = per_file.get(batch.source_file, 0)
        if taken >= max_rows:
            continue
        batch = batch.take(np.arange(min(len(batch), max_rows - taken)))
        per_file[batch.source_file] = taken + len(batch)
        parts.append(batch)
    return concat(parts)


def _robust(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"n": 0}
    q16, q25, q50, q75, q84 = np.quantile(x, [0.16, 0.25, 0.5, 0.75, 0.84])
    return {
        "n": int(len(x)),
        "median": float(q50),
        "iqr": float(q75 - q25),
        "sigma68": float(0.5 * (q84 - q16)),
        "mean": float(x.mean()),
    }


def sigma68(x) -> float:
    """Half the 16-84% interval: the width of a peak that tails do not dominate (NaN for no entries)."""
    return _robust(np.asarray(x, dtype=np.float64)).get("sigma68", float("nan"))


def response(reco: np.ndarray, orig: np.ndarray) -> dict[str, float]:
    """Response reco / orig: median and the resolution (q75 - q25) / median, with its bootstrap error."""
    ok = orig > 0
    r = reco[ok] / orig[ok]
    if len(r) < 2:
        return {"n": int(len(r))}
    q25, q50, q75 = np.quantile(r, [0.25, 0.5, 0.75])
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(100):
        s = r[rng.integers(0, len(r), len(r))]
        b25, b50, b75 = np.quantile(s, [0.25, 0.5, 0.75])
        boot.append((b75 - b25) / b50)
    return {
        "n": int(len(r)),
        "median": float(q50),
        "iqr_over_median": float((q75 - q25) / q50),
        "iqr_over_median_err": float(np.std(boot)),
    }


def response_in_bins(variable: np.ndarray, reco: np.ndarray, orig: np.ndarray, edges) -> list[dict]:
    """`response` in bins of a variable (e.g. jet pT in GeV): one row per bin with its edges."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (variable >= lo) & (variable < hi)
        rows.append({"low": float(lo), "high": float(hi), **response(reco[sel], orig[sel])})
    return rows


# ---------------------------------------------------------------------------- jets from tracks


def track_jet(pt: np.ndarray, deta: np.ndarray, dphi: np.ndarray, mask: np.ndarray, jet_eta: np.ndarray) -> dict:
    """The 4-vector sum of a jet's tracks (pion mass): pt [MeV], eta, phi (relative to the jet axis), mass [MeV]."""
    eta = jet_eta[:, None] + deta
    e_pt = np.where(mask, pt, 0.0)
    px, py = (e_pt * np.cos(dphi)).sum(1), (e_pt * np.sin(dphi)).sum(1)
    pz = (e_pt * np.sinh(eta)).sum(1)
    energy = np.where(mask, np.sqrt((pt * np.cosh(eta)) ** 2 + PION_MASS_MEV**2), 0.0).sum(1)
    jet_pt = np.hypot(px, py)
    p = np.sqrt(jet_pt**2 + pz**2)
    return {
        "pt": jet_pt,
        "eta": np.arcsinh(np.divide(pz, jet_pt, out=np.zeros_like(pz), where=jet_pt > 0)),
        "phi": np.arctan2(py, px),
        "mass": np.sqrt(np.clip(energy**2 - p**2, 0, None)),
    }


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
    orig = track_jet(*(tracks_orig[..., i[f]] for f in ("pt", "deta", "dphi")), mask, jet_eta)
    reco = track_jet(*(tracks_reco[..., i[f]] for f in ("pt", "deta", "dphi")), mask, jet_eta)
    has = mask.any(1)
    out = {
        "pt_response": response(reco["pt"][has], orig["pt"][has]),
        "mass_residual_gev": _robust((reco["mass"] - orig["mass"])[has] / 1e3),
        "mass_response": response(reco["mass"][has], orig["mass"][has]),
        "eta_residual": _robust((reco["eta"] - orig["eta"])[has]),
        "phi_residual": _robust((reco["phi"] - orig["phi"])[has]),
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
            "residual_gev": _robust(b[both] - a[both]),
            "peak_orig_gev": float(np.median(peak_a)) if len(peak_a) else float("nan"),
            "peak_reco_gev": float(np.median(peak_b)) if len(peak_b) else float("nan"),
            "n": int(both.sum()),
        }
        out[name]["peak_shift_gev"] = out[name]["peak_reco_gev"] - out[name]["peak_orig_gev"]
        out[name]["arrays"] = {"orig": a[both], "reco": b[both]}
    return out


def _z_mass(lep: Mapping) -> np.ndarray:
    return best_z_candidate(lep["pt"], lep["eta"], lep["phi"], lep["mass"], lep["charge"], lep["flavour"], lep["valid"])


# ---------------------------------------------------------------------------- per collection and the cost table


def collection_report(tok, features: np.ndarray, mask: np.ndarray) -> dict:
    """Per-feature numbers at every level, plus the original and fully decoded values of the valid objects."""
    indices = tok.encode(features, mask)
    report = reconstruction(tok, features, mask, indices)
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
    return flatten(report["levels"], f"tokenizer.{collection}.")
