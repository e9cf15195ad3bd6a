"""Parameters: YAML files deep-merged with dotted overrides, validated against `schema`, typed by `sections`.

The YAML side stays plain data (dicts, lists, str, int, float, bool, None), so papermill can inject it and `dump`
writes it back; `load` returns the typed, frozen `Params` built from it (`sections.py`); `rules.py` checks what ties
keys together.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .schema import SCHEMA, Key

BASE_KEY = "base"  # a params file may name the file it extends, relative to itself


def read_yaml(path: str | Path) -> dict:
    """Read one YAML mapping with `yaml.safe_load` (no Python objects from YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def merge(base: Mapping, override: Mapping, schema: Mapping | None = None) -> dict:
    """Deep-merge `override` into a copy of `base`: schema sections merge, values replace.

    A parameter whose value is a mapping (a `dict` key such as `data.label`) is one value: a later
    file replaces it whole, so `{metadata: process, ...}` never mixes with an earlier `{collection: jets, ...}`.
    Without a schema every mapping merges.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        spec = None if schema is None else schema.get(key, schema.get("*"))
        section = schema is None or isinstance(spec, Mapping)
        if section and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value, spec if isinstance(spec, Mapping) else None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """`tokenizer.codebook_size=8192` -> (['tokenizer', 'codebook_size'], 8192); value is YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. tokenizer.codebook_size=8192")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"override {text!r}: empty key part in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def set_dotted(params: dict, parts: list[str], value: Any) -> None:
    node = params
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def get_dotted(params: Mapping, dotted: str, default: Any = None) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _load_file_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict]]:
    """A file and the files it extends through `base:`, most basic first."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    data = read_yaml(path)
    base = data.pop(BASE_KEY, None)
    chain: list[tuple[Path, dict]] = []
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: 'base' must be a path string, got {type(base).__name__}")
        chain = _load_file_chain((path.parent / base), seen + (path,))
    return chain + [(path, data)]


def load(files: Iterable[str | Path] = (), overrides: Iterable[str] = (), schema: Mapping = SCHEMA):
    """Resolve parameters: files in order (each may extend a `base:`), then dotted overrides.

    Each file is checked for unknown keys on its own, so the message names the file. With the project's schema the
    result is the typed, frozen `Params` (one section per top-level key); with another schema, plain validated data.
    """
    params: dict = {}
    for file in files:
        for path, data in _load_file_chain(Path(file)):
            check_keys(data, schema, origin=str(path))
            params = merge(params, data, schema)
    for text in overrides:
        parts, value = parse_override(text)
        partial: dict = {}
        set_dotted(partial, parts, value)
        check_keys(partial, schema, origin=f"override {text!r}")
        set_dotted(params, parts, value)
    return resolve(params) if schema is SCHEMA else validate(params, schema)


def resolve(params: Mapping) -> Params:
    """Validated, typed params from plain data (a resolved params.yaml, a merged set): `validate`, then `Params`."""
    if isinstance(params, Params):
        return params
    return Params.model_validate(validate(_plain(params)))


def _plain(params: Mapping) -> dict:
    return params.to_dict() if isinstance(params, Section) else dict(params)


def _known(schema: Mapping, prefix: str) -> list[str]:
    out = []
    for key, spec in schema.items():
        dotted = f"{prefix}{key}"
        out.append(dotted)
        if isinstance(spec, Mapping):
            out.extend(_known(spec, dotted + "."))
    return out


def check_keys(data: Mapping, schema: Mapping, origin: str, prefix: str = "") -> None:
    """Unknown keys are errors that suggest the closest known key."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key in schema:
            spec = schema[key]
        elif "*" in schema:  # a mapping of user-named blocks, e.g. generate.processes.<name>
            spec = schema["*"]
        else:
            siblings = [k for k in schema if k != "*"]
            close = difflib.get_close_matches(str(key), siblings, n=1, cutoff=0.6)
            if not close:
                full = _known(schema, prefix)
                close = [c[len(prefix) :] for c in difflib.get_close_matches(dotted, full, n=1, cutoff=0.6)]
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys here: {', '.join(siblings)}"
            raise ConfigError(f"{origin}: unknown key '{dotted}'{hint}")
        if isinstance(spec, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{origin}: key '{dotted}' must be a mapping of keys, got {_tname(value)}")
            check_keys(value, spec, origin, dotted + ".")


def _tname(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def validate(params: dict, schema: Mapping = SCHEMA, prefix: str = "") -> dict:
    """Check types (coercing '20e3'-style strings for float keys) and fill schema defaults; a whole params set is also
    checked against the rules that tie keys together (`rules`)."""
    out = _validate(params, schema, prefix)
    if schema is SCHEMA and not prefix:
        from . import rules

        rules.check(out)
    return out


def _validate(params: dict, schema: Mapping, prefix: str) -> dict:
    out: dict = {}
    for key, spec in schema.items():
        if key == "*":
            continue
        dotted = f"{prefix}{key}"
        if isinstance(spec, Mapping):
            out[key] = _validate(params.get(key) or {}, spec, dotted + ".")
        elif key in params:
            out[key] = spec.check(dotted, params[key])
        elif spec.required:
            raise ConfigError(f"missing required key '{dotted}' ({spec.doc})")
        else:  # defaults pass the same check, so a resolved set reads back identical (20 -> 20.0 for floats)
            out[key] = spec.check(dotted, copy.deepcopy(spec.default)) if spec.default is not None else None
    if "*" in schema:
        inner = schema["*"]
        for key, value in params.items():
            if key in schema:
                continue
            dotted = f"{prefix}{key}"
            out[key] = (
                _validate(value, inner, dotted + ".") if isinstance(inner, Mapping) else inner.check(dotted, value)
            )
    return out


def dump(params: Mapping, path: str | Path) -> None:
    """Write resolved parameters back as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    data = params.to_dict() if isinstance(params, Section) else dict(params)
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)


__all__ = [
    "Key",
    "Params",
    "load",
    "resolve",
    "merge",
    "parse_override",
    "validate",
    "check_keys",
    "dump",
    "get_dotted",
    "read_yaml",
]


# The typed sections (defined last: they validate through the functions above).
from .sections import (  # noqa: E402
    SECTIONS,
    AnomalyParams,
    ClassifyParams,
    DataParams,
    ExportParams,
    GenerateParams,
    ModelParams,
    Params,
    PretrainParams,
    Section,
    SelectionParams,
    SequenceParams,
    StudyParams,
    TokenizerParams,
    TrainParams,
    section_from,
)

__all__ += [
    "SECTIONS",
    "AnomalyParams",
    "ClassifyParams",
    "DataParams",
    "ExportParams",
    "GenerateParams",
    "ModelParams",
    "PretrainParams",
    "Section",
    "SelectionParams",
    "SequenceParams",
    "StudyParams",
    "TokenizerParams",
    "TrainParams",
    "section_from",
]
