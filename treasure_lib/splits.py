"""The one train / val / test assignment every stage uses, decided by a hash of each row's identity.

A row (jet or event) is identified by (sample, event number): the sample is the file's `dsid`
metadata (else `process`, else the file stem) and the event number its `eventNumber` field where
the data has one, so every jet of an event, and the same event in the jets and events files, lands
in the same split. Without an event number the identity is (file stem, row index). The hash does
not depend on chunk size, file order or which stage asks, so tokenizer fit, export, pretraining and
classification can never disagree (DESIGN.md, "Splits").

`check_disjoint_splits` verifies it after the fact: the row identities every stage actually read (tokenizer fit,
pretraining, each classifier) are compared, and one row seen in two splits stops chapter 04.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DataParams
from .errors import ConfigError, LeakageError

NAMES = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
EVENT_NUMBER_FIELDS = ("eventNumber",)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class SplitSpec:
    """Fractions of train / val / test (summing to 1) and a salt that reshuffles the assignment."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    salt: int = 0

    def __post_init__(self):
        fractions = (self.train, self.val, self.test)
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise ConfigError(
                f"data.split fractions must be >= 0 and sum to 1; got train={self.train}, "
                f"val={self.val}, test={self.test}"
            )

    @classmethod
    def from_data(cls, data: DataParams) -> SplitSpec:
        s = data.split
        return cls(s.train, s.val, s.test, s.salt)

    def to_dict(self) -> dict:
        return {
            "train": self.train,
            "val": self.val,
            "test": self.test,
            "salt": self.salt,
            "identity": "(sample, eventNumber) or (file stem, row index)",
            "names": list(NAMES),
        }


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of 64-bit integers (vectorised)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def sample_key(source_file: str | Path, metadata: Mapping | None, has_event_number: bool) -> str:
    """The sample part of a row's identity: dsid, else process, else the file stem."""
    meta = metadata or {}
    if has_event_number:
        if meta.get("dsid"):
            return f"dsid:{int(meta['dsid'])}"
        if meta.get("process"):
            return f"process:{meta['process']}"
    return f"file:{Path(str(source_file)).stem}"


def uniform(sample: str, numbers: np.ndarray, salt: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) per row, a pure function of (sample, number, salt)."""
    key = np.uint64(zlib.crc32(sample.encode()) ^ (int(salt) * 0x9E3779B1 & 0xFFFFFFFF))
    with np.errstate(over="ignore"):
        h = _mix64(np.asarray(numbers).astype(np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def fingerprint(sample: str, numbers: np.ndarray) -> np.ndarray:
    """A 64-bit fingerprint of each row identity (sample key, number): what the split checks compare across
    stages, without carrying strings. Collisions are negligible at any sample size this project reads."""
    key = np.uint64(zlib.crc32(sample.encode()))
    with np.errstate(over="ignore"):
        return _mix64(
            np.asarray(numbers).astype(np.int64).astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
            ^ (key << np.uint64(32))
            ^ key
        )


def fingerprints_of_columns(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Fingerprints of token-file rows from their bookkeeping columns (dsid or process or source file, and
    event_number), the same as `fingerprint(*identity(batch))` of the H5 rows they were exported from."""
    numbers = np.asarray(columns["event_number"])
    out = np.zeros(len(numbers), dtype=np.uint64)
    if "dsid" in columns:
        keys = np.array([f"dsid:{int(d)}" for d in np.asarray(columns["dsid"])], dtype=object)
    elif "process" in columns:
        keys = np.array([f"process:{p}" for p in np.asarray(columns["process"]).astype(str)], dtype=object)
    else:
        keys = np.array([f"file:{Path(str(f)).stem}" for f in np.asarray(columns["source_file"])], dtype=object)
    for key in np.unique(keys):
        rows = keys == key
        out[rows] = fingerprint(str(key), numbers[rows])
    return out


def fingerprints_of_batch(batch) -> np.ndarray:
    """Fingerprints of H5 rows, by the same columns the token export writes for them."""
    meta = batch.metadata or {}
    columns = {"event_number": batch.event_number, "source_file": np.full(len(batch), str(batch.source_file))}
    if meta.get("dsid") is not None:
        columns["dsid"] = np.full(len(batch), int(meta["dsid"]))
    elif meta.get("process"):
        columns["process"] = np.full(len(batch), str(meta["process"]))
    return fingerprints_of_columns(columns)


