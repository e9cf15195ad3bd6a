"""Run a scan's points: one point here (`treasure scan point`), all of them in parallel processes here
(`--executor local`), or one cluster job per point through Snakemake (`--executor snakemake`).

Every executor does the same for a point: skip it when complete, skip it when it failed before
(unless `retry_failed`), otherwise execute its chapters with `treasure run` into its folder and
record the outcome. Points share stages through the scan's `shared_artifacts` folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..errors import ConfigError
from ..progress import shown
from ..runs import atomic, provenance
from .points import POINT_LOCK, Point, expand, finished, mark, must_rerun, prepare, state
from .spec import Scan

SNAKEFILE = Path("workflow") / "Snakefile"


def run_point(scan: Scan, point: Point, retry_failed: bool = False, log: Callable[[str], None] = print) -> str:
    """Execute one point here; returns its outcome: complete, failed, skipped-complete, skipped-failed or busy.

    The point's lock is held from the first look at its state to the last record, so two executors
    never run (or record) the same point at once."""
    from ..runs import execute

    point.dir.mkdir(parents=True, exist_ok=True)
    with atomic.locked(point.dir / POINT_LOCK, blocking=False) as free:
        if not free:
            log(f"{point.id}: running in another process; left alone")
            return "busy"
        before = state(point)
        done = finished(scan, point)
        if done == "complete":
            mark(point)  # its markers (complete.json, done.json) exist again if someone removed them
            return "skipped-complete"
        if done == "failed" and not retry_failed:
            mark(point)
            log(f"{point.id}: failed earlier ({before.get('error', '?')}); not retried (--retry-failed retries it)")
            return "skipped-failed"
        mark(
            point,
            state="running",
            started=provenance.now(),
            finished=None,
            error=None,
            host=socket.gethostname(),
            pid=os.getpid(),
            chapters=list(scan.chapters or []),
            attempts=int(before.get("attempts", 0)) + 1,
        )
        start = time.perf_counter()
        try:
            execute(
                list(scan.base),
                point.dir,
                chapters=list(scan.chapters) if scan.chapters else None,
                overrides=list(point.overrides),
                log=lambda text: log(f"{point.id}: {text}"),
            )
        except Exception as exc:  # noqa: BLE001 - a point's failure is recorded, the scan goes on
            mark(
                point,
                state="failed",
                finished=provenance.now(),
                seconds=round(time.perf_counter() - start, 3),
                error=f"{type(exc).__name__}: {exc}",
            )
            log(f"{point.id}: FAILED: {exc}")
            return "failed"
        except BaseException:
            mark(point, state="interrupted", finished=provenance.now(), error="interrupted")
            raise
        mark(point, state="complete", finished=provenance.now(), seconds=round(time.perf_counter() - start, 3))
        return "complete"


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_local(
    scan: Scan, jobs: int = 1, retry_failed: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> dict[str, str]:
    """Every point, `jobs` at a time, each in its own process (its log in points/<id>/scan.log); {id: outcome}.

    With the scan's `first_alone`, the first point to run goes before the others, which then link its stages."""
    from tqdm.auto import tqdm

    points = prepare(scan, retry_failed)
    outcome: dict[str, str] = {}
    todo = []
    for p in points:
        done = finished(scan, p)
        if done:
            outcome[p.id] = f"skipped-{done}"
        else:
            todo.append(p)
    log(
        f"scan {scan.name}: {len(points)} points, {len(todo)} to run, {len(points) - len(todo)} skipped "
        f"({sum(v == 'skipped-failed' for v in outcome.values())} failed earlier); {jobs} at a time"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(_threads(jobs)), "MKL_NUM_THREADS": str(_threads(jobs))}

    def one(p: Point) -> str:
        p.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "treasure_lib.cli", "scan", "point", str(scan.path), "--id", p.id]
        with open(p.dir / "scan.log", "a") as fh:
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False).returncode
        recorded = (atomic.read_json(p.state_file, {}) or {}).get("state", "pending")
        if rc != 0 and recorded in ("pending", "running"):  # it died before it recorded an outcome (not Ctrl-C)
            with atomic.locked(p.dir / POINT_LOCK, blocking=False) as free:
                if free:  # and nobody else runs it now
                    mark(
                        p,
                        state="failed",
                        finished=provenance.now(),
                        error=f"the point's process exited with code {rc} before recording an outcome (killed? out "
                        f"of memory?); see {p.dir / 'scan.log'}",
                    )
        return state(p)["state"]

    bar = tqdm(total=len(todo), desc=f"scan {scan.name}", unit="point", disable=not shown(progress))
    first, rest = (todo[:1], todo[1:]) if scan.first_alone else ([], todo)
    for group in (first, rest):
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            futures = {pool.submit(one, p): p for p in group}
            for future in as_completed(futures):
                p = futures[future]
                outcome[p.id] = future.result()
                if outcome[p.id] != "complete":
                    log(f"{p.id}: {outcome[p.id]}: {state(p).get('error', '')} (log: {p.dir / 'scan.log'})")
                bar.update()
        except BaseException:  # Ctrl-C: start no further point (the running ones record 'interrupted')
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    bar.close()
    return outcome


def snakefile() -> Path:
    """workflow/Snakefile of the project (the working directory), else of the repository this library lives in."""
    here = Path.cwd() / SNAKEFILE
    if here.is_file():
        return here
    repo = Path(__file__).resolve().parents[2] / SNAKEFILE
    if repo.is_file():
        return repo
    raise ConfigError(f"no {SNAKEFILE} in {Path.cwd()} or {repo.parents[1]}: run scans from the project root")


def snakemake_command(
    scan: Scan,
    profile: str | None = None,
    jobs: int | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The Snakemake invocation for a scan: one job per incomplete point, then the summary."""
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "snakemake"]
    cmd += [
        "--snakefile",
        str(snakefile()),
        "--directory",
        str(Path.cwd()),
        "--config",
        f"scan={scan.path}",
        "--rerun-triggers",
        "mtime",
    ]  # a point is redone because it must be (below), never for a new flag
    redo = [str(p.done_file) for p in expand(scan) if p.done_file.is_file() and must_rerun(scan, p, retry_failed)]
    if redo:
        cmd += ["--forcerun", *redo]
    if profile:
        if not Path(profile).is_dir():
            raise ConfigError(f"Snakemake profile {profile}: not a folder (e.g. params/profiles/slurm)")
        cmd += ["--profile", str(profile)]
        if jobs:
            cmd += ["--jobs", str(jobs)]
    else:
        cmd += ["--cores", str(jobs or os.cpu_count() or 1)]
    if dry_run:
        cmd.append("--dry-run")
    return cmd + list(extra)


def run_snakemake(scan: Scan, **kw) -> int:
    """Snakemake's exit code, or 1 when it succeeded but points are recorded as failed."""
    cmd = snakemake_command(scan, **kw)
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, check=False).returncode
    if rc or kw.get("dry_run"):
        return rc
    failed = [p.id for p in expand(scan) if finished(scan, p) == "failed"]
    for pid in failed:
        print(f"{pid}: failed (treasure scan status; --retry-failed retries)")
    return 1 if failed else 0
