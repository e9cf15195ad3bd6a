"""`treasure inspect`: what an H5 file holds, and which configured collections it can serve."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import h5py

from ..object_collections import Collection
from .h5 import check_collection, open_h5, read_metadata


def inspect_file(path: str | Path, sets: Mapping[str, Mapping[str, Collection]] | None = None) -> dict:
    """What a file holds, and which configured collections (and features) it can serve."""
    path = Path(path)
    with open_h5(path) as f:
        datasets = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                entry = {
                    "path": name,
                    "shape": list(obj.shape),
                    "dtype": str(obj.dtype) if obj.dtype.names is None else "compound",
                    "compression": obj.compression,
                }
                if obj.dtype.names is not None:
                    entry["fields"] = {n: str(obj.dtype[n]) for n in obj.dtype.names}
                datasets.append(entry)

        f.visititems(visit)
        rows = max((d["shape"][0] for d in datasets if d["shape"]), default=0)
        serves: dict = {}
        for set_name, members in (sets or {}).items():
            serves[set_name] = {}
            for name, c in members.items():
                _, problems = check_collection(f, c)
                serves[set_name][name] = {"ok": not problems, "problems": problems}
        return {
            "file": str(path),
            "size_bytes": path.stat().st_size,
            "rows": rows,
            "datasets": datasets,
            "metadata": read_metadata(f),
            "serves": serves,
        }


def format_inspection(report: Mapping) -> str:
    lines = [f"{report['file']}  ({report['size_bytes'] / 1e6:.2f} MB, {report['rows']} rows)"]
    if report["metadata"]:
        lines.append("metadata:")
        lines += [f"  {k} = {v}" for k, v in report["metadata"].items()]
    lines.append("datasets:")
    for d in report["datasets"]:
        shape = "(" + ", ".join(map(str, d["shape"])) + ")"
        lines.append(f"  {d['path']:<40} {d['dtype']:<10} {shape:<14} {d['compression'] or ''}")
        for n, dt in d.get("fields", {}).items():
            lines.append(f"      .{n:<36} {dt}")
    for set_name, members in report["serves"].items():
        ok = [n for n, r in members.items() if r["ok"]]
        lines.append(
            f"collection set '{set_name}': serves {len(ok)}/{len(members)}" + (f" ({', '.join(ok)})" if ok else "")
        )
        for r in members.values():
            for p in r["problems"]:
                lines.append(f"  - {p}")
    return "\n".join(lines)
