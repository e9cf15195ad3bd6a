"""A scan's points: the grid x zip expansion, stable ids, and each point's state on disk.

A point's id is `<readable>-<hash>`: the readable part names its axis values
(`codebook_size-512_num_quantizers-2`), the hash is the first 10 hex digits of the sha256 of its
fully resolved params (without the shared-artifacts folder, which says where, not what). The same
params give the same id whatever the scan file's order or name, so a point is never run twice.

State lives in the point's run folder `points/<id>/`: `point.json` (running / complete / failed /
interrupted, the error, times, host, attempts, the chapters asked for), `complete.json` only after
every chapter succeeded (and a point counts as complete only while the notebooks its status.json
records still verify), and `done.json` after an attempt ended either way (what Snakemake waits
for, so one failed point does not hold back the summary). A point that was interrupted says
`running` or `interrupted`: it is incomplete and runs again (its finished chapters are skipped by
`treasure run`). A point finished with other chapters than the scan now asks for is pending again.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..errors import ConfigError
from ..runs import atomic
from ..runs.provenance import params_hash
from .spec import Scan, override_text

ID_HASH_CHARS = 10
READABLE_MAX = 90
POINT_STATE, COMPLETE, DONE, POINT_LOCK = "point.json", "complete.json", "done.json", ".point.lock"
FINISHED = ("complete", "failed")


@dataclass(frozen=True)
class Point:
    id: str
    values: dict  # axis key -> value
    overrides: tuple  # the scan's overrides, then the axis values (KEY=VALUE)
    resolved: Mapping  # its fully resolved params (a `config.Params`): its identity, read by section
    dir: Path  # its run folder

    @property
    def state_file(self) -> Path:
        return self.dir / POINT_STATE

    @property
    def complete_file(self) -> Path:
        return self.dir / COMPLETE

    @property
    def done_file(self) -> Path:
        return self.dir / DONE


def _combinations(scan: Scan) -> Iterator[dict]:
    """Axis values of every point: the grid's product times each zip group's positions, then the single points."""
    factors = [[{key: v} for v in values] for key, values in scan.grid.items()]
    for group in scan.zip:
        n = len(next(iter(group.values())))
        factors.append([{key: values[i] for key, values in group.items()} for i in range(n)])
    for combo in itertools.product(*factors):
        merged: dict = {}
        for part in combo:
            merged.update(part)
        yield merged
    for point in scan.points:
        yield dict(point)


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_short(v) for v in value) or "none"
    if isinstance(value, dict):
        return "+".join(f"{k}{_short(v)}" for k, v in value.items()) or "none"
    return re.sub(r"[^A-Za-z0-9.+]", "", str(value)) or "none"


def readable(values: dict) -> str:
    """`{tokenizer.encoder: mlp, tokenizer.codebook_size: 512}` -> `codebook_size-512_encoder-mlp` (keys sorted,
    so reordering a scan file's axes keeps every id)."""
    text = "_".join(f"{key.rsplit('.', 1)[-1]}-{_short(values[key])}" for key in sorted(values)) or "base"
    return text[:READABLE_MAX]


def point_hash(resolved: Mapping) -> str:
    """A point's identity: its resolved params as plain data (`Params.to_dict()`), without the shared-artifacts
    folder of the scan it runs in."""
    p = dict(resolved)
    p["study"] = {k: v for k, v in resolved["study"].items() if k != "shared_artifacts"}
    return params_hash(p)[:ID_HASH_CHARS]


def expand(scan: Scan) -> list[Point]:
    """Every point of the scan, in grid order; resolving a point's params checks every axis key and value."""
    points, seen = [], {}
    shared = override_text("study.shared_artifacts", str(scan.shared_artifacts))
    for values in _combinations(scan):
        overrides = tuple(scan.overrides) + tuple(override_text(k, v) for k, v in values.items()) + (shared,)
        try:
            params = config.load(list(scan.base), list(overrides))
        except ConfigError as exc:
            raise ConfigError(f"{scan.path}: point {values}: {exc}") from None
        digest = point_hash(params.to_dict())
        if digest in seen:
            raise ConfigError(
                f"{scan.path}: points {seen[digest]} and {values} resolve to the same params "
                f"(one axis overrides another, or two values mean the same, e.g. 1 and 1.0)"
            )
        seen[digest] = values
        pid = f"{readable(values)}-{digest}"
        points.append(Point(pid, values, overrides, params, scan.points_dir / pid))
    return points


def find(scan: Scan, point_id: str) -> Point:
    points = expand(scan)
    for p in points:
        if p.id == point_id:
            return p
    raise ConfigError(
        f"{scan.path}: no point '{point_id}'; the scan has: {', '.join(p.id for p in points[:8])}"
        + (" ..." if len(points) > 8 else "")
    )


# ----------------------------------------------------------------------------- state


def state(point: Point) -> dict:
    """{"state": pending | running | interrupted | complete | failed, ...} from the point's folder."""
    try:
        record = atomic.read_json(point.state_file, None)
    except ValueError:
        record = None
    if not record:
        return {"state": "pending"}
    if record.get("state") == "complete" and not point.complete_file.is_file():  # never finished writing
        return {**record, "state": "pending"}
    if record.get("state") == "complete" and not outputs_verify(point):  # a notebook changed or went missing
        return {**record, "state": "pending"}
    if record.get("state") == "running" and not _held(point):  # its process is gone (killed, time limit)
        return {**record, "state": "interrupted"}
    return record


def outputs_verify(point: Point) -> bool:
    """A complete point still holds what its run wrote: every chapter its status.json records complete has the
    executed notebook whose sha256 it recorded (the chapters' own model of done)."""
    from ..hashing import file_sha256

    try:
        chapters = (atomic.read_json(point.dir / "status.json", {}) or {}).get("chapters", {})
    except ValueError:
        return False
    complete = {name: entry for name, entry in chapters.items() if entry.get("state") == "complete"}
    for name, entry in complete.items():
        notebook = point.dir / entry.get("notebook", f"notebooks/{name}.ipynb")
        if not notebook.is_file() or file_sha256(notebook) != entry.get("notebook_sha256"):
            return False
    return True


def _held(point: Point) -> bool:
    """Some process holds the point's lock (the executor that runs it)."""
    lock = point.dir / POINT_LOCK
    if not lock.exists():
        return False
    with atomic.locked(lock, blocking=False) as free:
        return not free


def finished(scan: Scan, point: Point) -> str | None:
    """ "complete" or "failed" when the point's last attempt ran the chapters the scan asks for; else None."""
    s = state(point)
    if s["state"] in FINISHED and s.get("chapters") == list(scan.chapters or []):
        return s["state"]
    return None


def mark(point: Point, **record) -> dict:
    """Write point.json (merged with what it held); `complete.json` and `done.json` follow the state."""
    point.dir.mkdir(parents=True, exist_ok=True)
    try:
        old = atomic.read_json(point.state_file, {}) or {}
    except ValueError:
        old = {}
    new = {**old, "id": point.id, "values": point.values, **record}
    if new.get("state") != "complete":
        point.complete_file.unlink(missing_ok=True)
    if new.get("state") not in FINISHED:
        point.done_file.unlink(missing_ok=True)
    atomic.write_json(point.state_file, new)
    if new["state"] == "complete":
        atomic.write_json(point.complete_file, new)
    if new["state"] in FINISHED:
        atomic.write_json(point.done_file, new)
    return new


def must_rerun(scan: Scan, point: Point, retry_failed: bool = False) -> bool:
    """A point that ended must run again: it ran other chapters than the scan asks for now, it failed and
    `retry_failed`, or its notebooks no longer verify."""
    s = state(point)
    if s["state"] == "pending" and point.done_file.is_file():  # marked done, but what it wrote no longer verifies
        return True
    return s["state"] in FINISHED and (
        s.get("chapters") != list(scan.chapters or []) or (retry_failed and s["state"] == "failed")
    )


def prepare(scan: Scan, retry_failed: bool = False) -> list[Point]:
    """The points, with the markers of those that must run again removed (the local executor's view)."""
    points = expand(scan)
    for p in points:
        if must_rerun(scan, p, retry_failed):
            previous = state(p)["state"]
            p.done_file.unlink(missing_ok=True)
            p.complete_file.unlink(missing_ok=True)
            mark(p, state="pending", previous=previous)
    return points
