"""The generator's truth record as flat numpy arrays, with vectorised ancestry.

Pythia's `nextBatch` gives awkward arrays of events; we flatten them once into one row per
particle (`evt` says which event) and answer every truth question with array operations:
hadron flavour from PDG ids, nearest weakly decaying b/c hadron and tau ancestors, whether a
lepton or photon is prompt. Momenta in MeV, positions in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from ..kinematics import azimuth, pseudorapidity

GEV = 1000.0  # Pythia works in GeV; ATLAS files are in MeV
NEUTRINOS = (12, 14, 16)
MAX_ANCESTRY_STEPS = 400


def _digit(aid: np.ndarray, n: int) -> np.ndarray:
    return (aid // 10**n) % 10


def is_hadron(pid: np.ndarray) -> np.ndarray:
    """Mesons and baryons (diquarks, |id| like 2101, and partons excluded)."""
    aid = np.abs(pid)
    return (aid > 100) & (_digit(aid, 1) != 0) & (aid < 1_000_000)


def heaviest_quark(pid: np.ndarray) -> np.ndarray:
    """Heaviest quark flavour in a hadron's PDG id (5 b, 4 c, ...; 0 for non-hadrons)."""
    aid = np.abs(pid)
    q = np.maximum(np.maximum(_digit(aid, 1), _digit(aid, 2)), _digit(aid, 3))
    return np.where(is_hadron(pid), q, 0)


@dataclass
class Truth:
    """One batch of events, one row per particle of the full event record."""

    evt: np.ndarray  # int64 event number within the batch
    pid: np.ndarray
    status: np.ndarray
    mother: np.ndarray  # global row of mother1 (-1 for the event's root)
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    mass: np.ndarray
    vx: np.ndarray  # production vertex, mm
    vy: np.ndarray
    vz: np.ndarray
    charge: np.ndarray
    n_events: int
    offsets: np.ndarray  # first row of each event, length n_events + 1
    pt: np.ndarray = None  # derived once in __post_init__: every step below reads them
    eta: np.ndarray = None
    phi: np.ndarray = None
    heavy: np.ndarray = None  # heaviest quark of hadrons (5 b, 4 c, ...), 0 otherwise

    def __post_init__(self) -> None:
        self.pt = np.sqrt(self.px * self.px + self.py * self.py)
        self.eta = pseudorapidity(self.px, self.py, self.pz, self.pt)
        self.phi = azimuth(self.px, self.py)
        if self.heavy is None:
            self.heavy = heaviest_quark(self.pid)
        self._weak: dict[int, np.ndarray] = {}

    @property
    def final(self) -> np.ndarray:
        return self.status > 0


class ParticleTable:
    """Per-PDG-id properties (charge from Pythia's ParticleData, heaviest quark), looked up by binary
    search in a sorted table that grows as new ids appear: no per-batch sort of every particle."""

    def __init__(self, charge_of):
        self.charge_of = charge_of
        self.ids = np.zeros(0, dtype=np.int64)
        self.charge = np.zeros(0)
        self.heavy = np.zeros(0, dtype=np.int64)

    def lookup(self, pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.ids, pid).clip(0, max(len(self.ids) - 1, 0))
        known = (self.ids[pos] == pid) if len(self.ids) else np.zeros(len(pid), bool)
        if not known.all():
            new = np.unique(pid[~known])
            ids = np.concatenate([self.ids, new])
            order = np.argsort(ids)
            self.ids = ids[order]
            self.charge = np.concatenate([self.charge, np.asarray(self.charge_of(new), dtype=np.float64)])[order]
            self.heavy = np.concatenate([self.heavy, heaviest_quark(new)])[order]
            pos = np.searchsorted(self.ids, pid)
        return self.charge[pos], self.heavy[pos]


def truth_from_events(events: ak.Array, table: ParticleTable) -> Truth:
    """Awkward Pythia events -> `Truth` (charges and hadron flavours from the `ParticleTable`)."""
    prt = events.prt
    counts = ak.to_numpy(ak.num(prt))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    evt = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    flat_prt = ak.flatten(prt)  # once: every field below is then a zero-copy view
    col = lambda x: ak.to_numpy(x)  # noqa: E731
    pid = col(flat_prt.id).astype(np.int64)
    mother_local = col(flat_prt.mother1).astype(np.int64)
    mother = np.where(mother_local > 0, offsets[evt] + mother_local, -1)
    vx, vy, vz = _production_vertices(flat_prt.vProd)
    charge, heavy = table.lookup(pid)
    p = flat_prt.p
    return Truth(
        evt=evt,
        pid=pid,
        status=col(flat_prt.status).astype(np.int64),
        mother=mother,
        px=col(p.px) * GEV,
        py=col(p.py) * GEV,
        pz=col(p.pz) * GEV,
        e=col(p.e) * GEV,
        mass=col(flat_prt.m) * GEV,
        vx=vx,
        vy=vy,
        vz=vz,
        charge=charge,
        n_events=len(counts),
        offsets=offsets,
        heavy=heavy,
    )


