"""The one train / val / test assignment every stage uses, decided by a hash of each row's identity.

A row (jet or event) is identified by (sample, event number): the sample is the file's `dsid`
metadata (else `process`, else the file stem) and the event number its `eventNumber` field where
the data has one, so every jet of an event, and the same event in the jets and events files, lands
in the same split. Without an event number the identity is (file stem, row index). The hash does
not depend on chunk size, file order or which stage asks, so tokenizer fit, export, pretraining and
classification can never disagree (DESIGN.md, "Splits").
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .schema import DataParams

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
