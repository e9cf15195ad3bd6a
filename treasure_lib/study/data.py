"""Chapter 01's numbers: what the samples hold, how rows split, and a few physics distributions to trust them by."""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np

from .. import splits
from ..io.reader import H5Stream


def summary(params: Mapping, max_rows_per_file: int | None = None) -> dict:
    """Per sample: files, rows per split, cross section, mean object multiplicities; plus arrays for figures."""
    stream = H5Stream.from_params(params)
    if max_rows_per_file:
        stream.max_rows = max_rows_per_file
    samples: dict = defaultdict(lambda: {"files": set(), "rows": np.zeros(3, int), "objects": defaultdict(float)})
    arrays: dict = defaultdict(list)
    for batch in stream:
        name = str(batch.metadata.get("process", batch.source_file))
        s = samples[name]
        s["files"].add(batch.source_file)
        s["rows"] += np.bincount(batch.split, minlength=3)
        s["cross_section_pb"] = batch.metadata.get("cross_section_pb", float("nan"))
        for coll, oa in batch.collections.items():
            if oa.mask.shape[1] > 1:
                s["objects"][coll] += float(oa.mask.sum())
        arrays["process"].append(np.full(len(batch), name))
        arrays["label"].append(batch.labels)
        for coll, oa in batch.collections.items():
            if oa.mask.shape[1] > 1:
                arrays[f"n_{coll}"].append(oa.mask.sum(1))
            elif "pt" in oa.names:
                arrays[f"{coll}_pt_gev"].append(oa.feature("pt")[:, 0] / 1e3)
        if "tracks" in batch.collections and "lifetimeSignedD0Significance" in batch["tracks"].names:
            t = batch["tracks"]
            lead = np.where(t.mask, t.feature("lifetimeSignedD0Significance"), -np.inf).max(1)
            arrays["max_sd0"].append(lead)
    rows = []
    for name, s in sorted(samples.items()):
        total = int(s["rows"].sum())
        rows.append({"sample": name, "files": len(s["files"]), "rows": total,
                     **{f"{splits.NAMES[i]}": int(s["rows"][i]) for i in range(3)},
                     "cross_section_pb": s["cross_section_pb"],
                     **{f"{c} per row": round(v / max(total, 1), 2) for c, v in s["objects"].items()}})
    return {"table": rows, "arrays": {k: np.concatenate(v) for k, v in arrays.items()}}