def assign(sample: str, numbers: np.ndarray, spec: SplitSpec) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) for rows of one sample with event numbers (or row indices)."""
    u = uniform(sample, numbers, spec.salt)
    return np.where(u < spec.train, TRAIN, np.where(u < spec.train + spec.val, VAL, TEST)).astype(np.int8)


def event_numbers(batch) -> np.ndarray | None:
    """The `eventNumber` of each row from any scalar collection of a Batch, or None if absent."""
    for oa in batch.collections.values():
        for name in EVENT_NUMBER_FIELDS:
            if name in oa.truth and oa.truth[name].shape[1] == 1:
                return oa.truth[name][:, 0].astype(np.int64)
    return None


def identity(batch) -> tuple[str, np.ndarray]:
    """(sample key, per-row number) of a Batch: the row identity the split is decided from."""
    numbers = event_numbers(batch)
    key = sample_key(batch.source_file, batch.metadata, numbers is not None)
    return key, (numbers if numbers is not None else batch.event_index)


def of_batch(batch, spec: SplitSpec) -> np.ndarray:
    """Split codes of every row of a Batch."""
    key, numbers = identity(batch)
    return assign(key, numbers, spec)


def names(codes: np.ndarray) -> np.ndarray:
    """Split codes -> 'train' / 'val' / 'test' strings."""
    return np.asarray(NAMES, dtype=object)[np.asarray(codes, dtype=np.int64)]


def codes_from_names(values) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(NAMES)}
    try:
        return np.array([lookup[v] for v in values], dtype=np.int8)
    except KeyError as exc:
        raise ConfigError(f"unknown split name {exc.args[0]!r}; expected one of {NAMES}") from None


def parse(name: str) -> int:
    if name not in NAMES:
        raise ConfigError(f"unknown split {name!r}; expected one of {', '.join(NAMES)}")
    return NAMES.index(name)


# ----------------------------------------------------------------------------- the split check


def codes_of(split) -> np.ndarray:
    """Split codes 0/1/2 from ints or the names train/val/test (str, bytes or objects); a LeakageError otherwise."""
    arr = np.asarray(split)
    if arr.dtype.kind in "USO":
        text = np.char.decode(arr.astype(bytes)) if arr.dtype.kind == "S" else arr.astype(str)
        codes = np.full(text.shape, -1, dtype=np.int64)
        for code, name in enumerate(NAMES):
            codes[text == name] = code
    else:
        codes = arr.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() > 2):
        raise LeakageError(f"split values must be 0/1/2 or {'/'.join(NAMES)}, got {np.unique(arr)[:5]}")
    return codes


def _identity_keys(ids) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim not in (1, 2):
        raise LeakageError(f"identities must be [n] or [n, k] (e.g. sample and event number), got {arr.shape}")
    return arr


def check_disjoint_splits(
    ids_by_stage: Mapping[str, tuple], expected: Mapping[str, Iterable] | None = None, raise_error: bool = True
) -> dict:
    """No row identity in two splits, across all stages (tokenizer fit, pretraining, training, test).

    `ids_by_stage` {stage: (identity [n] or [n, k], split [n])}; identities of all stages are
    compared, so one event seen as train by the tokenizer and as test by the classifier is caught.
    `expected` {stage: allowed splits} (e.g. {"tokenizer_fit": ["train"]}) also checks each stage
    reads only its splits. Returns ok, n_identities, n_overlapping, examples (up to 5: identity
    and the stage:split places it was seen), stages {stage: {n_rows, train, val, test}} and
    unexpected {stage: {split: rows}}; raises LeakageError when not ok and `raise_error`.
    """
    stage_names = list(ids_by_stage)
    parts, splits, where = [], [], []
    for i, stage in enumerate(stage_names):
        ids, split = ids_by_stage[stage]
        arr = _identity_keys(ids)
        codes = codes_of(split).reshape(-1)
        if len(arr) != codes.size:
            raise LeakageError(f"stage '{stage}': {len(arr)} identities but {codes.size} split values")
        parts.append(arr)
        splits.append(codes)
        where.append(np.full(codes.size, i))
    if len({p.ndim for p in parts}) > 1:
        raise LeakageError("identities must have the same shape per row in every stage")
    all_ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    all_split, all_stage = (np.concatenate(splits), np.concatenate(where)) if parts else (np.zeros(0, int),) * 2
    uniq, inverse = np.unique(all_ids, return_inverse=True, axis=0 if all_ids.ndim == 2 else None)
    inverse = inverse.reshape(-1)
    pairs = np.unique(inverse * 3 + all_split)
    bad = np.flatnonzero(np.bincount(pairs // 3, minlength=len(uniq)) > 1)
    examples = []
    for b in bad[:5]:
        rows = np.flatnonzero(inverse == b)
        seen = sorted({f"{stage_names[all_stage[r]]}:{NAMES[all_split[r]]}" for r in rows})
        examples.append({"identity": uniq[b].tolist(), "in": seen})
    stages, unexpected = {}, {}
    for i, stage in enumerate(stage_names):
        counts = np.bincount(splits[i], minlength=3)
        stages[stage] = {"n_rows": int(splits[i].size), **{n: int(c) for n, c in zip(NAMES, counts)}}
        if expected is not None and stage in expected:
            allowed = set(codes_of(np.asarray(list(expected[stage]))).tolist())
            extra = {NAMES[c]: int(counts[c]) for c in range(3) if counts[c] and c not in allowed}
            if extra:
                unexpected[stage] = extra
    report = {
        "ok": not bad.size and not unexpected,
        "n_identities": len(uniq),
        "n_overlapping": int(bad.size),
        "examples": examples,
        "stages": stages,
        "unexpected": unexpected,
    }
    if raise_error and not report["ok"]:
        lines = []
        if bad.size:
            shown = "; ".join(f"{e['identity']} in {', '.join(e['in'])}" for e in examples)
            lines.append(f"{bad.size} row identities are in more than one split, e.g. {shown}")
        for stage, extra in unexpected.items():
            lines.append(f"stage '{stage}' reads rows of {extra}, allowed only {list(expected[stage])}")
        raise LeakageError("split leakage: " + ". ".join(lines))
    return report
