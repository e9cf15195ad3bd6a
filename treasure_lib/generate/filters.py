"""Generator-level event filters: keep only the Pythia events a selection could ever accept.

Why: a rare final state (four leptons from Z/gamma* pairs whose softer pair reaches down to 10 GeV)
is mostly lost to lepton acceptance; generating it unfiltered spends most of the CPU on events no
four-lepton selection keeps. As in ATLAS MC production, a filter on the generated final state keeps
the acceptable events and the file records its efficiency: the events' cross section is then
weight x sigma x filter_efficiency x k_factor / sum_of_weights, with sum_of_weights over the kept events.

A process block in params/processes.yaml may hold
    filter: {leptons: 4, pt_min_gev: 4.0, eta_max: 2.7}
(at least `leptons` final-state electrons or muons with pT > pt_min_gev and |eta| < eta_max).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import awkward as ak
import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class LeptonFilter:
    """At least `leptons` final-state e or mu (|pdg id| 11, 13) with pT > pt_min_gev and |eta| < eta_max."""

    leptons: int = 4
    pt_min_gev: float = 4.0
    eta_max: float = 2.7

    @classmethod
    def from_block(cls, spec: Mapping, where: str) -> LeptonFilter:
        names = [f.name for f in fields(cls)]
        if not isinstance(spec, Mapping) or set(spec) - set(names):
            raise ConfigError(f"{where}: 'filter' must be a mapping of {', '.join(names)}; got {spec!r}")
        out = cls(**{k: type(getattr(cls, k))(v) for k, v in spec.items()})
        if out.leptons < 1 or out.pt_min_gev < 0 or out.eta_max <= 0:
            raise ConfigError(f"{where}: filter needs leptons >= 1, pt_min_gev >= 0, eta_max > 0; got {asdict(out)}")
        return out

    def describe(self) -> str:
        """The filter as text, for the file metadata."""
        return f">= {self.leptons} final-state e/mu with pT > {self.pt_min_gev:g} GeV and |eta| < {self.eta_max:g}"

    def accept(self, events: ak.Array) -> np.ndarray:
        """[n] bool for a batch of Pythia events (awkward, from `nextBatch`; momenta in GeV)."""
        prt = events.prt
        apid = np.abs(prt.id)
        pt = np.hypot(prt.p.px, prt.p.py)
        pz = prt.p.pz
        abs_eta = np.abs(np.arcsinh(pz / np.where(pt > 0, pt, 1e-9)))
        lepton = (prt.status > 0) & ((apid == 11) | (apid == 13)) & (pt > self.pt_min_gev) & (abs_eta < self.eta_max)
        return ak.to_numpy(ak.sum(lepton, axis=1)) >= self.leptons


def filter_of_block(block: Mapping, where: str) -> LeptonFilter | None:
    """The block's filter (None: keep every generated event)."""
    spec = block.get("filter")
    return None if spec is None else LeptonFilter.from_block(spec, where)
