"""Classification tasks: which rows a task uses, their class labels, weights and selection.

A task is data in params (`classify.tasks.<name>`):
- `column: label` takes the class from the token file's `label` column (jets: b / c / light / tau
  from the fixed flavour table), `names` lists the class names;
- `classes: {background: [qqZZ_4l], signal: [ggH_ZZ4l]}` maps samples (the `process` column)
  to classes in the order given (binary: the second class is the signal); a sample that is in
  no class is an error unless `others: drop`;
- `weights: cross_section` normalises MC weights per sample to
  weight x sigma x filter efficiency x k-factor / sum of generated weights (`none`: weight 1),
  `balance: true` then gives every class the same total weight in the loss;
- `select: [{types: [electrons, muons], min: 4}]` keeps sequences with at least (or at most)
  so many objects of those collections;
- `require: [pass_h4l_sr]` keeps rows whose boolean columns are all true: a physics selection
  computed once by the exporter (`export.derived`, e.g. the H -> 4l signal region), never a model input;
- `samples: [ttbar]` keeps rows of those samples only (e.g. flavour trained on ttbar jets);
- `collections: [event, electrons, muons, met]` makes a model read only those objects of each sequence: in a compact
  layout the sequence is rebuilt from them (as if exported without the others: shorter batches, and no position
  tells how many hidden objects came before it); a fixed-slot layout, whose positions are the slots, loses the
  others' slots. A question about four leptons need not be learnt through fifty tracks;
- `sample_fractions: {qqZZ_4l: 0.1}` keeps a fixed pseudo-random fraction of a sample's rows (by identity, in
  every split) and scales their weights by its inverse, so cross-section totals stay right: a task over many
  samples need not train on every event of a sample that was generated large for another task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..config import ClassifyParams
from ..errors import ConfigError, InputFileError
from ..vocabulary import Vocabulary

if TYPE_CHECKING:
    from ..sequences import TokenizerSet

WEIGHTINGS = ("cross_section", "none")


@dataclass(frozen=True)
class Task:
    name: str
    class_names: tuple[str, ...]
    column: str | None = None  # take labels from this column
    classes: dict = field(default_factory=dict)  # sample -> class index (from `classes`)
    others: str = "error"  # samples in no class: error | drop
    weights: str = "none"
    balance: bool = False
    select: tuple = ()
    samples: tuple = ()  # keep rows of these samples only (empty: all)
    require: tuple = ()  # boolean token-file columns that must be true
    sample_fractions: dict = field(default_factory=dict)  # sample -> fraction of its rows kept (weights scaled up)
    collections: tuple = ()  # objects a model reads (empty: every collection of the sequence)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def binary(self) -> bool:
        return self.n_classes == 2

    @classmethod
    def from_params(cls, classify: ClassifyParams, name: str | None = None) -> Task:
        """The task `classify.tasks.<name>` (default: `classify.task`)."""
        name = name or classify.task
        tasks = classify.tasks
        if name not in tasks:
            raise ConfigError(
                f"classify.task {name!r} is not defined; classify.tasks has: {', '.join(tasks) or '(none)'}"
            )
        spec = dict(tasks[name])
        where = f"classify.tasks.{name}"
        unknown = set(spec) - {
            "column",
            "names",
            "classes",
            "others",
            "weights",
            "balance",
            "select",
            "samples",
            "require",
            "sample_fractions",
            "collections",
        }
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        weights = spec.get("weights", "none")
        if weights not in WEIGHTINGS:
            raise ConfigError(f"{where}.weights must be one of {WEIGHTINGS}, got {weights!r}")
        others = spec.get("others", "error")
        if others not in ("error", "drop"):
            raise ConfigError(f"{where}.others must be error or drop, got {others!r}")
        common = dict(  # what a task on a column and a task on samples share
            others=others,
            weights=weights,
            balance=bool(spec.get("balance", False)),
            select=tuple(_check_selection(where, s) for s in spec.get("select", [])),
            samples=tuple(str(x) for x in spec.get("samples", [])),
            require=_check_require(where, spec.get("require", [])),
            sample_fractions=_check_fractions(where, spec.get("sample_fractions", {})),
            collections=tuple(str(x) for x in spec.get("collections", [])),
        )
        if "column" in spec:
            names = spec.get("names")
            if not names:
                raise ConfigError(f"{where}: a task on column {spec['column']!r} needs `names`, one per class index")
            return cls(name, tuple(names), column=spec["column"], **common)
        classes = spec.get("classes")
        if not isinstance(classes, Mapping) or len(classes) < 2:
            raise ConfigError(f"{where}: needs `column` or `classes`, a mapping of >= 2 class names to sample lists")
        sample_class = {}
        for index, members in enumerate(classes.values()):
            for sample in members if isinstance(members, list) else [members]:
                if sample in sample_class:
                    raise ConfigError(f"{where}: sample {sample!r} is in two classes")
                sample_class[str(sample)] = index
        return cls(name, tuple(classes), classes=sample_class, **common)


POSITIONAL = ("tokens", "features", "type_ids", "mask")  # a row's per-position arrays: what a model reads


def _check_collections(task: Task, vocabulary: Vocabulary, where: str) -> None:
    unknown = [c for c in task.collections if c not in vocabulary.type_ids]
    if unknown:
        raise InputFileError(
            f"{where}: task '{task.name}' reads collection(s) {unknown}, which the sequences do not hold "
            f"({', '.join(k for k in vocabulary.type_ids if k != 'special')})"
        )


def visible(task: Task, type_ids: np.ndarray, vocabulary: Vocabulary, where: str) -> np.ndarray | None:
    """Positions a task's model reads when it names `collections` (specials and those collections' objects), else
    None (every position)."""
    if not task.collections:
        return None
    _check_collections(task, vocabulary, where)
    ids = [0] + [vocabulary.type_ids[c] for c in task.collections]
    return np.isin(type_ids, ids)


def restrict(task: Task | None, rows: dict, tokenizers: TokenizerSet, where: str) -> dict:
    """`rows` (model inputs of a batch or a split) as a model of `task` reads them: with `collections`, only the
    specials and those collections' objects, as if the token files held nothing else; without, unchanged.
    `tokenizers`: the files' set (vocabulary and layout). A compact layout is rebuilt row by row (`compacted`); a
    fixed-slot layout, whose positions are the slots (there may be no type ids), loses the other collections' slots,
    the same positions in every row. Rows read for another purpose (no task, every sample) are restricted here before
    a task's model scores them."""
    if task is None or not task.collections or "mask" not in rows or "type_ids" not in rows:
        return rows
    if tokenizers.layout.slots == "compact":
        return compacted(rows, rows["mask"] & visible(task, rows["type_ids"], tokenizers.vocabulary, where))
    _check_collections(task, tokenizers.vocabulary, where)
    owner = tokenizers.position_collections(grouped=rows["mask"].shape[1] == tokenizers.object_length)
    if len(owner) != rows["mask"].shape[1]:
        raise InputFileError(f"{where}: rows of {rows['mask'].shape[1]} positions, the layout has {len(owner)}")
    kept = np.flatnonzero((owner == "") | np.isin(owner, list(task.collections)))
    return {k: (v[:, kept] if k in POSITIONAL else v) for k, v in rows.items()}


