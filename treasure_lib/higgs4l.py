"""The H -> ZZ* -> 4l signal region: lepton quadruplets, the cut flow and the classic high-level variables.

Why this module: a tokenized event is only interesting next to what a physicist would do with the same
event. The ATLAS-like selection below (two same-flavour opposite-sign lepton pairs, pT thresholds,
isolation, m12 / m34 ranges, an m4l window) defines the signal region and its cut flow; the eleven
variables it computes (m12, m34, m4l, pt4l, eta4l and the five decay angles) are the inputs of the
classic baselines (`treasure_lib.baselines`). Every number comes from `selection.h4l` in params.

Everything is vectorised over events: the at most 4 + 4 leptons of an event give a fixed table of
candidate quadruplets, evaluated for all events at once. Momenta are MeV in and GeV out (masses and
momenta of the results), as the names say.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from .errors import ConfigError, InputFileError
from .io.batch import Batch, ObjectArrays
from .kinematics import ELECTRON_MASS_MEV, MUON_MASS_MEV, Z_MASS_GEV, boost_to_rest_frame, four_vectors, p4_mass

GEV = 1000.0
ELECTRON, MUON = 11, 13
ELECTRON_IDS = ("LHLoose", "LHMedium", "LHTight")  # 0/1 flags of the electron collection
MUON_QUALITY = {"Tight": 0, "Medium": 1, "Loose": 2, "VeryLoose": 3}  # the muons' `quality` values
# cut-flow steps in order; each counts the events passing it and every step before
STEPS = ("all", "four_leptons", "two_sfos_pairs", "lepton_pt", "isolation", "m12", "m34", "m4l_window")
# steps a quadruplet is ranked by (how far it gets), after the two event-level steps
_QUADRUPLET_STEPS = ("lepton_pt", "isolation", "m12", "m34")
VARIABLES = ("m12", "m34", "m4l", "pt4l", "eta4l", "cos_theta_star", "cos_theta1", "cos_theta2", "Phi", "Phi1")


@dataclass(frozen=True)
class H4lCuts:
    """The selection's numbers (params `selection.h4l`, documented in treasure_lib/config/schema.py).

    Defaults follow the ATLAS Run-2 H -> 4l analysis: Loose leptons (electrons pT > 7 GeV, |eta| < 2.47;
    muons pT > 5 GeV, |eta| < 2.7), 20 / 15 / 10 GeV on the three leading quadruplet leptons,
    50 < m12 < 106 GeV, 12 < m34 < 115 GeV, and the 115-130 GeV m4l window.
    """

    electron_pt_min_gev: float = 7.0
    electron_eta_max: float = 2.47
    electron_id: str = "LHLoose"
    muon_pt_min_gev: float = 5.0
    muon_eta_max: float = 2.7
    muon_quality: str = "Loose"
    lepton_pt_min_gev: tuple[float, ...] = (20.0, 15.0, 10.0)
    isolation_max: float = 0.15
    m12_gev: tuple[float, float] = (50.0, 106.0)
    m34_gev: tuple[float, float] = (12.0, 115.0)
    m4l_window_gev: tuple[float, float] = (115.0, 130.0)

    def __post_init__(self):
        where = "selection.h4l"
        if self.electron_id not in ELECTRON_IDS:
            raise ConfigError(f"{where}.electron_id must be one of {', '.join(ELECTRON_IDS)}; got {self.electron_id!r}")
        if self.muon_quality not in MUON_QUALITY:
            raise ConfigError(
                f"{where}.muon_quality must be one of {', '.join(MUON_QUALITY)}; got {self.muon_quality!r}"
            )
        if not 1 <= len(self.lepton_pt_min_gev) <= 4:
            raise ConfigError(
                f"{where}.lepton_pt_min_gev needs 1 to 4 thresholds (leading lepton first); "
                f"got {list(self.lepton_pt_min_gev)}"
            )
        for name in ("m12_gev", "m34_gev", "m4l_window_gev"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
                raise ConfigError(f"{where}.{name} must be [low, high] with low < high (GeV); got {list(lo_hi)}")

    @classmethod
    def from_params(cls, section: Mapping | H4lCuts | None) -> H4lCuts:
        """From the `selection.h4l` mapping (an `H4lCuts` passes through; None gives the defaults)."""
        if isinstance(section, H4lCuts):
            return section
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(section or {}) - names)
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown} in selection.h4l; known: {', '.join(sorted(names))}")
        kw = {k: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v for k, v in (section or {}).items()}
        return cls(**kw)


# --------------------------------------------------------------------------- four-vectors [..., 4] = (E, px, py, pz)


def lepton_four_vectors(electrons: Mapping, muons: Mapping) -> np.ndarray:
    """[n, slots, 4] (E, px, py, pz) [MeV] of the electron slots, then the muon slots, with the electron and muon
    masses, from each one's `pt` [MeV], `eta` and `phi` arrays [n, max] (the selection's slot order)."""

    def cat(f):
        return np.concatenate([np.asarray(electrons[f], np.float64), np.asarray(muons[f], np.float64)], axis=1)

    n, n_e, n_mu = len(electrons["pt"]), np.shape(electrons["pt"])[1], np.shape(muons["pt"])[1]
    mass = np.concatenate([np.full((n, n_e), ELECTRON_MASS_MEV), np.full((n, n_mu), MUON_MASS_MEV)], axis=1)
    return np.stack(four_vectors(cat("pt"), cat("eta"), cat("phi"), mass), axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1)


def _signed_angle(sign_of: np.ndarray, cos_of: np.ndarray) -> np.ndarray:
    """sign(sign_of) * arccos(cos_of): an azimuthal angle in [-pi, pi]."""
    return np.where(sign_of < 0, -1.0, 1.0) * np.arccos(np.clip(cos_of, -1.0, 1.0))


def decay_angles(l1_minus: np.ndarray, l1_plus: np.ndarray, l2_minus: np.ndarray, l2_plus: np.ndarray) -> dict:
    """The five angles of X -> Z1 Z2 -> (l1- l1+)(l2- l2+) from lab four-vectors [..., 4] (any unit).

    Definitions of Gao et al., PRD 81 (2010) 075022, as written in Bolognesi et al., PRD 86 (2012) 095031
    (App. A) and used by ATLAS and CMS spin-CP measurements, with the beam axis n_z the +z beam's
    direction seen in the X rest frame:
      cos theta* = q1 . n_z / |q1|                              (X rest frame; q1, q2 the Z1, Z2 momenta)
      cos theta1 = -q2 . l1- / (|q2| |l1-|)                     (Z1 rest frame), cos theta2 likewise
      Phi  = sign(q1 . (n1 x n2)) arccos(-n1 . n2)              (X rest frame)
      Phi1 = sign(q1 . (n1 x n_sc)) arccos(n1 . n_sc)
    with n1 = unit(l1- x l1+), n2 = unit(l2- x l2+), n_sc = unit(n_z x q1). Degenerate (collinear)
    configurations give NaN.
    """
    z1, z2 = l1_minus + l1_plus, l2_minus + l2_plus
    x = z1 + z2
    beam = np.zeros_like(x)
    beam[..., 0], beam[..., 3] = 1.0, 1.0
    in_x = [boost_to_rest_frame(p, x)[..., 1:] for p in (l1_minus, l1_plus, l2_minus, l2_plus, z1, beam)]
    q11, q12, q21, q22, q1, n_z = in_x
    n_z = _unit(n_z)
    n1, n2 = _unit(np.cross(q11, q12)), _unit(np.cross(q21, q22))
    n_sc = _unit(np.cross(n_z, q1))
    l1_in_z1, z2_in_z1 = boost_to_rest_frame(l1_minus, z1)[..., 1:], boost_to_rest_frame(z2, z1)[..., 1:]
    l2_in_z2, z1_in_z2 = boost_to_rest_frame(l2_minus, z2)[..., 1:], boost_to_rest_frame(z1, z2)[..., 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "cos_theta_star": _dot(_unit(q1), n_z),
            "cos_theta1": -_dot(_unit(z2_in_z1), _unit(l1_in_z1)),
            "cos_theta2": -_dot(_unit(z1_in_z2), _unit(l2_in_z2)),
            "Phi": _signed_angle(_dot(q1, np.cross(n1, n2)), -_dot(n1, n2)),
            "Phi1": _signed_angle(_dot(q1, np.cross(n1, n_sc)), _dot(n1, n_sc)),
        }


# --------------------------------------------------------------------------- quadruplets


@functools.lru_cache(maxsize=16)
def quadruplet_table(n_electrons: int, n_muons: int) -> np.ndarray:
    """[T, 4] lepton slots (electrons first, then muons) of every pair of disjoint same-flavour pairs.

    4 + 4 slots give 42 quadruplets: 3 of four electrons, 3 of four muons, 36 electron-pair x muon-pair.
    Charges and validity are checked per event; the table only says which slots could pair.
    """
    slots = [list(range(n_electrons)), list(range(n_electrons, n_electrons + n_muons))]
    pairs = [(a, b) for block in slots for i, a in enumerate(block) for b in block[i + 1 :]]
    quads = [(*p, *q) for i, p in enumerate(pairs) for q in pairs[i + 1 :] if not set(p) & set(q)]
    return np.array(quads, dtype=np.int64).reshape(-1, 4)


@dataclass
class Quadruplets:
    """The selected quadruplet of every event and how far each event gets through the cut flow.

    The selected quadruplet is, among those that pass the most consecutive quadruplet steps (pT thresholds,
    isolation, m12, m34), the one whose leading pair is closest to m_Z, then whose subleading pair is
    (ATLAS: thresholds, then the best pairing, then the mass cuts on it); the m4l window is applied to it.
    """

    leptons: np.ndarray  # [n, 4, 4] (E, px, py, pz) MeV: Z1 l-, Z1 l+, Z2 l-, Z2 l+ (zeros: none)
    flavour: np.ndarray  # [n, 2] |pdg id| of the Z1 and Z2 pairs (11, 13; 0: none)
    n_leptons: np.ndarray  # [n] leptons passing the object cuts (pT, eta, ID)
    passed: dict  # step name (STEPS) -> [n] bool: passes this step and every one before

    def __len__(self) -> int:
        return len(self.n_leptons)

    @property
    def found(self) -> np.ndarray:
        """Events with two same-flavour opposite-sign pairs of selected leptons."""
        return self.passed["two_sfos_pairs"]

    @property
    def channel(self) -> np.ndarray:
        """'4mu', '4e', '2mu2e' (Z1 -> mumu) or '2e2mu' per event ('' where no quadruplet)."""
        names = {(MUON, MUON): "4mu", (ELECTRON, ELECTRON): "4e", (MUON, ELECTRON): "2mu2e", (ELECTRON, MUON): "2e2mu"}
        out = np.full(len(self), "", dtype="<U5")
        for (a, b), name in names.items():
            out[(self.flavour[:, 0] == a) & (self.flavour[:, 1] == b)] = name
        return out


def _lepton_arrays(oa: ObjectArrays, kind: str, id_field: str) -> dict:
    need = ("pt", "eta", "phi", "charge", "trk_iso03", id_field)
    have = set(oa.names) | set(oa.truth)
    missing = [f for f in need if f not in have]
    if missing:
        raise InputFileError(
            f"the H -> 4l selection needs {kind} feature(s) {missing}; the {kind} collection has "
            f"{', '.join(oa.names)} (params/objects.yaml, events set)"
        )
    return {f: np.asarray(oa.field(f), dtype=np.float64) for f in need} | {"mask": np.asarray(oa.mask, bool)}


def quadruplets(electrons: ObjectArrays, muons: ObjectArrays, cuts: H4lCuts | Mapping | None = None) -> Quadruplets:
    """Select the H -> 4l quadruplet of every event from padded electron and muon arrays ([n, max] each)."""
    cuts = H4lCuts.from_params(cuts)
    el = _lepton_arrays(electrons, "electrons", cuts.electron_id)
    mu = _lepton_arrays(muons, "muons", "quality")
    if len(el["pt"]) != len(mu["pt"]):
        raise InputFileError(
            f"electrons and muons must hold the same events; got {len(el['pt'])} and {len(mu['pt'])} rows"
        )
    n, n_e, n_mu = len(el["pt"]), el["pt"].shape[1], mu["pt"].shape[1]
    ok_e = el["mask"] & (el["pt"] > cuts.electron_pt_min_gev * GEV) & (np.abs(el["eta"]) < cuts.electron_eta_max)
    ok_e &= el[cuts.electron_id] > 0
    ok_mu = mu["mask"] & (mu["pt"] > cuts.muon_pt_min_gev * GEV) & (np.abs(mu["eta"]) < cuts.muon_eta_max)
    ok_mu &= mu["quality"] <= MUON_QUALITY[cuts.muon_quality]
    cat = lambda f: np.concatenate([el[f], mu[f]], axis=1)  # noqa: E731
    good = np.concatenate([ok_e, ok_mu], axis=1)
    p4 = lepton_four_vectors(el, mu)  # [n, L, 4]
    charge, iso, pt = cat("charge"), cat("trk_iso03"), cat("pt")
    flavour = np.concatenate([np.full(n_e, ELECTRON), np.full(n_mu, MUON)])

    passed = {"all": np.ones(n, bool), "four_leptons": good.sum(1) >= 4}
    table = quadruplet_table(n_e, n_mu)  # [T, 4] slots
    if not len(table):  # fewer than four lepton slots: no event can hold a quadruplet
        none = np.zeros(n, bool)
        passed |= {s: none for s in STEPS[2:]}
        return Quadruplets(np.zeros((n, 4, 4)), np.zeros((n, 2), int), good.sum(1), passed)
    rows = np.arange(n)
    c = charge[rows[:, None, None], table]  # [n, T, 4]
    valid = good[rows[:, None, None], table].all(-1) & (c[..., 0] * c[..., 1] < 0) & (c[..., 2] * c[..., 3] < 0)
    lep = p4[rows[:, None, None], table]  # [n, T, 4, 4]
    m_a, m_b = p4_mass(lep[:, :, 0] + lep[:, :, 1]) / GEV, p4_mass(lep[:, :, 2] + lep[:, :, 3]) / GEV
    swap = np.abs(m_b - Z_MASS_GEV) < np.abs(m_a - Z_MASS_GEV)  # the pair closest to m_Z leads
    order = np.where(swap[..., None], [2, 3, 0, 1], [0, 1, 2, 3])
    plus_first = np.take_along_axis(c, order, -1)[..., [0, 0, 2, 2]] > 0
    order = np.where(plus_first, order[..., [1, 0, 3, 2]], order)  # the negative lepton first in each pair
    slots = np.take_along_axis(np.broadcast_to(table, c.shape), order, -1)  # [n, T, 4] ordered
    m12, m34 = np.where(swap, m_b, m_a), np.where(swap, m_a, m_b)
    m4l = p4_mass(lep.sum(2)) / GEV

    pts = -np.sort(-pt[rows[:, None, None], table], axis=-1)
    thresholds = np.asarray(cuts.lepton_pt_min_gev) * GEV
    quad_pass = {
        "lepton_pt": (pts[..., : len(thresholds)] > thresholds).all(-1),
        "isolation": (iso[rows[:, None, None], table] < cuts.isolation_max).all(-1),
        "m12": (m12 > cuts.m12_gev[0]) & (m12 < cuts.m12_gev[1]),
        "m34": (m34 > cuts.m34_gev[0]) & (m34 < cuts.m34_gev[1]),
    }
    depth = np.where(valid, 0, -1)  # consecutive quadruplet steps passed
    still = valid.copy()
    for step in _QUADRUPLET_STEPS:
        still &= quad_pass[step]
        depth += still
    top = depth == depth.max(axis=1, keepdims=True)  # furthest, then m12, then m34 closest to m_Z
    d12 = np.where(top, np.abs(m12 - Z_MASS_GEV), np.inf)
    top &= d12 == d12.min(axis=1, keepdims=True)
    best = np.argmin(np.where(top, np.abs(m34 - Z_MASS_GEV), np.inf), axis=1)
    found = valid[rows, best]
    chosen_depth = np.where(found, depth[rows, best], -1)
    chosen = slots[rows, best]  # [n, 4]
    in_window = (m4l[rows, best] > cuts.m4l_window_gev[0]) & (m4l[rows, best] < cuts.m4l_window_gev[1])

    passed["two_sfos_pairs"] = found
    for k, step in enumerate(_QUADRUPLET_STEPS, start=1):
        passed[step] = chosen_depth >= k
    passed["m4l_window"] = passed["m34"] & in_window
    leptons = np.where(found[:, None, None], p4[rows[:, None], chosen], 0.0)
    pair_flavour = np.where(found[:, None], flavour[chosen[:, [0, 2]]], 0)
    return Quadruplets(leptons, pair_flavour, good.sum(1), passed)


def quadruplets_of(batch: Batch, cuts: H4lCuts | Mapping | None = None) -> Quadruplets:
    """`quadruplets` on a batch of the events set (its `electrons` and `muons` collections)."""
    missing = [c for c in ("electrons", "muons") if c not in batch.collections]
    if missing:
        raise InputFileError(
            f"{batch.source_file or 'batch'}: the H -> 4l selection needs collection(s) {missing}; "
            f"the batch holds {', '.join(batch.collections)}"
        )
    return quadruplets(batch["electrons"], batch["muons"], cuts)


# --------------------------------------------------------------------------- variables and cut flow


def high_level_variables(quads: Quadruplets) -> dict[str, np.ndarray]:
    """Per event: m12, m34, m4l, pt4l [GeV], eta4l and the five decay angles (`VARIABLES`); NaN without quadruplet."""
    lep = quads.leptons
    z1, z2 = lep[:, 0] + lep[:, 1], lep[:, 2] + lep[:, 3]
    x = z1 + z2
    pt4l = np.hypot(x[:, 1], x[:, 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "m12": p4_mass(z1) / GEV,
            "m34": p4_mass(z2) / GEV,
            "m4l": p4_mass(x) / GEV,
            "pt4l": pt4l / GEV,
            "eta4l": np.arcsinh(x[:, 3] / pt4l),
        }
        out |= decay_angles(lep[:, 0], lep[:, 1], lep[:, 2], lep[:, 3])
    return {k: np.where(quads.found, out[k], np.nan) for k in VARIABLES}


@dataclass
class CutFlow:
    """Events after each step (`STEPS`): counted, and summed with weights. Add flows of batches with `+`."""

    events: dict
    weighted: dict
    unit: str = "sum of weights"

    def __add__(self, other: CutFlow) -> CutFlow:
        if self.unit != other.unit:
            raise ValueError(f"cannot add cut flows in {self.unit!r} and {other.unit!r}")
        return CutFlow(
            {s: self.events[s] + other.events[s] for s in STEPS},
            {s: self.weighted[s] + other.weighted[s] for s in STEPS},
            self.unit,
        )

    def rows(self) -> list[dict]:
        """One row per step: events, weighted, and the fraction of the previous step's events kept."""
        out, before = [], None
        for s in STEPS:
            n = self.events[s]
            out.append(
                {
                    "step": s,
                    "events": n,
                    "weighted": self.weighted[s],
                    "efficiency": (n / before if before else float("nan")) if before is not None else 1.0,
                }
            )
            before = n
        return out


