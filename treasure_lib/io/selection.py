"""What a row keeps and what it is labelled: simple cuts, class labels and per-row weights."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputFileError
from ..object_collections import FLAVOUR_LABELS, Collection
from .h5 import _listing

_CUT = re.compile(r"^\s*(\w+)\.(\w+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Cut:
    """`jets.pt > 20e3`: on a scalar collection it drops rows, on objects it drops objects."""

    collection: str
    feature: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str, collections: Mapping[str, Collection]) -> Cut:
        m = _CUT.match(text)
        if not m:
            raise ConfigError(
                f"cut {text!r}: expected '<collection>.<feature> <op> <number>' with op one of "
                f"{', '.join(_OPS)} (e.g. 'jets.pt > 20e3')"
            )
        coll, feat, op, raw = m.groups()
        if coll not in collections:
            raise ConfigError(f"cut {text!r}: no collection '{coll}'; available: {_listing(collections)}")
        c = collections[coll]
        if feat not in c.features and feat not in c.truth:
            raise ConfigError(
                f"cut {text!r}: collection '{coll}' has no feature '{feat}'; "
                f"available: {_listing(c.features + c.truth)}"
            )
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"cut {text!r}: {raw!r} is not a number") from None
        return cls(coll, feat, op, value)

    def apply(self, values: np.ndarray) -> np.ndarray:
        return _OPS[self.op](values, self.value)


def _label_fields(label: Mapping, weight: Mapping) -> dict[str, list[str]]:
    need: dict[str, list[str]] = {}
    for spec in (label, weight):
        if spec and "collection" in spec:
            need.setdefault(spec["collection"], []).append(spec["field"])
    return need


def _check_label_spec(label: Mapping, weight: Mapping, collections: Mapping[str, Collection]) -> None:
    for name, spec in (("data.label", label), ("data.weight", weight)):
        if not spec:
            continue
        if "collection" in spec:
            if "field" not in spec:
                raise ConfigError(f"{name}: needs 'field' beside 'collection'")
            coll = spec["collection"]
            if coll not in collections:
                raise ConfigError(f"{name}: no collection '{coll}'; available: {_listing(collections)}")
            if not collections[coll].is_scalar:
                raise ConfigError(f"{name}: collection '{coll}' has several objects per row; use a scalar collection")
            table = spec.get("table")
            if table not in (None, "flavour"):
                raise ConfigError(f"{name}: unknown table {table!r}; known: flavour")
        elif "metadata" in spec:
            if name == "data.label" and not isinstance(spec.get("classes"), Mapping):
                raise ConfigError(f"{name}: 'metadata' labels need 'classes', a mapping of value -> class index")
            names = spec.get("names")
            if names is not None and (not isinstance(names, list) or len(names) <= max(spec["classes"].values())):
                raise ConfigError(
                    f"{name}: 'names' must list a name for every class index 0..{max(spec['classes'].values())}, "
                    f"got {names!r}"
                )
        else:
            raise ConfigError(
                f"{name}: expected {{collection, field[, table]}} or {{metadata, classes}}; got {dict(spec)}"
            )


def map_flavour(raw: np.ndarray, where: str) -> np.ndarray:
    """HadronConeExclTruthLabelID -> class index through the fixed table (b 0, c 1, light 2, tau 3)."""
    lut = np.full(max(FLAVOUR_LABELS) + 1, -1, dtype=np.int64)
    for value, cls in FLAVOUR_LABELS.items():
        lut[value] = cls
    raw = np.asarray(raw).astype(np.int64)
    inside = (raw >= 0) & (raw < len(lut))
    out = np.full(raw.shape, -1, dtype=np.int64)
    out[inside] = lut[raw[inside]]
    if (out < 0).any():
        bad = sorted(set(np.unique(raw[out < 0]).tolist()))
        raise InputFileError(
            f"{where}: flavour label value(s) {bad} are not in the flavour table "
            f"{dict(FLAVOUR_LABELS)} (0 light, 4 c, 5 b, 15 tau)"
        )
    return out


def class_names(label: Mapping) -> list[str]:
    """Names of the label classes, by class index (flavour: b, c, light, tau)."""
    from ..object_collections import FLAVOUR_NAMES

    if not label:
        return []
    if label.get("table") == "flavour":
        return list(FLAVOUR_NAMES)
    if "metadata" in label:
        if label.get("names"):
            return [str(n) for n in label["names"]]
        return [str(i) for i in range(max(label["classes"].values()) + 1)]
    return []