def compacted(rows: dict, keep: np.ndarray) -> dict:
    """`rows` with each row's kept positions moved to its front in their order (the row's width stays, so splits
    and batches still stack; `trim` cuts the common padding): the sequence a compact export of only those objects
    would hold (one [SEP] per left-out collection aside, the same in every row). Masking in place instead let an
    object's position (e.g. MET's, after every track) count the objects hidden before it."""
    order = np.argsort(~keep, axis=1, kind="stable")
    out = {**rows, "mask": np.take_along_axis(keep, order, axis=1)}
    for key in ("tokens", "features", "type_ids"):
        if key in rows:
            a = rows[key]
            out[key] = np.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)), axis=1)
    return out


def _check_fractions(where: str, spec) -> dict:
    if not isinstance(spec, Mapping) or not all(isinstance(v, (int, float)) and 0 < v <= 1 for v in spec.values()):
        raise ConfigError(
            f"{where}.sample_fractions: expected {{sample: fraction in (0, 1]}}, e.g. {{qqZZ_4l: 0.1}}; got {spec!r}"
        )
    return {str(k): float(v) for k, v in spec.items()}


def subsample(task: Task, columns: Mapping[str, np.ndarray], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows kept, weight factor per row) of `sample_fractions`: a fixed fraction of a sample's rows by identity
    (the same rows in every stage and split), their weights scaled by 1 / fraction."""
    n = len(next(iter(columns.values())))
    keep, factor = np.ones(n, dtype=bool), np.ones(n)
    if not task.sample_fractions:
        return keep, factor
    if "process" not in columns:
        raise InputFileError(
            f"{where}: task '{task.name}' keeps sample fractions but the token file has no 'process' column"
        )
    from .. import splits

    process = np.asarray(columns["process"]).astype(str)
    for sample, fraction in task.sample_fractions.items():
        rows = process == sample
        if rows.any():
            keep[rows] = splits.uniform(f"subsample:{sample}", np.asarray(columns["event_number"])[rows]) < fraction
            factor[rows] = 1.0 / fraction
    return keep, factor


def _check_require(where: str, spec) -> tuple[str, ...]:
    if not isinstance(spec, (list, tuple)) or not all(isinstance(c, str) and c for c in spec):
        raise ConfigError(f"{where}.require: expected a list of boolean column names, e.g. [pass_h4l_sr]; got {spec!r}")
    return tuple(spec)


def _check_selection(where: str, spec) -> dict:
    if not isinstance(spec, Mapping) or "types" not in spec or not ({"min", "max"} & set(spec)):
        raise ConfigError(
            f"{where}.select: each entry needs `types` (collections) and `min` and/or `max`; got {spec!r}"
        )
    return {"types": list(spec["types"]), "min": spec.get("min"), "max": spec.get("max")}


def labels(task: Task, columns: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """Class index per row (-1: the row is not part of the task and is dropped)."""
    out = _labels(task, columns, where)
    if task.samples:
        if "process" not in columns:
            raise InputFileError(
                f"{where}: task '{task.name}' keeps samples {list(task.samples)} but the token file has "
                f"no 'process' column"
            )
        out = np.where(np.isin(np.asarray(columns["process"]).astype(str), task.samples), out, -1)
    return out


def _labels(task: Task, columns: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    if task.column is not None:
        if task.column not in columns:
            raise InputFileError(
                f"{where}: task '{task.name}' needs column '{task.column}', which the token file lacks"
            )
        out = np.asarray(columns[task.column], dtype=np.int64)
        bad = (out >= task.n_classes) | (out < -1)
        if bad.any():
            raise InputFileError(
                f"{where}: column '{task.column}' has value(s) {sorted(set(out[bad].tolist()))[:5]} outside "
                f"the task's classes 0..{task.n_classes - 1} ({', '.join(task.class_names)})"
            )
        return out
    if "process" not in columns:
        raise InputFileError(
            f"{where}: task '{task.name}' maps samples to classes but the token file has no 'process' column"
        )
    process = np.asarray(columns["process"]).astype(str)
    out = np.full(len(process), -1, dtype=np.int64)
    for sample in np.unique(process).tolist():
        if sample in task.classes:
            out[process == sample] = task.classes[sample]
        elif task.others == "error":
            raise InputFileError(
                f"{where}: sample {sample!r} is in no class of task '{task.name}' "
                f"({ {n: [s for s, i in task.classes.items() if i == k] for k, n in enumerate(task.class_names)} }); "
                f"add it to a class or set classify.tasks.{task.name}.others: drop"
            )
    return out


def required(task: Task, columns: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """Rows whose `require` columns are all true (every row when the task requires none)."""
    n = len(next(iter(columns.values()))) if columns else 0
    keep = np.ones(n, dtype=bool)
    for name in task.require:
        if name not in columns:
            raise InputFileError(
                f"{where}: task '{task.name}' requires column '{name}' (classify.tasks.{task.name}."
                f"require), which the token file lacks; the exporter writes the H -> 4l selection's "
                f"columns (pass_h4l_preselection, pass_h4l_sr, ...) with export.derived: [h4l]"
            )
        value = np.asarray(columns[name])
        if value.dtype != bool:
            raise InputFileError(
                f"{where}: task '{task.name}' requires column '{name}' to be boolean; it holds {value.dtype}"
            )
        keep &= value
    return keep


def sample_weights(task: Task, columns: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """Per-row physics weights (before class balancing)."""
    w = np.asarray(columns["weight"], dtype=np.float64)
    if task.weights == "none":
        return np.ones_like(w)
    need = ["cross_section_pb", "sum_of_weights"]
    missing = [k for k in need if k not in columns]
    if missing:
        raise InputFileError(
            f"{where}: cross-section weights need column(s) {missing}; the token file lacks them "
            f"(set classify.tasks.{task.name}.weights: none for unweighted samples)"
        )
    sow = np.asarray(columns["sum_of_weights"], dtype=np.float64)
    if not (np.isfinite(sow) & (sow > 0)).all():
        raise InputFileError(f"{where}: sum_of_weights must be a positive number for cross-section weights")
    eff = np.asarray(columns.get("filter_efficiency", np.ones_like(w)), dtype=np.float64)
    k = np.asarray(columns.get("k_factor", np.ones_like(w)), dtype=np.float64)
    return w * np.asarray(columns["cross_section_pb"], dtype=np.float64) * eff * k / sow


def balance_factors(labels_: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class factors that give every class the same total weight (mean weight 1 overall)."""
    totals = np.bincount(labels_[labels_ >= 0], weights=weights[labels_ >= 0], minlength=n_classes)
    if (totals <= 0).any():
        empty = [i for i, t in enumerate(totals) if t <= 0]
        raise InputFileError(f"no training weight in class(es) {empty}: the training split holds none of their rows")
    n = (labels_ >= 0).sum()
    return (n / n_classes) / totals


def selected(
    task: Task,
    type_ids: np.ndarray,
    mask: np.ndarray,
    vocabulary: Vocabulary,
    where: str,
    positions_per_object: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Rows passing the task's selection on object multiplicities (all rows when there is none).

    `positions_per_object` (flat layout: the levels of each type) turns counted positions into objects.
    """
    keep = np.ones(len(type_ids), dtype=bool)
    per = positions_per_object or {}
    for s in task.select:
        try:
            ids = [vocabulary.type_ids[t] for t in s["types"]]
        except KeyError as exc:
            raise InputFileError(
                f"{where}: selection names collection {exc.args[0]!r}, which the sequences do not hold "
                f"({', '.join(k for k in vocabulary.type_ids if k != 'special')})"
            ) from None
        count = sum(((type_ids == t) & mask).sum(1) // per.get(t, 1) for t in ids)
        if s["min"] is not None:
            keep &= count >= s["min"]
        if s["max"] is not None:
            keep &= count <= s["max"]
    return keep
