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
    from treasure_lib.generate.run import run_job

    t0 = time.perf_counter()
    run_job(job)
    return time.perf_counter() - t0


def main() -> None:
    from dataclasses import replace

    from treasure_lib import config
    from treasure_lib.generate.run import make_pythia, plan_jobs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--process", action="append", help="process(es) to time (default: ttbar and Zjets)")
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    processes = args.process or ["ttbar", "Zjets"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for process in processes:
            params = config.load(["params/default.yaml"], [f"generate.output_dir={tmp}", f"generate.samples={{{process}: {args.events}}}"])
            job = plan_jobs(params)[0]
            t_init0 = time.perf_counter()
            make_pythia(job.settings, job.seed)
            init_s = time.perf_counter() - t_init0
            t_bare, t_full = [], []
            for _ in range(args.repeats):
                t_bare.append(bare(job, args.events))
                t_full.append(full(replace(job)) - init_s)  # run_job includes one Pythia init; bare excludes it
            rate_bare = args.events / min(t_bare)
            rate_full = args.events / min(t_full)
            results[process] = {"events": args.events, "bare_pythia_ev_per_s": rate_bare, "full_chain_ev_per_s": rate_full,
                                "ratio": rate_full / rate_bare, "bare_s": t_bare, "full_s": t_full, "init_s": init_s}
            print(f"{process:<10} bare Pythia {rate_bare:7.1f} ev/s   Pythia+emulation+H5 {rate_full:7.1f} ev/s   "
                  f"ratio {rate_full / rate_bare:.2f} (target >= 0.80)")
    out = write_json("generate", {"per_process": results, "target_ratio_min": 0.8,
                                  "meets_target": all(r["ratio"] >= 0.8 for r in results.values())})
    print(f"-> {out}")


if __name__ == "__main__":
    main()