def cut_flow(quads: Quadruplets, weights: np.ndarray | None = None, unit: str = "sum of weights") -> CutFlow:
    """Unweighted and weighted events passing each step."""
    w = np.ones(len(quads)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(quads):
        raise ValueError(f"weights has {len(w)} entries for {len(quads)} events")
    return CutFlow(
        {s: int(quads.passed[s].sum()) for s in STEPS}, {s: float(w[quads.passed[s]].sum()) for s in STEPS}, unit
    )


def cross_section_weights(batch: Batch) -> tuple[np.ndarray, str]:
    """Per-row cross section [fb] (weight x sigma x filter efficiency x k-factor / sum of weights), from the
    sample metadata; without `cross_section_pb` and `sum_of_weights` the batch weights themselves."""
    meta = batch.metadata or {}
    w = np.asarray(batch.weights, dtype=np.float64)
    if "cross_section_pb" not in meta or not meta.get("sum_of_weights"):
        return w, "sum of weights"
    scale = float(meta["cross_section_pb"]) * float(meta.get("filter_efficiency", 1.0))
    scale *= float(meta.get("k_factor", 1.0))
    return w * scale * 1e3 / float(meta["sum_of_weights"]), "fb"


def derived_columns(batch: Batch, selection_params: H4lCuts | Mapping | None = None) -> dict[str, np.ndarray]:
    """Per-row columns for a token exporter: the `VARIABLES` (float32, NaN without quadruplet) and
    `pass_h4l_preselection` (four leptons passing pT / eta / ID in two SFOS pairs) and `pass_h4l_sr`
    (every step including the m4l window), bool."""
    quads = quadruplets_of(batch, selection_params)
    out = {k: v.astype(np.float32) for k, v in high_level_variables(quads).items()}
    out["pass_h4l_preselection"] = quads.passed["two_sfos_pairs"].copy()
    out["pass_h4l_sr"] = quads.passed["m4l_window"].copy()
    return out


__all__ = [
    "H4lCuts",
    "Quadruplets",
    "CutFlow",
    "STEPS",
    "VARIABLES",
    "quadruplets",
    "quadruplets_of",
    "quadruplet_table",
    "decay_angles",
    "lepton_four_vectors",
    "high_level_variables",
    "cut_flow",
    "cross_section_weights",
    "derived_columns",
]
