"""Streaming read throughput of the compound (flavour-tagging) layout, and flat memory.

Writes a 1x and a 10x file, streams each in a fresh process, and reports jets/s, MB/s
(decompressed array bytes delivered) and the peak RSS of each. Target: the 10x run's
peak RSS within 10% of the 1x run's.

    python benchmarks/h5_read.py [--jets 20000] [--chunk-size 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_child, write_json, write_toy_jets  # noqa: E402

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
from _common import peak_rss_mb
from treasure_lib.object_collections import load_sets
from treasure_lib.io.reader import H5Stream
cols = load_sets("params/objects.yaml")["jets"]
stream = H5Stream([sys.argv[1]], cols, chunk_size=int(sys.argv[2]))
t0 = time.perf_counter(); n = 0; nbytes = 0
for b in stream:
    n += len(b); nbytes += sum(o.features.nbytes + o.mask.nbytes for o in b.collections.values())
dt = time.perf_counter() - t0
print(json.dumps({"jets": n, "seconds": dt, "jets_per_s": n / dt, "mb_per_s": nbytes / dt / 1e6,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=20_000, help="jets in the 1x file")
    ap.add_argument("--chunk-size", type=int, default=10_000)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (1, 10):
            path = Path(tmp) / f"x{scale}.h5"
            write_toy_jets(path, args.jets * scale)
            r = run_child(CHILD, str(path), str(args.chunk_size), str(Path(__file__).resolve().parent))
            r["file_mb"] = round(path.stat().st_size / 1e6, 1)
            r["file_mb_per_s"] = r["file_mb"] / r["seconds"]
            results[f"x{scale}"] = r
    ratio = results["x10"]["peak_rss_mb"] / results["x1"]["peak_rss_mb"]
    out = write_json(
        "h5_read",
        {
            "chunk_size": args.chunk_size,
            "runs": results,
            "rss_ratio_10x_vs_1x": ratio,
            "target_rss_ratio_max": 1.10,
            "meets_target": ratio <= 1.10,
        },
    )
    for k, r in results.items():
        print(
            f"{k:>4}: {r['jets']:>8} jets  {r['jets_per_s']:>10.0f} jets/s  {r['mb_per_s']:>7.1f} MB/s arrays  "
            f"{r['file_mb_per_s']:>6.1f} MB/s gzip file  peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    print(f"peak RSS 10x / 1x = {ratio:.3f} (target <= 1.10)  -> {out}")


if __name__ == "__main__":
    main()
