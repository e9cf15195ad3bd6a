"""Feature scalers: physical units <-> model inputs, fitted on valid entries by streaming.

Each feature has one transform:
- `identity`, `standard` (x - mean) / std,
- `quantile`: the empirical CDF mapped to a standard normal (clipped to the fitted range),
- `log_standard`, `log_quantile`: the same after y = log(x + shift),
- `asinh`: y = asinh((x - median) / MAD), then standardised: linear in the core, logarithmic in
  the tails, so impact parameters keep their resolution at 10 um and at 10 mm alike,
- `categorical`: the set of values seen (flags, charge, decay modes) -> category index.

Defaults come from the collection (`params/objects.yaml`: log_features, categorical, and an
optional `scalers` mapping such as `{d0: asinh}`), overridable per study (`tokenizer.scalers`).

Continuous features become float32 model inputs; categorical ones become int64 category
indices (the model embeds or one-hot encodes them). The state is plain JSON: no pickles.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr, ndtri

from .errors import ConfigError, InputFileError
from .object_collections import Collection

KINDS = ("identity", "standard", "quantile", "log_standard", "log_quantile", "asinh", "categorical")
N_QUANTILES = 1001
QUANTILE_CLIP = 1e-6  # keeps the normal scores finite (about +-4.75 sigma)
MAX_CATEGORIES = 64


def default_kinds(collection: Collection) -> dict[str, str]:
    """The collection's declared `scalers`, else log_standard for log_features, categorical for categorical ones,
    standard otherwise."""
    kinds = {
        f: "categorical"
        if f in collection.categorical
        else "log_standard"
        if f in collection.log_features
        else "standard"
        for f in collection.features
    }
    kinds.update(dict(collection.scalers))
    return kinds


@dataclass
class FeatureScaler:
    """The transform of one feature, with its fitted parameters."""

    name: str
    kind: str
    mean: float = 0.0
    std: float = 1.0
    shift: float = 0.0
    grid: list = field(default_factory=list)  # quantile: values at probabilities `probs`
    categories: list = field(default_factory=list)  # categorical: the values, sorted
    center: float = 0.0  # asinh: median
    width: float = 1.0  # asinh: median absolute deviation (the core width)

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def is_log(self) -> bool:
        return self.kind.startswith("log_")

    def fit(self, values: np.ndarray, categories: np.ndarray | None = None) -> FeatureScaler:
        """Fit on valid entries; `categories` (all values seen in the whole training stream) for categorical ones."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            raise ConfigError(f"scaler for feature '{self.name}': no valid entries to fit on")
        if self.is_categorical:
            cats = np.unique(values if categories is None else np.concatenate([values, categories]))
            if len(cats) > MAX_CATEGORIES:
                raise ConfigError(
                    f"feature '{self.name}' is declared categorical but has {len(cats)} distinct values "
                    f"(> {MAX_CATEGORIES}); declare it continuous"
                )
            self.categories = cats.tolist()
            return self
        if self.is_log:
            lo = float(values.min())
            self.shift = 1.0 if lo >= 0 else 1.0 - lo
            values = np.log(values + self.shift)
        if self.kind == "asinh":
            self.center = float(np.median(values))
            self.width = float(np.median(np.abs(values - self.center))) or float(np.abs(values).max()) or 1.0
            values = np.arcsinh((values - self.center) / self.width)
        if self.kind.endswith("quantile"):
            probs = np.linspace(0.0, 1.0, N_QUANTILES)
            self.grid = np.quantile(values, probs).tolist()
        elif self.kind.endswith("standard") or self.kind == "asinh":
            self.mean = float(values.mean())
            self.std = float(values.std()) or 1.0
        return self

    def unseen(self, x: np.ndarray) -> np.ndarray:
        """Values of a categorical feature that were never seen when fitting (sorted, unique)."""
        x = np.asarray(x, dtype=np.float64)
        return np.setdiff1d(np.unique(x), np.asarray(self.categories, dtype=np.float64))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Physical -> model input (float64; categorical -> category index)."""
        x = np.asarray(x, dtype=np.float64)
        if self.is_categorical:
            cats = np.asarray(self.categories)
            idx = np.searchsorted(cats, x).clip(0, len(cats) - 1)
            return np.where(cats[idx] == x, idx, 0)  # callers check `unseen` first (CollectionScaler.transform)
        if self.is_log:
            x = np.log(np.maximum(x + self.shift, 1e-30))
        if self.kind == "asinh":
            return (np.arcsinh((x - self.center) / self.width) - self.mean) / self.std
        if self.kind.endswith("quantile"):
            grid = np.asarray(self.grid)
            u = np.interp(x, grid, np.linspace(0.0, 1.0, len(grid)))
            return ndtri(np.clip(u, QUANTILE_CLIP, 1 - QUANTILE_CLIP))
        if self.kind.endswith("standard"):
            return (x - self.mean) / self.std
        return x

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Model input -> physical."""
        y = np.asarray(y, dtype=np.float64)
        if self.is_categorical:
            cats = np.asarray(self.categories)
            return cats[np.clip(np.rint(y).astype(np.int64), 0, len(cats) - 1)]
        if self.kind == "asinh":
            return np.sinh(y * self.std + self.mean) * self.width + self.center
        if self.kind.endswith("quantile"):
            grid = np.asarray(self.grid)
            y = np.interp(ndtr(y), np.linspace(0.0, 1.0, len(grid)), grid)
        elif self.kind.endswith("standard"):
            y = y * self.std + self.mean
        if self.is_log:
            y = np.exp(y) - self.shift
        return y

    def state(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "mean": self.mean,
            "std": self.std,
            "shift": self.shift,
            "grid": list(self.grid),
            "categories": list(self.categories),
            "center": self.center,
            "width": self.width,
        }


