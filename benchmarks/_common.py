"""Shared helpers for benchmarks: peak RSS of a child process, JSON output."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

OUT_DIR = Path("runs/benchmarks")


def machine() -> dict:
    return {
        "cpu_count": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Unlike ru_maxrss it is not inherited across fork + exec,
    which would report the parent's high-water mark for a child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line with `peak_rss_mb` (from `peak_rss_mb()`)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    peak = 0
    p = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, p.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    out, _ = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"benchmark child failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["sampled_rss_mb"] = round(peak / 2**20, 1)
    result["peak_rss_mb"] = round(max(result["peak_rss_mb"], result["sampled_rss_mb"]), 1)
    return result


def write_json(name: str, result: dict) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    result = {"benchmark": name, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2))
    return path


def write_toy_jets(path: Path, n_jets: int, all_tracks_valid: bool = False, block: int = 5000) -> None:
    """A compound jets + tracks file of random but schema-valid rows, written in blocks."""
    from treasure_lib.io.h5_writer import H5Writer, batch_to_arrays
    from treasure_lib.io.toy import make_batch
    from treasure_lib.object_collections import load_sets

    cols = load_sets("params/objects.yaml")["jets"]
    with H5Writer(path, chunk_rows=1000) as w:
        for i in range(0, n_jets, block):
            b = make_batch(cols, min(block, n_jets - i), seed=i)
            if all_tracks_valid:  # 40 valid tracks per jet: the worst case for export
                b["tracks"].mask[:] = True
                pt = cols["tracks"].index("pt")
                b["tracks"].features[..., pt] = abs(b["tracks"].features[..., pt]) + 500.0
            w.append(batch_to_arrays(b, cols))
