"""Parameter scans: a scan file expands into points (run folders with stable ids) that run here in parallel
or as Slurm jobs through Snakemake, share their common stages, and are summarised into a table, figures
and a book page. `treasure scan run | status | point | summarize`; see `spec` for the scan file.
"""

from .executors import run_local, run_point, run_snakemake, snakemake_command
from .page import summarize
from .points import Point, expand, find, readable, state
from .spec import Scan, load_scan
from .table import collect

__all__ = [
    "Scan",
    "Point",
    "load_scan",
    "expand",
    "find",
    "readable",
    "state",
    "run_point",
    "run_local",
    "run_snakemake",
    "snakemake_command",
    "collect",
    "summarize",
    "register",
]


def register(sub, add_params, _params=None) -> None:
    """`treasure scan ...` (cli._EXTRA_COMMANDS)."""
    from .commands import register as _register

    _register(sub, add_params, _params)
