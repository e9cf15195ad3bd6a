"""The declared parameter schema: every key a params YAML may hold, its type, default and meaning.

A nested mapping of `Key`s. A mapping under the name "*" stands for user-named blocks
(e.g. `generate.processes.<name>`). `config.validate` checks types and fills defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

_PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


@dataclass(frozen=True)
class Key:
    """One parameter: `type` is int|float|str|bool|list|dict|any; lists may name `item`."""

    type: str
    default: Any = None
    doc: str = ""
    choices: tuple = ()
    nullable: bool = False
    item: str | None = None
    required: bool = False
    minimum: float | None = None

    def check(self, dotted: str, value: Any) -> Any:
        if value is None:
            if self.nullable or self.type == "any":
                return None
            raise ConfigError(f"key '{dotted}' must be {self._expected()}, got null")
        value = _coerce(dotted, value, self.type, self._expected())
        if self.type == "list" and self.item:
            value = [_coerce(f"{dotted}[{i}]", v, self.item, self.item) for i, v in enumerate(value)]
        if self.choices and value not in self.choices:
            raise ConfigError(f"key '{dotted}' must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"key '{dotted}' must be >= {self.minimum}; got {value!r}")
        return value

    def _expected(self) -> str:
        text = f"a list of {self.item}" if self.type == "list" and self.item else self.type
        return text + (" or null" if self.nullable else "")


def _coerce(dotted: str, value: Any, type_name: str, expected: str) -> Any:
    if type_name == "any":
        return value
    if type_name == "float":
        if isinstance(value, str):  # YAML 1.1 reads 20e3 as a string; physicists write it anyway
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(value, _PY_TYPES[type_name]) and not (type_name != "bool" and isinstance(value, bool)):
        return value
    raise ConfigError(f"key '{dotted}' must be {expected}, got {type(value).__name__} {value!r}")


def K(type: str, default: Any = None, doc: str = "", **kw: Any) -> Key:  # noqa: A002
    return Key(type=type, default=default, doc=doc, **kw)


STUDY = {
    "name": K("str", "default", "run name; the run folder is runs/<kind>/<name>"),
    "kind": K("str", "jets", "which study: jet flavour (jets) or event classification (events)", choices=("jets", "events")),
    "seed": K("int", 42, "seed for every random number in the study"),
}

DATA = {
    "objects_file": K("str", "params/objects.yaml", "object collection definitions"),
    "collection_set": K("str", "jets", "which set in objects_file: jets (flavour tagging) or events"),
    "collections": K("list", None, "subset of the set's collections to read (null: all)", nullable=True, item="str"),
    "files": K("list", [], "input H5 files (globs allowed)", item="str"),
    "chunk_size": K("int", 10_000, "rows read per chunk while streaming", minimum=1),
    "cuts": K("list", [], "simple cuts such as 'jets.pt > 20e3' (scalars drop rows, objects drop objects)", item="str"),
    "nan_policy": K("str", "error", "NaN/inf in a valid entry: error, zero (replace by 0) or drop (drop the object, or the row for scalars)", choices=("error", "zero", "drop")),
    "label": K("dict", {}, "how to make class labels: {collection, field, table} or {metadata, classes}"),
    "weight": K("dict", {}, "per-row weight: {collection, field}; empty means weight 1"),
    "max_rows": K("int", None, "stop after this many rows per file (null: all)", nullable=True, minimum=1),
}

GENERATE = {
    "processes_file": K("str", "params/processes.yaml", "named blocks of Pythia settings"),
    "samples": K("dict", {}, "events to generate per process name, e.g. {ttbar: 3000}"),
    "output_dir": K("str", "runs/data", "where the H5 files go: events_<process>_<k>.h5 and jets_<process>_<k>.h5"),
    "layouts": K("list", ["events", "jets"], "which files to write: events (per-feature) and/or jets (compound)", item="str"),
    "events_per_file": K("int", 5000, "split a process into files of this many events (parallel jobs)", minimum=1),
    "batch_size": K("int", 200, "events per Pythia nextBatch call and per emulation step", minimum=1),
    "workers": K("int", None, "parallel processes (null: all cores)", nullable=True, minimum=1),
    "seed": K("int", None, "generation seed (null: study.seed)", nullable=True),
    "pythia_common": K("list", [], "Pythia settings shared by every process", item="str"),
    "detector": K("dict", {}, "overrides of DetectorConfig numbers (treasure_lib/generate/detector.py)"),
    "jet_selection": K("dict", {}, "overrides of JetSelection for the jet-level files (pt_min_mev, eta_max, jvt_min, ...)"),
}

SCHEMA: dict = {
    "study": STUDY,
    "data": DATA,
    "generate": GENERATE,
}
