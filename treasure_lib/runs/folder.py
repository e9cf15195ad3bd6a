"""The run folder a chapter works in: resolved params, metrics, figures, artifacts, provenance.

A chapter opens its run in the cell after its parameters cell:

    run = runs.open_run(params_file, run_dir, overrides)

Under `treasure run` (papermill) `params_file` is the run's own `params.yaml`; in JupyterLab the
defaults (`params/default.yaml`, `runs/jets/default`) make the same call work by hand. Overrides given by hand
without a `run_dir` open a folder of their own (`runs/<kind>/<name>-<hash of the overrides>`), so exploring never
rewrites the params of the run `make book` filled nor moves its metrics aside.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .. import config
from ..config import StudyParams
from ..errors import TreasureError
from ..hashing import text_sha256
from . import atomic, lock, provenance
from .stage import Stage

PARAMS = "params.yaml"
METRICS = "metrics.json"
PROVENANCE = "provenance.json"
STATUS = "status.json"


class RunError(TreasureError, RuntimeError):
    """A run folder cannot be opened, executed or read as asked."""


def dotted_items(metrics: Mapping, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: metrics.json is flat, with dotted keys."""
    out = {}
    for key, value in metrics.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(dotted_items(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _find_project_root(params_file: Path) -> Path | None:
    """The nearest folder (cwd or a parent) where a relative `params_file` exists."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / params_file).is_file():
            return folder
    return None


class Run:
    """One run folder (`runs/<kind>/<name>/`), as a chapter sees it."""

    def __init__(self, run_dir: str | Path, params: Mapping):
        self.dir = Path(run_dir)
        self.params = config.resolve(params)  # typed and frozen: chapters make variants with `params.replace`
        self.figures = self.dir / "figures"
        self.artifacts = self.dir / "artifacts"
        for folder in (self.figures, self.artifacts, self.dir / "notebooks"):
            folder.mkdir(parents=True, exist_ok=True)

    def adopt_params(self) -> bool:
        """Make `params.yaml` hold this run's params; returns True if it changed.

        metrics.json belongs to params.yaml: when the params change, the earlier metrics move to
        metrics.previous.json so no number of other params is shown as this run's, and status.json to
        status.previous.json (no chapter counts as complete for the new params). Written under the run folder's lock.
        """
        path = self.dir / PARAMS
        old = config.read_yaml(path) if path.is_file() else None
        if old is not None and provenance.params_hash(old) == provenance.params_hash(self.params):
            return False
        with lock.writing(self.dir, "adopting new params"):
            return self._adopt()

    def _adopt(self) -> bool:
        """adopt_params under the lock (the params read again: another writer may have changed them meanwhile)."""
        path = self.dir / PARAMS
        old = config.read_yaml(path) if path.is_file() else None
        if old is not None and provenance.params_hash(old) == provenance.params_hash(self.params):
            return False
        if old is not None:
            changed = sorted(set(_diff(old, self.params.to_dict())))
            print(
                f"{path}: params changed ({', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''}); "
                f"earlier metrics moved to {METRICS.replace('.json', '.previous.json')}"
            )
            for name in (METRICS, STATUS):  # the numbers and the chapters' completion belonged to the old params
                if (self.dir / name).is_file():
                    os.replace(self.dir / name, self.dir / name.replace(".json", ".previous.json"))
        self.dir.mkdir(parents=True, exist_ok=True)
        config.dump(self.params, path)
        return True

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"

    def writing(self, what: str):
        """Hold the run folder's lock (`lock.writing`) and check that its params.yaml still holds this run's params:
        what is written belongs to the params the folder records, or is refused with one line."""
        return _Writing(self, what)

    @property
    def name(self) -> str:
        return self.params["study"]["name"]

    @property
    def kind(self) -> str:
        return self.params["study"]["kind"]

    @property
    def seed(self) -> int:
        return self.params["study"]["seed"]

    # metrics -----------------------------------------------------------------------------------
    def metrics(self) -> dict:
        """Everything logged so far (metrics.json), flat dotted keys."""
        try:
            return atomic.read_json(self.dir / METRICS, {})
        except ValueError as exc:
            raise RunError(str(exc)) from None

    def log_metrics(self, metrics: Mapping[str, Any], check: bool = True) -> dict:
        """Merge numbers into metrics.json (nested mappings become dotted keys); returns the merged set.

        Every key must be documented in treasure_lib/metric_keys.py (scans and the book read only
        documented keys; `check=False` for exploration). Read-merge-write under a lock and an atomic
        rename: a reader sees the old or the new file. NaN and inf are stored as null (undefined).
        """
        new = atomic.jsonable(dotted_items(metrics))
        if check:
            from .. import metric_keys

            metric_keys.check(new)
        for key, value in new.items():
            if not isinstance(value, (int, float, str, bool, type(None))):
                raise RunError(f"metric {key!r}: expected a number (or string/bool/null), got {type(value).__name__}")
        path = self.dir / METRICS
        with self.writing("logging metrics"), atomic.locked(self.dir / f".{METRICS}.lock"):
            merged = self.metrics()
            merged.update(new)
            atomic.write_json(path, merged)
        return merged

    # figures and artifacts ---------------------------------------------------------------------
    def save_figure(self, fig, name: str, formats: Iterable[str] = ("png",), dpi: int = 150) -> Path:
        """Save a matplotlib figure as figures/<name>.<fmt> (atomically); returns the first path."""
        with self.writing("saving a figure"):
            return self._save_figure(fig, name, formats, dpi)

    def _save_figure(self, fig, name: str, formats: Iterable[str], dpi: int) -> Path:
        paths = []
        for fmt in formats:
            path = self.figures / f"{name}.{fmt}"
            tmp = atomic.temp_name(path)
            try:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            paths.append(path)
        return paths[0]

    def stage(self, name: str, inputs: Mapping[str, Any], content=None) -> Stage:
        """A reusable artifact `artifacts/<name>`, rebuilt only when `inputs` change or what it holds no longer
        verifies (see `Stage`); built under the run folder's lock. `content(path)`: what the result is for the
        stages built from it (default: every file's sha256)."""
        return Stage(
            self.artifacts,
            name,
            inputs,
            shared=self.params["study"].get("shared_artifacts"),
            content=content,
            guard=lambda: self.writing(f"building stage {name}"),
        )

    def provenance(self) -> dict:
        return atomic.read_json(self.dir / PROVENANCE, {})


class _Writing:
    """`Run.writing`: the lock, then the check that the folder's params are the run's."""

    def __init__(self, run: Run, what: str):
        self.run, self.what = run, what
        self.held = lock.writing(run.dir, what)

    def __enter__(self):
        self.held.__enter__()
        try:
            _check_params(self.run, self.what)
        except BaseException:
            self.held.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self.held.__exit__(*exc)


_PARAMS_SEEN: dict = {}  # params.yaml path -> (mtime_ns, size, hash): read again only when it changed


def _check_params(run: Run, what: str) -> None:
    path = run.dir / PARAMS
    if not path.is_file():
        return  # a folder without params (a bare Run in a test): nothing to disagree with
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    seen = _PARAMS_SEEN.get(str(path))
    if seen is None or seen[0] != stamp:
        seen = (stamp, provenance.params_hash(config.read_yaml(path)))
        _PARAMS_SEEN[str(path)] = seen
    if seen[1] != provenance.params_hash(run.params):
        raise RunError(
            f"{path} now holds other params than this run was opened with (another open_run or "
            f"`treasure run` changed them); {what} would mix results of two sets of params: open the "
            f"run again"
        )


def _diff(a: Any, b: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in set(a) | set(b):
            yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")


def default_run_dir(study: StudyParams) -> Path:
    """runs/<study.kind>/<study.name>."""
    return Path("runs") / study.kind / study.name


OVERRIDES_HASH_CHARS = 8


def interactive_run_dir(study: StudyParams, overrides: Iterable[str] = ()) -> Path:
    """Where a chapter opened by hand writes: runs/<kind>/<name>, or `<name>-<8 hex of the overrides>` with overrides.

    The same overrides (in the same order: a later one wins) always name the same folder, so every chapter opened
    with them shares its artifacts, and the folder `make book` fills keeps its params and metrics."""
    base = default_run_dir(study)
    overrides = [str(o) for o in overrides]
    if not overrides:
        return base
    digest = text_sha256("\n".join(overrides))[:OVERRIDES_HASH_CHARS]
    return base.with_name(f"{base.name}-{digest}")


def open_run(
    params_file: str | Path = "params/default.yaml", run_dir: str | Path | None = None, overrides: Iterable[str] = ()
) -> Run:
    """Open (creating if needed) the run folder a chapter writes into.

    Resolves `params_file` + dotted `overrides` (treasure_lib.config.load) and records them as
    the folder's params.yaml. `run_dir` None means runs/<study.kind>/<study.name>, or with `overrides` a folder of
    their own beside it (`interactive_run_dir`): pass `run_dir` to write elsewhere on purpose. A relative
    `params_file` missing from the working directory is looked up in its parents, and the working
    directory moves there: JupyterLab starts a chapter's kernel in notebooks/, but params name
    files relative to the project root. provenance.json is written if the folder has none.
    """
    params_file = Path(params_file)
    if not params_file.is_absolute() and not params_file.is_file():
        root = _find_project_root(params_file)
        if root is None:
            raise RunError(f"params file not found: {params_file} (looked in {Path.cwd()} and its parents)")
        os.chdir(root)
        print(f"working directory: {root}")
    overrides = list(overrides)
    params = config.load([params_file], overrides)
    if run_dir:
        run_dir = Path(run_dir)
    else:
        run_dir = interactive_run_dir(params.study, overrides)
        if overrides:
            print(
                f"run folder: {run_dir} (overrides without a run_dir; {default_run_dir(params.study)} is left as it is)"
            )
    run = Run(run_dir, params)
    run.adopt_params()  # under the run folder's lock: refused while another process writes it
    if not (run_dir / PROVENANCE).is_file():
        with run.writing("recording provenance"):
            atomic.write_json(run_dir / PROVENANCE, provenance.collect(params, mode="interactive"))
    return run
