"""`treasure scan run | status | list | point | summarize`: the scan commands."""

from __future__ import annotations

from ..errors import ConfigError
from ..study.stages import ensure_samples
from .executors import run_local, run_point, run_snakemake
from .page import summarize
from .points import expand, find, state
from .spec import Scan, load_scan


def _print_status(scan: Scan) -> int:
    points = expand(scan)
    counts: dict = {}
    for p in points:
        s = state(p)
        counts[s["state"]] = counts.get(s["state"], 0) + 1
        extra = f"  {s.get('error')}" if s["state"] == "failed" else ""
        print(f"{s['state']:<11} {p.id}{extra}")
    print(f"{len(points)} points: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def _cmd(args) -> int:
    scan = load_scan(args.scan)
    if args.scan_command == "run":
        if args.executor == "local" and args.dry_run:
            return _print_status(scan)
        if args.executor == "local" and getattr(args, "passthrough", []):
            raise ConfigError("arguments after `--` are for snakemake: use --executor snakemake")
        if not args.dry_run:  # the points' input files (the default samples are generated when missing)
            first = expand(scan)[0].resolved
            ensure_samples(first.study, first.data, first.generate)
        if args.executor == "local":
            outcome = run_local(scan, jobs=args.jobs or 1, retry_failed=args.retry_failed)
            failed = sorted(k for k, v in outcome.items() if v not in ("complete", "skipped-complete"))
            print(
                f"scan {scan.name}: "
                + ", ".join(f"{sum(v == o for v in outcome.values())} {o}" for o in sorted(set(outcome.values())))
            )
            if args.summarize:
                print(f"-> {summarize(scan)['page']}")
            return 1 if failed else 0
        extra = getattr(args, "passthrough", [])
        return run_snakemake(
            scan,
            profile=args.profile,
            jobs=args.jobs,
            dry_run=args.dry_run,
            retry_failed=args.retry_failed,
            extra=extra,
        )
    if args.scan_command == "point":
        outcome = run_point(scan, find(scan, args.id), retry_failed=args.retry_failed)
        return 1 if outcome == "busy" else 0  # a failure is recorded (point.json, done.json): the job itself succeeded
    if args.scan_command == "summarize":
        out = summarize(scan)
        print(
            f"{len(out['rows'])} points -> {out['parquet']}, {out['csv']}, {out['page']} "
            f"({len(out['figures'])} figures)"
        )
        return 0
    if args.scan_command == "list":
        for p in expand(scan):
            print(p.id, " ".join(p.overrides))
        return 0
    return _print_status(scan)


def register(sub, add_params, _params=None) -> None:
    """`treasure scan ...` (cli._EXTRA_COMMANDS)."""
    p = sub.add_parser("scan", help="parameter scans: run points (locally or with Snakemake/Slurm), summarize")
    verbs = p.add_subparsers(dest="scan_command", required=True)
    r = verbs.add_parser("run", help="run every incomplete point of a scan file")
    r.add_argument("scan", help="scan file, e.g. params/scans/demo.yaml")
    r.add_argument("--executor", choices=("local", "snakemake"), default="local")
    r.add_argument("--jobs", type=int, default=None, help="points at a time (local) / Snakemake jobs")
    r.add_argument("--retry-failed", action="store_true", help="run points that failed before again")
    r.add_argument("--summarize", action="store_true", help="local: write the summary afterwards")
    r.add_argument("--profile", default=None, help="Snakemake profile folder, e.g. params/profiles/slurm")
    r.add_argument(
        "--dry-run", action="store_true", help="run nothing: Snakemake shows its jobs, local each point's state"
    )
    r.epilog = "Arguments after `--` go to snakemake as they are (e.g. -- --default-resources slurm_account=...)."
    for verb, text in (
        ("status", "each point's state"),
        ("list", "each point's id and overrides"),
        ("summarize", "table, figures and summary.md of the scan"),
    ):
        v = verbs.add_parser(verb, help=text)
        v.add_argument("scan")
    v = verbs.add_parser("point", help="run one point here (what each executor job runs)")
    v.add_argument("scan")
    v.add_argument("--id", required=True)
    v.add_argument("--retry-failed", action="store_true")
    p.set_defaults(func=_cmd)
