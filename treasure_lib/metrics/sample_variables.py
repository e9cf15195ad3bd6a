"""The physics variables by which a generated sample is compared with the test sample (`metrics.two_sample`):
what a b-tagger reads in a jet (its tracks' number, pT and impact-parameter significance), and what an event is
made of (objects per collection, the leading object's pT).

Input: {card: (features [n, M, F], valid [n, M])} in the stored units (MeV, mm), as `TokenizerSet.decode` returns
generated or test tokens turned back into features (or `TokenizerSet.card_inputs` the original objects), and
`feature_names` {card: [feature, ...]} in each card's order (its tokenizer's `features`). Output: {variable: array}
with one row per jet or event, [n] for a per-row variable and [n, M] for a per-object one with NaN where a slot holds
no object: `two_sample.compare` draws whole rows, so the tracks of one jet stay together. Energies in GeV (the unit
`study.display` shows), significances dimensionless; `describe(variable)` names an axis.

    gen = jet_variables(tokenizer_set.decode(generated), names)
    rows = two_sample.compare(gen, jet_variables(tokenizer_set.decode(test), names))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..study import display
from ._checks import MetricInputError

GEV_UNIT, PER_MEV = display.shown_unit("MeV")  # ("GeV", 1e-3): stored MeV to the GeV shown
SIGNED_D0_SIGNIFICANCE = "lifetimeSignedD0Significance"  # the tagger's own input, when the card holds it


@dataclass(frozen=True)
class Variable:
    """How a variable is shown: its axis name, its unit (None: dimensionless) and what one entry is."""

    name: str
    unit: str | None
    entries: str  # "jets", "tracks", "events"


_FIXED = {
    "jet_pt": Variable(f"Jet {display.name('pt', tex=True)}", GEV_UNIT, "jets"),
    "jet_mass": Variable(f"Jet {display.name('mass', tex=True)}", GEV_UNIT, "jets"),
    "jet_n_tracks": Variable("Number of tracks per jet", None, "jets"),
    "track_pt": Variable(f"Track {display.name('pt', tex=True)}", GEV_UNIT, "tracks"),
    "track_signed_d0_significance": Variable(f"Track {display.name(SIGNED_D0_SIGNIFICANCE)}", None, "tracks"),
    "track_abs_d0_significance": Variable("Track |d0| / \u03c3(d0)", None, "tracks"),
}


def describe(variable: str) -> Variable:
    """The axis name, unit and entries of a variable of `jet_variables` or `event_variables`."""
    if variable in _FIXED:
        return _FIXED[variable]
    if variable.startswith("n_"):
        return Variable(f"Number of {variable[2:]} per event", None, "events")
    if variable.startswith("leading_") and variable.endswith("_pt"):
        collection = variable[len("leading_") : -len("_pt")]
        one = collection[:-1] if collection.endswith("s") else collection
        return Variable(f"Leading {one} {display.name('pt', tex=True)}", GEV_UNIT, "events")
    return Variable(variable, None, "entries")


def _card(decoded: Mapping, feature_names: Mapping, card: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features [n, M, F] float64, valid [n, M], names) of one card, checked for shape and finite valid entries."""
    if card not in feature_names:
        raise MetricInputError(f"card '{card}' has no feature names (feature_names holds {sorted(feature_names)})")
    features, valid = (np.asarray(a) for a in decoded[card])
    names = list(feature_names[card])
    if features.ndim != 3 or features.shape[:2] != valid.shape or features.shape[2] != len(names):
        raise MetricInputError(
            f"card '{card}': expected features [n, M, {len(names)}] (one per name in {names}) and valid [n, M], "
            f"got {features.shape} and {valid.shape}"
        )
    valid = valid.astype(bool)
    bad = ~np.isfinite(features[valid])
    if bad.any():
        raise MetricInputError(f"card '{card}': {int(bad.sum())} non-finite values of valid objects")
    return features.astype(np.float64), valid, names


def _feature(features: np.ndarray, names: list[str], feature: str, card: str) -> np.ndarray:
    if feature not in names:
        raise MetricInputError(f"card '{card}' has no feature '{feature}' (its features: {names})")
    return features[..., names.index(feature)]


