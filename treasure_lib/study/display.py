"""How a feature is named and in which unit it is shown: physics names, and stored units converted for reading.

The data keep ATLAS's units (MeV, mm; `params/objects.yaml` records each feature's `units`, or declares it
`dimensionless`). A physicist reads energies in GeV, so a table or axis shows `pT [GeV]` and a bias of -4.72 GeV,
not -4.72e+03 MeV: `SHOWN` is the one table from a stored unit to the unit shown, with its factor. Names are the
ones a physicist says (pT, η, Δφ, d0); a feature without one keeps its ATLAS variable name. An axis of a stored
feature reads `feature_label(collection, feature)`: "Jet $p_{T}$ [GeV]".
"""

from __future__ import annotations

from collections.abc import Mapping

#: stored unit -> (unit shown, factor from stored to shown)
SHOWN: dict[str, tuple[str, float]] = {"MeV": ("GeV", 1e-3), "1/MeV": ("1/GeV", 1e3), "MeV^2": ("GeV^2", 1e-6)}

NAMES: dict[str, str] = {
    "pt": "pT",
    "eta": "\u03b7",
    "phi": "\u03c6",
    "deta": "\u0394\u03b7",
    "dphi": "\u0394\u03c6",
    "mass": "m",
    "charge": "charge",
    "d0": "d0",
    "z0": "z0",
    "z0SinTheta": "z0 sin\u03b8",
    "d0Uncertainty": "\u03c3(d0)",
    "z0SinThetaUncertainty": "\u03c3(z0 sin\u03b8)",
    "lifetimeSignedD0": "signed d0",
    "lifetimeSignedD0Significance": "signed d0 / \u03c3(d0)",
    "lifetimeSignedZ0SinTheta": "signed z0 sin\u03b8",
    "lifetimeSignedZ0SinThetaSignificance": "signed z0 sin\u03b8 / \u03c3",
    "theta": "\u03b8",
    "thetaUncertainty": "\u03c3(\u03b8)",
    "phiUncertainty": "\u03c3(\u03c6)",
    "qOverP": "q/p",
    "qOverPUncertainty": "\u03c3(q/p)",
    "ptfrac": "pT / pT(jet)",
    "chiSquared": "\u03c7\u00b2",
    "numberDoF": "nDoF",
    "nDoF": "nDoF",
    "met": "ETmiss",
    "sumet": "\u03a3ET",
    "mu": "\u27e8\u03bc\u27e9",
    "pvx": "PV x",
    "pvy": "PV y",
    "pvz": "PV z",
    "trk_iso03": "relative track isolation (\u0394R < 0.3)",
}
#: the same names in matplotlib mathtext where plain text reads worse on an axis
TEX: dict[str, str] = {"pt": "$p_{T}$", "met": "$E_{T}^{miss}$", "sumet": "$\\Sigma E_{T}$"}


def shown_unit(unit: str | None) -> tuple[str | None, float]:
    """(unit to show, factor from the stored values): MeV -> (GeV, 1e-3); mm, rad and None unchanged."""
    if not unit:
        return None, 1.0
    return SHOWN.get(unit, (unit, 1.0))


def name(feature: str, tex: bool = False) -> str:
    """The physics name of a feature ('pT', 'η'; with `tex` mathtext for axes, '$p_{T}$')."""
    if tex and feature in TEX:
        return TEX[feature]
    return NAMES.get(feature, feature)


def label(feature: str, unit: str | None, tex: bool = False) -> str:
    """'pT [GeV]' from the stored unit ('MeV'); a dimensionless feature is its name alone."""
    shown, _ = shown_unit(unit)
    return f"{name(feature, tex)} [{shown}]" if shown else name(feature, tex)


def feature_label(collection, feature: str, tex: bool = True) -> str:
    """The axis label of a stored feature: the collection's object (its objects.yaml `display_name`, else its
    name), the feature's physics name (mathtext with `tex`) and the unit it is shown in, e.g. jets' pt ->
    'Jet $p_{T}$ [GeV]', tracks' d0 -> 'Track d0 [mm]', met's met -> '$E_{T}^{miss}$ [GeV]'."""
    text = label(feature, collection.unit(feature), tex)
    shown = collection.name if collection.display_name is None else collection.display_name
    return f"{shown} {text}" if shown else text


def units_of(collections: Mapping, names) -> dict[str, str]:
    """{feature: stored unit} of the named collections together (a combined card's members share feature names)."""
    out: dict[str, str] = {}
    for n in names:
        if n in collections:
            out.update(dict(collections[n].units))
    return out
