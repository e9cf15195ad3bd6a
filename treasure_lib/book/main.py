"""`make book`: the default samples, both studies, scan pages when they exist, and the book, with each stage timed.

    python -m treasure_lib.book.main [--params params/default.yaml --params params/studies/events.yaml]

Every stage skips what is already done (existing samples, completed chapters, reusable artifacts),
so a second `make book` only rebuilds the HTML.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import config
from ..errors import TreasureError

STUDIES = (
    ("Jet flavour tagging from tracks", "params/default.yaml"),
    ("Event classification: H -> 4l and backgrounds", "params/studies/events.yaml"),
)


def _stage(name: str, times: list, fn):
    print(f"== {name} ...", flush=True)
    t0 = time.perf_counter()
    out = fn()
    times.append((name, time.perf_counter() - t0))
    print(f"== {name}: {times[-1][1]:.0f} s", flush=True)
    return out


def make_book(
    studies=STUDIES, scan_pages=(), force: bool = False, warnings_as_errors: bool = False, parallel: bool = True
) -> Path:
    from ..runs import execute
    from .build import build_book

    times: list = []
    start = time.perf_counter()

    def samples():
        from ..study.held_out import signal_files
        from ..study.stages import ensure_samples

        for _, params_file in studies:  # missing default samples are generated; existing files are kept
            p = config.load([params_file])
            ensure_samples(p.study, p.data, p.generate)
            if p.anomaly.signals:  # chapter 08's held-out signals, made here once for both studies
                signal_files(p.study, p.data, p.generate, p.anomaly)

    _stage("generate the default samples", times, samples)
    runs = []
    for title, params_file in studies:
        params = config.load([params_file])
        runs.append((title, Path("runs") / params["study"]["kind"] / params["study"]["name"]))
    if parallel and len(runs) > 1:
        _stage(
            f"studies {', '.join(str(d) for _, d in runs)} side by side",
            times,
            lambda: _side_by_side(studies, runs, force),
        )
    else:
        for (_, run_dir), (_, params_file) in zip(runs, studies):
            _stage(
                f"study {run_dir} ({params_file})", times, lambda p=params_file, d=run_dir: execute([p], d, force=force)
            )
    found = sorted(Path("runs/scans").glob("*/summary.md"))  # every scan summarised here so far
    pages = list(dict.fromkeys([Path(p) for p in scan_pages if Path(p).is_file()] + found))
    html = _stage("book", times, lambda: build_book(runs, scan_pages=pages, warnings_as_errors=warnings_as_errors))
    total = time.perf_counter() - start
    _report_health(runs)
    print("\nstage times:")
    for name, seconds in times:
        print(f"  {seconds:7.1f} s  {name}")
    print(f"  {total:7.1f} s  total\n-> {html / 'index.html'}")
    return html


class _Prefixed:
    """A study's terminal output when studies run side by side: every line prefixed with the study, no live line."""

    def __init__(self, stream, prefix: str):
        self.stream, self.prefix, self.pending = stream, prefix, ""

    def write(self, text: str) -> int:
        self.pending += text.replace("\r", "\n")
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.stream.write(f"{self.prefix}{line}\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _study(job: tuple) -> float:
    """One study in its own process (`_side_by_side`); returns its wall time."""
    from ..runs import execute

    params_file, run_dir, force = job
    sys.stdout = _Prefixed(sys.__stdout__, f"[{Path(run_dir).name}] ")
    sys.stderr = _Prefixed(sys.__stderr__, f"[{Path(run_dir).name}] ")
    t0 = time.perf_counter()
    execute([params_file], run_dir, force=force)
    seconds = time.perf_counter() - t0
    print(f"done in {seconds:.0f} s")
    return seconds


def _side_by_side(studies, runs, force: bool, run_one=_study) -> None:
    """Both studies at once, each in a process of its own: a study leaves a core idle for long stretches (notebook
    kernels starting, one-threaded reports, the tail of a round of models), which the other fills. Every process of
    both studies (kernels, workers) runs one thread (`ONE_THREAD`): a multi-threaded step beside the other study's
    workers spins its OpenMP threads against them (tried: a 90 s chapter took over 10 minutes). Every stage sets its
    own thread count (`workers.threads_per_job`), so the numbers are those of studies run one after the other.
    `run_one((params file, run dir, force))`: a top-level function that runs one study and returns its seconds."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(params_file, str(run_dir), force) for (_, params_file), (_, run_dir) in zip(studies, runs)]
    before = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update({k: "1" for k in ONE_THREAD})  # the spawned studies and everything they start inherit it
    try:
        with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
            for (_, run_dir), seconds in zip(runs, pool.map(run_one, jobs)):
                print(f"== study {run_dir}: {seconds:.0f} s", flush=True)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _report_health(runs) -> None:
    """Say which models did not finish learning (the book marks their numbers; nothing rests on them)."""
    import json

    from ..training_health import unconverged

    for _, run_dir in runs:
        path = Path(run_dir) / "metrics.json"
        if not path.is_file():
            continue
        bad = unconverged(json.loads(path.read_text()))
        flags = sum(1 for k in json.loads(path.read_text()) if k.endswith(".converged"))
        print(
            f"{run_dir}: {flags - len(bad)} of {flags} trained models finished learning"
            + (f"; not: {', '.join(bad)}" if bad else "")
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--params", action="append", metavar="YAML", help="study params (repeatable; default: both studies)"
    )
    ap.add_argument(
        "--scan-page",
        action="append",
        default=[],
        help="further scan summary pages (runs/scans/*/summary.md are included anyway)",
    )
    ap.add_argument("--force", action="store_true", help="re-run every chapter")
    ap.add_argument("--one-at-a-time", action="store_true", help="run the studies one after the other")
    ap.add_argument("-W", "--warnings-as-errors", action="store_true")
    args = ap.parse_args(argv)
    studies = [(Path(p).stem, p) for p in args.params] if args.params else STUDIES
    try:
        make_book(studies, args.scan_page, args.force, args.warnings_as_errors, parallel=not args.one_at_a_time)
    except TreasureError as exc:
        print(f"make book: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
