"""Object collections: the schema of what an H5 file holds, read from `params/objects.yaml`.

A collection is data (name, layout, path, features, ...). The reader, writer, scalers and
tokenizers take `Collection` objects; none of them knows a collection by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import DataParams
from .errors import ConfigError

LAYOUTS = ("compound", "per_feature")
KINDS = ("objects", "scalars")

#: Jet flavour classes, from HadronConeExclTruthLabelID, fixed once for every file and study.
FLAVOUR_LABELS: dict[int, int] = {5: 0, 4: 1, 0: 2, 15: 3}
FLAVOUR_NAMES: tuple[str, ...] = ("b", "c", "light", "tau")

#: Track truth origin (the FTAG `ftagTruthOriginLabel` enumeration).
TRUTH_ORIGINS: dict[str, int] = {
    "Pileup": 0,
    "Fake": 1,
    "Primary": 2,
    "FromB": 3,
    "FromBC": 4,
    "FromC": 5,
    "FromTau": 6,
    "OtherSecondary": 7,
}


@dataclass(frozen=True)
class Collection:
    """One object collection in one layout: where it lives and which features it carries."""

    name: str
    layout: str
    path: str
    features: tuple[str, ...]
    type_id: int
    kind: str = "objects"
    log_features: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    truth: tuple[str, ...] = ()
    max_objects: int = 1
    order_by: str | None = None
    valid: str = "valid"
    mask: str = "mask"
    scalers: tuple = ()  # ((feature, scaler kind), ...): defaults beyond log_features/categorical, e.g. asinh for d0
    units: tuple = ()  # ((feature, unit), ...) as stored (MeV, mm, rad)
    dimensionless: tuple[str, ...] = ()  # features declared without a unit (eta, hit counts, scores)
    display_name: str | None = None  # one object on an axis ('Jet' -> 'Jet $p_{T}$ [GeV]'); None: the name, '': none

    @property
    def is_scalar(self) -> bool:
        return self.kind == "scalars"

    def feature_path(self, feature: str) -> str:
        """Per-feature layout: the dataset path of one feature."""
        return f"{self.path}/{feature}"

    @property
    def mask_path(self) -> str:
        return f"{self.path}/{self.mask}"

    def index(self, feature: str) -> int:
        return self.features.index(feature)

    def unit(self, feature: str) -> str | None:
        """The stored unit of a feature or truth field ('MeV', 'mm', ...); None when it is dimensionless."""
        return dict(self.units).get(feature)

    def undeclared_units(self) -> list[str]:
        """Features with neither a unit nor a `dimensionless` declaration (labelled as if dimensionless)."""
        declared = {f for f, _ in self.units} | set(self.dimensionless)
        return [f for f in self.features if f not in declared]


_ALLOWED = {
    "layout",
    "path",
    "kind",
    "features",
    "log_features",
    "categorical",
    "truth",
    "type_id",
    "max_objects",
    "order_by",
    "valid",
    "mask",
    "scalers",
    "units",
    "dimensionless",
    "display_name",
}


def _as_names(origin: str, key: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{origin}: '{key}' must be a list of feature names")
    return tuple(value)


def parse_collection(name: str, spec: Mapping, origin: str) -> Collection:
    where = f"{origin}: collection '{name}'"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    unknown = set(spec) - _ALLOWED
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_ALLOWED)}")
    for key in ("layout", "path", "features", "type_id"):
        if key not in spec:
            raise ConfigError(f"{where}: missing '{key}'")
    layout, kind = spec["layout"], spec.get("kind", "objects")
    if layout not in LAYOUTS:
        raise ConfigError(f"{where}: layout must be one of {LAYOUTS}, got {layout!r}")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    features = _as_names(where, "features", spec["features"])
    if not features:
        raise ConfigError(f"{where}: 'features' is empty")
    if len(set(features)) != len(features):
        raise ConfigError(f"{where}: duplicate feature names in {list(features)}")
    log_features = _as_names(where, "log_features", spec.get("log_features"))
    categorical = _as_names(where, "categorical", spec.get("categorical"))
    for key, names in (("log_features", log_features), ("categorical", categorical)):
        missing = [n for n in names if n not in features]
        if missing:
            raise ConfigError(f"{where}: {key} {missing} are not among its features {list(features)}")
    type_id = spec["type_id"]
    if not isinstance(type_id, int) or isinstance(type_id, bool) or type_id < 1:
        raise ConfigError(f"{where}: type_id must be an integer >= 1 (0 is for special tokens), got {type_id!r}")
    max_objects = 1 if kind == "scalars" else spec.get("max_objects")
    if not isinstance(max_objects, int) or max_objects < 1:
        raise ConfigError(f"{where}: objects need max_objects, an integer >= 1; got {max_objects!r}")
    order_by = spec.get("order_by")
    if order_by is not None and order_by not in features:
        raise ConfigError(f"{where}: order_by {order_by!r} is not among its features {list(features)}")
    scalers = spec.get("scalers") or {}
    if not isinstance(scalers, Mapping):
        raise ConfigError(f"{where}: 'scalers' must be a mapping of feature -> scaler kind, e.g. {{d0: asinh}}")
    from .preprocessing import KINDS as SCALER_KINDS

    for feat, kind in scalers.items():
        if feat not in features:
            raise ConfigError(
                f"{where}: scalers names feature {feat!r}, which is not among its features {list(features)}"
            )
        if kind not in SCALER_KINDS:
            raise ConfigError(
                f"{where}: scaler kind {kind!r} for feature {feat!r} is unknown; known: {', '.join(SCALER_KINDS)}"
            )
    fields = features + _as_names(where, "truth", spec.get("truth"))
    units = _units(where, spec.get("units"), fields)
    dimensionless = _dimensionless(where, spec.get("dimensionless"), fields, dict(units))
    display_name = spec.get("display_name")
    if display_name is not None and not isinstance(display_name, str):
        raise ConfigError(
            f"{where}: display_name must be text, the name of one object on an axis (e.g. Jet), got {display_name!r}"
        )
    return Collection(
        name=name,
        layout=layout,
        path=str(spec["path"]).strip("/"),
        features=features,
        type_id=type_id,
        kind=kind,
        log_features=log_features,
        categorical=categorical,
        truth=_as_names(where, "truth", spec.get("truth")),
        max_objects=max_objects,
        order_by=order_by,
        valid=spec.get("valid", "valid"),
        mask=spec.get("mask", "mask"),
        scalers=tuple(scalers.items()),
        units=units,
        dimensionless=dimensionless,
        display_name=display_name,
    )


def _units(where: str, units, fields: tuple[str, ...]) -> tuple:
    """The optional `units: {feature: unit}` mapping, checked: known fields, non-empty unit names."""
    if units is None:
        return ()
    if not isinstance(units, Mapping):
        raise ConfigError(f"{where}: 'units' must be a mapping of feature -> unit, e.g. {{pt: MeV, d0: mm}}")
    for feat, unit in units.items():
        if feat not in fields:
            raise ConfigError(f"{where}: units names {feat!r}, which is not among its features or truth fields")
        if not isinstance(unit, str) or not unit.strip():
            raise ConfigError(f"{where}: the unit of {feat!r} must be a non-empty name such as MeV or mm, got {unit!r}")
    return tuple((str(f), str(u)) for f, u in units.items())


def _dimensionless(where: str, names, fields: tuple[str, ...], units: Mapping) -> tuple[str, ...]:
    """The optional `dimensionless: [feature, ...]` list, checked: known fields, none that also has a unit."""
    names = _as_names(where, "dimensionless", names)
    for feat in names:
        if feat not in fields:
            raise ConfigError(f"{where}: dimensionless names {feat!r}, which is not among its features or truth fields")
        if feat in units:
            raise ConfigError(f"{where}: {feat!r} is declared dimensionless and has the unit {units[feat]!r}; keep one")
    return names


def load_sets(path: str | Path) -> dict[str, dict[str, Collection]]:
    """All collection sets in an objects file: {set name: {collection name: Collection}}."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"objects file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of collection sets")
    sets: dict[str, dict[str, Collection]] = {}
    for set_name, members in data.items():
        if not isinstance(members, dict) or not members:
            raise ConfigError(f"{path}: set '{set_name}' must be a non-empty mapping of collections")
        parsed = {name: parse_collection(name, spec, f"{path} [{set_name}]") for name, spec in members.items()}
        ids = [c.type_id for c in parsed.values()]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{path}: set '{set_name}' has duplicate type_ids {ids}")
        sets[set_name] = parsed
    return sets


def load_collections(path: str | Path, set_name: str, names: list[str] | None = None) -> dict[str, Collection]:
    """The collections of one set (optionally a subset, in the given order)."""
    sets = load_sets(path)
    if set_name not in sets:
        raise ConfigError(f"{path}: no collection set '{set_name}'; available: {', '.join(sets)}")
    members = sets[set_name]
    if names is None:
        return dict(members)
    missing = [n for n in names if n not in members]
    if missing:
        raise ConfigError(f"{path} [{set_name}]: no collection(s) {missing}; available: {', '.join(members)}")
    return {n: members[n] for n in names}


def from_data(data: DataParams) -> dict[str, Collection]:
    """The collections the data section reads: `data.collections` (all when null) of `data.collection_set`."""
    return load_collections(data.objects_file, data.collection_set, data.collections)
