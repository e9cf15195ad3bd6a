"""Typed params sections: each section of the declared schema (`schema.py`, the one reference for docs, defaults
and error messages) is also a frozen, typed pydantic model.

`params.classify.train.lr` is a float, a section cannot be assigned to, and a variant is made with `replace` (which
merges and validates again, the rules between keys included). A function takes the sections it needs
(`ClassifyParams`), never the whole `Params`. Sections also read as mappings (`section["lr"]`, `dict(section)`) for
code that hands a section's values to a library (yaml, json, dataclass constructors); `to_dict()` gives plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model

from .schema import SCHEMA, Key

_FIELD_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict[str, Any]}


class Section(BaseModel):
    """A frozen params section. Attributes are the schema's keys; `replace(**changes)` makes a validated variant."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, validate_default=False)
    _path: ClassVar[str] = ""  # the section's dotted place in the params ("classify.train")

    # Mapping reads: a section is also a read-only mapping of its keys.
    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self):
        return type(self).model_fields.keys()

    def values(self):
        return [getattr(self, k) for k in type(self).model_fields]

    def items(self):
        return [(k, getattr(self, k)) for k in type(self).model_fields]

    def __iter__(self):  # type: ignore[override]  (a mapping iterates over its keys)
        return iter(type(self).model_fields)

    def __len__(self) -> int:
        return len(type(self).model_fields)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def __eq__(self, other: object) -> bool:  # a section equals the plain data it holds
        if isinstance(other, Mapping):
            return self.to_dict() == _plain(dict(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  (sections hold lists and dicts)

    def stage_inputs(self, *drop: str) -> dict:
        """What a stage built from this section depends on: its "result" keys (see `Key.role`), minus `drop`,
        as plain data; sub-sections likewise."""
        spec = _spec_at(self._path)
        out = {}
        for key, value in self.items():
            if key in drop:
                continue
            if isinstance(value, Section):
                out[key] = value.stage_inputs(*drop)
            elif spec[key].role == "result":
                out[key] = _plain(value)
        return out

    def to_dict(self) -> dict:
        """Plain data (dicts, lists, scalars), as the YAML holds it."""
        return {k: _plain(v) for k, v in self.items()}

    def replace(self, **changes: Any) -> Section:
        """This section with `changes` (a mapping merges into a sub-section; anything else replaces the value),
        validated again against the schema."""
        from . import check_keys, merge

        spec = _spec_at(self._path)
        plain = {k: _plain(v) for k, v in changes.items()}
        check_keys(plain, spec, origin=f"{type(self).__name__}.replace", prefix=f"{self._path}." if self._path else "")
        merged = merge(self.to_dict(), plain, spec)
        return section_from(self._path, merged)


Mapping.register(Section)
yaml.SafeDumper.add_multi_representer(Section, lambda dumper, s: dumper.represent_dict(s.to_dict()))


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _spec_at(path: str) -> dict:
    spec: Any = SCHEMA
    for part in filter(None, path.split(".")):
        spec = spec[part]
    return spec


def _field_type(key: Key) -> Any:
    if key.type == "any":
        return Any
    if key.type == "list":
        inner = _FIELD_TYPES.get(key.item or "", Any)
        annotation: Any = list[inner]  # type: ignore[valid-type]
    else:
        annotation = _FIELD_TYPES[key.type]
    return annotation | None if (key.nullable or key.default is None) else annotation


def _class_name(path: str) -> str:
    return "".join(part.capitalize() for part in path.split(".")) + "Params"


def _model(path: str, spec: Mapping) -> type[Section]:
    fields: dict[str, Any] = {}
    for name, entry in spec.items():
        if name == "*":
            raise ValueError(f"{path}: user-named blocks ('*') need a dict key, not a section")
        if isinstance(entry, Mapping):
            fields[name] = (_model(f"{path}.{name}" if path else name, entry), ...)
        else:
            fields[name] = (_field_type(entry), Field(..., description=entry.doc))
    model = create_model(_class_name(path) if path else "Params", __base__=Section, **fields)
    model._path = path
    model.__doc__ = f"The `{path}` section of the params (treasure_lib/config/schema.py)." if path else None
    return model


def section_from(path: str, values: Mapping) -> Section:
    """The typed section at `path` ("classify", "classify.train") from plain values, validated (defaults filled)."""
    from . import validate

    spec = _spec_at(path)
    checked = validate(dict(values), spec, prefix=f"{path}." if path else "")
    return SECTIONS[path].model_validate(checked)


SECTIONS: dict[str, type[Section]] = {}


def _register(path: str, model: type[Section]) -> None:
    SECTIONS[path] = model
    if path:  # a module attribute of its own name, so sections pickle (worker processes receive them)
        model.__module__, model.__qualname__ = __name__, model.__name__
        globals()[model.__name__] = model
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, Section):
            _register(f"{path}.{name}" if path else name, sub)


class Params(_model("", SCHEMA)):  # type: ignore[misc]
    """The whole resolved params: one typed section per top-level key. Only `config` and the stage layer hold it;
    library functions take its sections."""

    def replace(self, **changes: Any) -> Params:  # type: ignore[override]
        """A variant: `params.replace(classify={"mode": "finetune"})` merges into the section and validates the
        whole set again (the rules between keys included)."""
        from . import check_keys, merge, resolve

        plain = {k: _plain(v) for k, v in changes.items()}
        check_keys(plain, SCHEMA, origin="Params.replace")
        return resolve(merge(self.to_dict(), plain, SCHEMA))


_register("", Params)
StudyParams = SECTIONS["study"]
DataParams = SECTIONS["data"]
GenerateParams = SECTIONS["generate"]
TokenizerParams = SECTIONS["tokenizer"]
ExportParams = SECTIONS["export"]
SequenceParams = SECTIONS["sequence"]
ModelParams = SECTIONS["model"]
PretrainParams = SECTIONS["pretrain"]
ClassifyParams = SECTIONS["classify"]
SelectionParams = SECTIONS["selection"]
AnomalyParams = SECTIONS["anomaly"]
TrainParams = Section  # the `train` block of tokenizer, pretrain and classify (three models of one shape)
