"""Run folders: `runs/<study kind>/<run name>/`, what chapters write into and `treasure run` executes.

A run folder holds `params.yaml` (fully resolved), `notebooks/NN_name.ipynb` (executed chapters),
`metrics.json` (flat dotted keys), `figures/`, `artifacts/`, `provenance.json`, `status.json`
(per-chapter completion) and `logs/run.log` (what the chapters wrote to stderr). Chapters open it with
`open_run`; `execute` runs the chapters.
"""

from .chapters import Chapter, Status, discover, input_hashes, library_fingerprint
from .execute import ChapterError, execute, register
from .folder import (
    METRICS,
    PARAMS,
    PROVENANCE,
    STATUS,
    Run,
    RunError,
    default_run_dir,
    dotted_items,
    interactive_run_dir,
    open_run,
)
from .provenance import file_checksums, git_state
from .stage import Stage, inputs_hash

__all__ = [
    "open_run",
    "Run",
    "execute",
    "ChapterError",
    "RunError",
    "Stage",
    "inputs_hash",
    "Chapter",
    "Status",
    "discover",
    "input_hashes",
    "library_fingerprint",
    "file_checksums",
    "git_state",
    "default_run_dir",
    "interactive_run_dir",
    "dotted_items",
    "register",
    "PARAMS",
    "METRICS",
    "PROVENANCE",
    "STATUS",
]