def _production_vertices(vprod: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, z of an optional 4-vector column, 0 where Pythia set none (read from the option's buffers)."""
    layout = ak.to_layout(vprod)
    if isinstance(layout, ak.contents.IndexedOptionArray):
        index = np.asarray(layout.index)
        valid = index >= 0
        safe = np.where(valid, index, 0)
        return tuple(np.where(valid, np.asarray(layout.content[c].data)[safe], 0.0) for c in ("px", "py", "pz"))
    return tuple(ak.to_numpy(ak.fill_none(getattr(vprod, c), 0.0)) for c in ("px", "py", "pz"))


@dataclass
class Ancestry:
    """For each particle: nearest ancestors of interest (global rows, -1 if none)."""

    weak_b: np.ndarray  # weakly decaying b hadron
    weak_c: np.ndarray  # weakly decaying c hadron
    tau: np.ndarray  # the decaying tau lepton
    from_hadron: np.ndarray  # a hadron is met before any W/Z/H/top (non-prompt)
    from_boson: np.ndarray  # a W/Z/H/top is met before any hadron (prompt)

    def split(self, n: int) -> tuple[Ancestry, Ancestry]:
        """The first n rows and the rest, as two Ancestry objects."""
        parts = [getattr(self, k) for k in ("weak_b", "weak_c", "tau", "from_hadron", "from_boson")]
        return Ancestry(*(p[:n] for p in parts)), Ancestry(*(p[n:] for p in parts))


def weakly_decaying(truth: Truth, flavour: int) -> np.ndarray:
    """Hadrons whose heaviest quark is `flavour` and none of whose daughters shares it (cached per batch)."""
    if flavour in truth._weak:
        return truth._weak[flavour]
    heavy = truth.heavy == flavour
    has_same_child = np.zeros(len(truth.pid), dtype=bool)
    child = heavy & (truth.mother >= 0)
    has_same_child[truth.mother[child]] = True
    truth._weak[flavour] = heavy & ~has_same_child & (truth.status < 0)
    return truth._weak[flavour]


def decaying_taus(truth: Truth) -> np.ndarray:
    """The last copy of each tau: the one that decays (its daughters are not taus)."""
    tau = np.abs(truth.pid) == 15
    has_tau_child = np.zeros(len(tau), dtype=bool)
    child = tau & (truth.mother >= 0)
    has_tau_child[truth.mother[child]] = True
    return tau & ~has_tau_child


def ancestry(truth: Truth, rows: np.ndarray) -> Ancestry:
    """Walk mother1 links upwards for `rows` at once, recording the nearest ancestors of interest."""
    n = len(rows)
    weak_b_flag = weakly_decaying(truth, 5)
    weak_c_flag = weakly_decaying(truth, 4)
    tau_flag = decaying_taus(truth)
    hadron_flag = is_hadron(truth.pid)
    boson_flag = np.isin(np.abs(truth.pid), (6, 23, 24, 25))
    out = {k: np.full(n, -1, dtype=np.int64) for k in ("weak_b", "weak_c", "tau")}
    first_hadron = np.zeros(n, dtype=bool)
    first_boson = np.zeros(n, dtype=bool)
    decided = np.zeros(n, dtype=bool)
    active = np.arange(n)
    anc = truth.mother[rows]
    for _ in range(MAX_ANCESTRY_STEPS):
        keep = anc[active] >= 0
        active = active[keep]
        if len(active) == 0:
            break
        a = anc[active]
        for key, flag in (("weak_b", weak_b_flag), ("weak_c", weak_c_flag), ("tau", tau_flag)):
            hit = flag[a] & (out[key][active] < 0)
            out[key][active[hit]] = a[hit]
        undecided = ~decided[active]
        had = hadron_flag[a] & undecided
        bos = boson_flag[a] & undecided
        first_hadron[active[had]] = True
        first_boson[active[bos]] = True
        decided[active[had | bos]] = True
        anc[active] = truth.mother[a]
    return Ancestry(out["weak_b"], out["weak_c"], out["tau"], first_hadron, first_boson)


def decay_vertex(truth: Truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each particle's decay vertex (its daughters' production vertex; 0 for stable ones), mm."""
    dx, dy, dz = (np.zeros(len(truth.pid)) for _ in range(3))
    has = truth.mother >= 0
    m = truth.mother[has]
    dx[m], dy[m], dz[m] = truth.vx[has], truth.vy[has], truth.vz[has]
    return dx, dy, dz