def _per_object(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[n, M] with NaN where a slot holds no object."""
    return np.where(valid, values, np.nan)


def jet_variables(
    decoded: Mapping[str, tuple[np.ndarray, np.ndarray]],
    feature_names: Mapping[str, list[str]],
    *,
    jets: str = "jets",
    tracks: str = "tracks",
) -> dict[str, np.ndarray]:
    """The b-tagging variables of a jets study, from whichever of the cards `jets` and `tracks` are given.

    Jet card (one jet per row): jet_pt and jet_mass [GeV] (the jet's own pt and mass features) [n]. Track card:
    jet_n_tracks [n]; track_pt [GeV] and the transverse impact-parameter significance [n, M], the lifetime-signed one
    (track_signed_d0_significance, the card's lifetimeSignedD0Significance) when the card holds it, else
    track_abs_d0_significance = |d0| / d0Uncertainty (NaN where the uncertainty is not positive).
    """
    if jets not in decoded and tracks not in decoded:
        raise MetricInputError(f"jet_variables needs card '{jets}' or '{tracks}', got {sorted(decoded)}")
    out: dict[str, np.ndarray] = {}
    if jets in decoded:
        features, valid, names = _card(decoded, feature_names, jets)
        first = valid[:, 0] if valid.shape[1] else np.zeros(len(valid), bool)
        for key, feature in (("jet_pt", "pt"), ("jet_mass", "mass")):
            out[key] = np.where(first, _feature(features, names, feature, jets)[:, 0] * PER_MEV, np.nan)
    if tracks in decoded:
        features, valid, names = _card(decoded, feature_names, tracks)
        out["jet_n_tracks"] = valid.sum(axis=1).astype(np.float64)
        out["track_pt"] = _per_object(_feature(features, names, "pt", tracks) * PER_MEV, valid)
        if SIGNED_D0_SIGNIFICANCE in names:
            significance = _feature(features, names, SIGNED_D0_SIGNIFICANCE, tracks)
            out["track_signed_d0_significance"] = _per_object(significance, valid)
        else:
            d0 = np.abs(_feature(features, names, "d0", tracks))
            sigma = _feature(features, names, "d0Uncertainty", tracks)
            ratio = np.divide(d0, sigma, out=np.full_like(d0, np.nan), where=sigma > 0)
            out["track_abs_d0_significance"] = _per_object(ratio, valid & (sigma > 0))
    return out


def event_variables(
    decoded: Mapping[str, tuple[np.ndarray, np.ndarray]],
    feature_names: Mapping[str, list[str]],
    *,
    type_names: Mapping[int, str] | None = None,
) -> dict[str, np.ndarray]:
    """Per object collection: n_<collection> (objects per event) [n] and, when it has a pt feature,
    leading_<collection>_pt [GeV] [n], the largest pT of its objects (generated objects need not come in pT order),
    NaN in events without one. Cards of one slot (event, met: scalars) are left out. A combined card (a `type`
    feature) is split by type id, named by `type_names` {type id: collection} (every named type gets its variables,
    even one never generated), else 'type<id>' for the ids present.
    """
    out: dict[str, np.ndarray] = {}
    for card in decoded:
        features, valid, names = _card(decoded, feature_names, card)
        if valid.shape[1] <= 1:
            continue
        if "type" in names:
            types = np.rint(_feature(features, names, "type", card)).astype(np.int64)
            ids = sorted(type_names) if type_names else sorted(set(types[valid].tolist()))
            members = {(type_names or {}).get(t, f"type{t}"): valid & (types == t) for t in ids}
        else:
            members = {card: valid}
        for collection, mask in members.items():
            out[f"n_{collection}"] = mask.sum(axis=1).astype(np.float64)
            if "pt" in names:
                pt = np.where(mask, _feature(features, names, "pt", card), -np.inf).max(axis=1)
                out[f"leading_{collection}_pt"] = np.where(np.isfinite(pt), pt * PER_MEV, np.nan)
    return out
