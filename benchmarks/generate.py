"""Events/s of bare Pythia vs Pythia + detector emulation + H5 writing, same settings and seed.

Runs the two alternately (A B A B ...) in one process so machine noise hits both alike.
Target: the full chain keeps >= 80% of bare Pythia's rate.

    python benchmarks/generate.py [--process ttbar] [--events 400] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402


def bare(job, n: int) -> float:
    from treasure_lib.generate.run import make_pythia

    pythia = make_pythia(job.settings, job.seed)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        done += len(pythia.nextBatch(min(job.batch_size, n - done)))
    return time.perf_counter() - t0


def full(job) -> float:
    """Seconds of the generation loop (Pythia + emulation + H5 writing and closing), without Pythia's init."""
    from treasure_lib.generate.run import run_job

    return run_job(job)["generation_s"]


def main() -> None:
    from treasure_lib import config
    from treasure_lib.generate.run import plan_jobs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--process", action="append", help="process(es) to time (default: ttbar and Zjets)")
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    processes = args.process or ["ttbar", "Zjets"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for process in processes:
            params = config.load(
                ["params/default.yaml"],
                [f"generate.output_dir={tmp}", f"generate.samples={{{process}: {args.events}}}"],
            )
            job = plan_jobs(params.study, params.data, params.generate)[0]
            t_bare, t_full = [], []
            for _ in range(args.repeats):  # alternate, so that machine noise hits both alike
                t_bare.append(bare(job, args.events))
                t_full.append(full(job))
            rate_bare = args.events / min(t_bare)
            rate_full = args.events / min(t_full)
            results[process] = {
                "events": args.events,
                "bare_pythia_ev_per_s": rate_bare,
                "full_chain_ev_per_s": rate_full,
                "ratio": rate_full / rate_bare,
                "bare_s": t_bare,
                "full_s": t_full,
            }
            print(
                f"{process:<10} bare Pythia {rate_bare:7.1f} ev/s   Pythia+emulation+H5 {rate_full:7.1f} ev/s   "
                f"ratio {rate_full / rate_bare:.2f} (target >= 0.80)"
            )
    out = write_json(
        "generate",
        {
            "per_process": results,
            "target_ratio_min": 0.8,
            "meets_target": all(r["ratio"] >= 0.8 for r in results.values()),
        },
    )
    print(f"-> {out}")


if __name__ == "__main__":
    main()