class CollectionScaler:
    """Scalers for every feature of one collection; splits continuous and categorical features."""

    def __init__(self, features: Iterable[str], kinds: Mapping[str, str]):
        self.features = tuple(features)
        bad = {f: k for f, k in kinds.items() if k not in KINDS}
        if bad:
            raise ConfigError(f"unknown scaler kind(s) {bad}; known: {', '.join(KINDS)}")
        unknown = [f for f in kinds if f not in self.features]
        if unknown:
            raise ConfigError(f"scaler kinds given for feature(s) {unknown} that are not among {list(self.features)}")
        self.scalers = [FeatureScaler(f, kinds.get(f, "standard")) for f in self.features]

    @classmethod
    def for_collection(cls, collection: Collection, overrides: Mapping[str, str] | None = None) -> CollectionScaler:
        kinds = default_kinds(collection)
        kinds.update(overrides or {})
        return cls(collection.features, kinds)

    @property
    def continuous(self) -> list[int]:
        return [i for i, s in enumerate(self.scalers) if not s.is_categorical]

    @property
    def categorical(self) -> list[int]:
        return [i for i, s in enumerate(self.scalers) if s.is_categorical]

    @property
    def n_categories(self) -> list[int]:
        return [len(self.scalers[i].categories) for i in self.categorical]

    def fit(
        self, features: np.ndarray, mask: np.ndarray, categories: Mapping[str, np.ndarray] | None = None
    ) -> CollectionScaler:
        """Fit on valid entries of a (bounded) sample: features [n, m, F], mask [n, m].

        `categories` maps categorical feature names to every value seen in the whole training stream,
        so a rare category outside the sample is still known.
        """
        valid = features[mask]
        for i, s in enumerate(self.scalers):
            s.fit(valid[:, i], (categories or {}).get(s.name))
        return self

    def transform(self, features: np.ndarray, mask: np.ndarray, where: str = "") -> tuple[np.ndarray, np.ndarray]:
        """[n, m, F] physical -> continuous float32 [n, m, Fc], categorical int64 [n, m, Fk]; zeros where masked.

        A categorical value never seen in training is an error naming the feature and the value.
        """
        for i in self.categorical:
            bad = self.scalers[i].unseen(features[..., i][mask])
            if len(bad):
                raise InputFileError(
                    f"{where + ': ' if where else ''}feature '{self.features[i]}' has value(s) "
                    f"{bad[:10].tolist()} never seen when the scaler was fitted (known categories: "
                    f"{self.scalers[i].categories}); refit the tokenizer on data that has them"
                )
        valid = features[mask]  # only valid entries are transformed (most slots of a set are padding)
        cont = np.zeros(mask.shape + (len(self.continuous),), dtype=np.float32)
        cat = np.zeros(mask.shape + (len(self.categorical),), dtype=np.int64)
        if self.continuous:
            cont[mask] = np.stack([self.scalers[i].forward(valid[:, i]) for i in self.continuous], axis=-1)
        if self.categorical:
            cat[mask] = np.stack([self.scalers[i].forward(valid[:, i]) for i in self.categorical], axis=-1)
        return cont, cat

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """Back to physical units, [n, m, F] float32."""
        shape = (cont if cont.shape[-1] else cat).shape[:-1]
        out = np.zeros(shape + (len(self.features),), dtype=np.float64)
        for j, i in enumerate(self.continuous):
            out[..., i] = self.scalers[i].inverse(cont[..., j])
        for j, i in enumerate(self.categorical):
            out[..., i] = self.scalers[i].inverse(cat[..., j])
        return out.astype(np.float32)

    def state(self) -> dict:
        return {"features": list(self.features), "scalers": [s.state() for s in self.scalers]}

    @classmethod
    def from_state(cls, state: Mapping) -> CollectionScaler:
        obj = cls(state["features"], {s["name"]: s["kind"] for s in state["scalers"]})
        for s, st in zip(obj.scalers, state["scalers"]):
            s.mean, s.std, s.shift = st["mean"], st["std"], st["shift"]
            s.grid, s.categories = list(st["grid"]), list(st["categories"])
            s.center, s.width = st.get("center", 0.0), st.get("width", 1.0)
        return obj

    def to_json(self) -> str:
        return json.dumps(self.state())


class Sample(NamedTuple):
    """A bounded sample of rows of one collection, and every categorical value seen in the whole stream."""

    features: np.ndarray  # float32 [n, m, F]
    mask: np.ndarray  # bool [n, m]
    categories: dict[str, np.ndarray]  # categorical feature -> sorted unique values over all rows read


def reservoir_sample(
    batches: Iterable, collection: str, max_objects: int, seed: int, categorical: Sequence[str] = ()
) -> Sample:
    """A bounded uniform sample of the rows of one collection that hold at least one valid object.

    Keeps at most enough rows to hold ~`max_objects` valid objects, so fitting never needs the
    whole stream in memory (algorithm R over rows, seeded). Values of the `categorical` features
    are collected over every row read, not only the sampled ones.
    """
    rng = np.random.default_rng(seed)
    kept_f: np.ndarray | None = None
    kept_m: np.ndarray | None = None
    seen = 0
    capacity = None
    cats: dict[str, set] = {name: set() for name in categorical}
    for batch in batches:
        oa = batch[collection]
        for name in categorical:
            cats[name].update(np.unique(oa.feature(name)[oa.mask]).tolist())
        rows = np.flatnonzero(oa.mask.any(axis=1))
        feats, mask = oa.features[rows], oa.mask[rows]
        if capacity is None and len(rows):
            per_row = max(mask.sum() / len(rows), 1e-3)
            capacity = max(1, int(max_objects / per_row))
            kept_f = np.zeros((0,) + feats.shape[1:], np.float32)
            kept_m = np.zeros((0,) + mask.shape[1:], bool)
        if not len(rows):
            continue
        n = len(rows)
        room = capacity - len(kept_f)
        start = 0
        if room > 0:
            start = min(room, n)
            kept_f = np.concatenate([kept_f, feats[:start]])
            kept_m = np.concatenate([kept_m, mask[:start]])
        # algorithm R for the rest: row i (global index seen + j) replaces a random slot with prob capacity/(i+1)
        j = np.arange(start, n)
        if len(j):
            slots = rng.integers(0, seen + j + 1)
            hit = slots < capacity
            kept_f[slots[hit]] = feats[j[hit]]
            kept_m[slots[hit]] = mask[j[hit]]
        seen += n
    if kept_f is None:
        raise ConfigError(f"no rows with a valid object to fit the scaler of collection '{collection}'")
    return Sample(kept_f, kept_m, {k: np.array(sorted(v), dtype=np.float64) for k, v in cats.items()})
