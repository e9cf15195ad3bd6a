"""Execute chapters into a run folder with papermill: the `treasure run` command.

Each chapter `notebooks/NN_name.py` (jupytext percent format) becomes a notebook, gets the
parameters `params_file` (the run's params.yaml), `run_dir` and `overrides` injected after its
cell tagged `parameters`, and runs in the working directory (the project root), in book order.
The executed notebook is written as `.NN_name.running.ipynb` and renamed to `NN_name.ipynb` only
when every cell succeeded; a failure keeps it as `NN_name.failed.ipynb` and stops the run.

While a chapter runs, one terminal line says which cell runs and, while a model trains, its epoch and validation
loss (`live.StatusLine`); what a cell writes to stderr goes to `<run>/logs/run.log` and the terminal as the cell
ends (`runlog`). The two parameter cells (the chapter's and papermill's injected one) are tagged `remove-cell`
in the executed notebook: the book shows the study, not its plumbing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .. import config, progress
from ..hashing import file_sha256
from . import atomic, live, lock, provenance
from .chapters import Chapter, Status, discover, input_hashes, select
from .engine import engine_name
from .folder import PARAMS, PROVENANCE, Run, RunError, default_run_dir
from .runlog import RunLog, cell_error, cell_stderr

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"  # papermill's
#: Jupyter Book's tag for a cell the page leaves out entirely (input and output).
HIDDEN_TAG = "remove-cell"
#: Lines of a cell's stderr shown in the terminal (all of it is in the run's log).
TERMINAL_LINES = 20
#: The kernel's own log stays quiet (not ipykernel 7's note on unencrypted local TCP, on every chapter).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


class ChapterError(RunError):
    """A chapter raised: names the chapter, the cell (1-based, as in the .py file) and the exception."""

    def __init__(
        self,
        chapter: str,
        message: str,
        cell: int | None = None,
        source_line: str | None = None,
        ename: str | None = None,
        evalue: str | None = None,
        notebook: Path | None = None,
    ):
        self.chapter, self.cell, self.source_line = chapter, cell, source_line
        self.ename, self.evalue, self.notebook = ename, evalue, notebook
        super().__init__(message)


def _shown_path(path: Path, cwd: Path) -> str:
    """`path` relative to `cwd` when inside it (what a notebook shows), else absolute."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _to_notebook(chapter: Chapter):
    import jupytext

    try:
        nb = jupytext.read(chapter.source)
    except Exception as exc:  # noqa: BLE001 - jupytext raises many kinds; the file is what matters
        raise RunError(f"{chapter.source}: cannot be read as a jupytext notebook: {exc}") from None
    tagged = [i for i, cell in enumerate(nb.cells) if PARAMETERS_TAG in cell.metadata.get("tags", [])]
    if not tagged:
        raise RunError(
            f"{chapter.source}: no cell tagged '{PARAMETERS_TAG}' (start it with "
            f'`# %% tags=["{PARAMETERS_TAG}"]` and set params_file, run_dir, overrides there)'
        )
    return nb, tagged[0]


def cell_number(cell_index: int, parameters_index: int) -> int | None:
    """The 1-based number of a cell of the executed notebook as in the chapter's .py file (None: papermill's
    injected parameters cell, which follows the 'parameters' cell)."""
    if cell_index == parameters_index + 1:
        return None
    return cell_index + 1 - (1 if cell_index > parameters_index else 0)


def hide_parameters(cell) -> None:
    """Tag a parameter cell (the chapter's or papermill's) `remove-cell`, so the book leaves it out."""
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if (PARAMETERS_TAG in tags or INJECTED_TAG in tags) and HIDDEN_TAG not in tags:
        tags.append(HIDDEN_TAG)


def _excerpt(chapter: str, where: str, stderr: str, log_path: Path) -> str:
    lines = stderr.rstrip().splitlines()
    text = [f"{chapter}, {where} wrote to stderr (kept in {log_path}):", *("  " + ln for ln in lines[:TERMINAL_LINES])]
    if len(lines) > TERMINAL_LINES:
        text.append(f"  ... {len(lines) - TERMINAL_LINES} more lines in {log_path}")
    return "\n".join(text)


def _failure(chapter: Chapter, exc: BaseException, parameters_index: int, notebook: Path | None) -> ChapterError:
    where = f"; partial notebook: {notebook}" if notebook else ""
    cell_index = getattr(exc, "cell_index", None)
    if cell_index is None:
        text = f"{type(exc).__name__}: {exc}".strip()
        return ChapterError(
            chapter.name, f"chapter {chapter.name} ({chapter.source}) failed: {text}{where}", notebook=notebook
        )
    # papermill's index counts the injected parameters cell, which follows the 'parameters' cell
    cell = cell_number(cell_index, parameters_index)
    if cell is None:
        cell_text = "the injected parameters cell"
        first = ""
    else:
        first = next((line for line in exc.source.splitlines() if line.strip()), "")
        cell_text = f"cell {cell} (`{first.strip()}`)"
    message = f"chapter {chapter.name} ({chapter.source}) failed in {cell_text}: {exc.ename}: {exc.evalue}{where}"
    return ChapterError(
        chapter.name, message, cell=cell, source_line=first, ename=exc.ename, evalue=exc.evalue, notebook=notebook
    )


def run_chapter(
    chapter: Chapter, run_dir: Path, overrides: Sequence[str], cwd: Path, kernel_name: str = "python3"
) -> float:
    """Execute one chapter into run_dir/notebooks; returns its wall time [s] or raises ChapterError."""
    import papermill

    nb, parameters_index = _to_notebook(chapter)
    out_dir = run_dir / "notebooks"
    final = out_dir / f"{chapter.name}.ipynb"
    failed = out_dir / f"{chapter.name}.failed.ipynb"
    running = out_dir / f".{chapter.name}.running.ipynb"
    for stale in (final, failed, running):  # nothing of an earlier attempt may pass for this one
        stale.unlink(missing_ok=True)
    parameters = {
        "params_file": _shown_path(run_dir / PARAMS, cwd),
        "run_dir": _shown_path(run_dir, cwd),
        "overrides": list(overrides),
    }
    runlog = RunLog(run_dir)
    log_path = Path(_shown_path(runlog.path, cwd))
    total = len(nb.cells)
    start = time.perf_counter()
    quiet = os.environ.get(progress.ENV)
    os.environ[progress.ENV] = "1"  # the kernel inherits it: no progress bars in the executed notebook (the book)
    line = live.StatusLine(chapter.name)

    def started(index: int, cell) -> None:
        hide_parameters(cell)
        number = cell_number(index, parameters_index)
        if number is not None:
            line.cell(number, total)

    def completed(index: int, cell) -> None:
        number = cell_number(index, parameters_index)
        where = "the injected parameters cell" if number is None else f"cell {number}"
        stderr, error = cell_stderr(cell), cell_error(cell)
        runlog.cell(chapter.name, where, stderr, error)
        if stderr.strip():
            line.message(_excerpt(chapter.name, where, stderr, log_path))

    try:
        with line:
            papermill.execute_notebook(
                nb,
                str(running),
                parameters=parameters,
                kernel_name=kernel_name,
                language="python",
                progress_bar=False,
                log_output=False,
                cwd=str(cwd),
                extra_arguments=KERNEL_ARGUMENTS,
                engine_name=engine_name(),
                on_cell_start=started,
                on_cell_complete=completed,
            )
    except BaseException as exc:
        kept = None
        if running.is_file():
            os.replace(running, failed)
            kept = failed
        error = _failure(chapter, exc, parameters_index, kept)
        error.seconds = time.perf_counter() - start
        if isinstance(exc, Exception):
            raise error from None
        raise  # KeyboardInterrupt and friends: the caller records the failure, then they go on
    finally:
        if quiet is None:
            os.environ.pop(progress.ENV, None)
        else:
            os.environ[progress.ENV] = quiet
    os.replace(running, final)
    return time.perf_counter() - start


def execute(
    params_files: Iterable[str | Path],
    run_dir: str | Path | None = None,
    chapters: Iterable[str] | None = None,
    overrides: Iterable[str] = (),
    force: bool = False,
    notebooks_dir: str | Path = "notebooks",
    cwd: str | Path | None = None,
    kernel_name: str = "python3",
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Run the chapters (all, or those named) into `run_dir`; returns {chapter: "ran" | "skipped"}.

    Params are resolved from `params_files` + `overrides` and written as run_dir/params.yaml.
    A chapter is skipped when status.json records it complete with the same inputs hash (params,
    its source, the library, the chapter before it) unless `force`. The first failing chapter
    stops the run with a ChapterError. `run_dir` None means runs/<study.kind>/<study.name>;
    `cwd` (default: the working directory) is where chapters run, so relative params paths hold.
    """
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    chapters = [chapters] if isinstance(chapters, str) else chapters
    cwd = Path(os.path.abspath(cwd or os.getcwd()))
    params = config.load(list(params_files), overrides)
    run_dir = Path(run_dir) if run_dir else default_run_dir(params.study)
    every = discover(notebooks_dir)
    todo = select(every, chapters)
    hashes = input_hashes(every, params.to_dict())
    run_dir.mkdir(parents=True, exist_ok=True)
    with lock.writing(run_dir, "treasure run"):  # its chapter kernels (and their workers) write under it
        runlog = RunLog(run_dir)

        def say(message: str) -> None:  # the terminal and the run's log say the same
            log(message)
            runlog.event(message)

        run = Run(run_dir, params)
        run._adopt()  # (the lock is held: this process writes the folder)
        status = Status(run_dir)
        pending = [
            c
            for c in todo
            if force or not status.is_complete(c.name, hashes[c.name], run_dir / "notebooks" / f"{c.name}.ipynb")
        ]
        for chapter in pending:  # every chapter to run reads and has its parameters cell, before any runs
            _to_notebook(chapter)
        outcome = {c.name: "skipped" for c in todo}
        if not pending:
            for c in todo:
                log(f"{c.name}: up to date, skipped")
            return outcome
        runlog.event(
            f"treasure run into {run_dir}: {', '.join(c.name for c in pending)}"
            + (f"; overrides {' '.join(overrides)}" if overrides else "")
        )
        record = provenance.collect(params.to_dict(), mode="execute")
        record.update(chapters_run=[c.name for c in pending], overrides=overrides)
        atomic.write_json(run_dir / PROVENANCE, record)
        p_hash = provenance.params_hash(params.to_dict())
        try:
            for chapter in todo:
                if chapter not in pending:
                    log(f"{chapter.name}: up to date, skipped")
                    continue
                say(f"{chapter.name}: running ...")
                status.set(
                    chapter.name,
                    state="running",
                    inputs_sha256=hashes[chapter.name],
                    params_sha256=p_hash,
                    started=provenance.now(),
                    error=None,
                )
                try:
                    seconds = run_chapter(chapter, run_dir, overrides, cwd, kernel_name)
                except BaseException as exc:
                    seconds = getattr(exc, "seconds", None)
                    status.set(
                        chapter.name,
                        state="failed",
                        finished=provenance.now(),
                        error=str(exc) or repr(exc),
                        seconds=None if seconds is None else round(seconds, 3),
                    )
                    record.update(finished=provenance.now(), outcome=f"failed in {chapter.name}")
                    say(f"{chapter.name}: FAILED" + ("" if seconds is None else f" after {seconds:.1f} s"))
                    runlog.write(str(exc) or repr(exc))
                    raise
                notebook = run_dir / "notebooks" / f"{chapter.name}.ipynb"
                status.set(
                    chapter.name,
                    state="complete",
                    finished=provenance.now(),
                    seconds=round(seconds, 3),
                    notebook=f"notebooks/{chapter.name}.ipynb",
                    notebook_sha256=file_sha256(notebook),
                )
                run.log_metrics({f"run.{chapter.name}.seconds": round(seconds, 3)})
                outcome[chapter.name] = "ran"
                say(f"{chapter.name}: done in {seconds:.1f} s")
            record.update(finished=provenance.now(), outcome="complete")
        finally:
            if record.get("finished") is None:
                record.update(finished=provenance.now(), outcome="interrupted")
            atomic.write_json(run_dir / PROVENANCE, record)
    return outcome


# the `treasure run` command --------------------------------------------------------------------


def cmd_run(args) -> int:
    chapters = [c for c in (args.chapters or []) if "=" not in c] or None
    overrides = list(args.overrides or []) + [c for c in (args.chapters or []) if "=" in c] + list(args.override)
    files = args.params or ["params/default.yaml"]
    execute(files, args.run_dir, chapters=chapters, overrides=overrides, force=args.force, notebooks_dir=args.notebooks)
    return 0


def register(sub, add_params, _params=None) -> None:
    """Add `treasure run` to the CLI (cli._EXTRA_COMMANDS)."""
    p = sub.add_parser(
        "run",
        help="execute the chapters with papermill into a run folder "
        "(params.yaml, notebooks, metrics.json, provenance.json)",
    )
    add_params(p)
    p.add_argument("--run-dir", default=None, help="run folder (default runs/<study.kind>/<study.name>)")
    p.add_argument("--chapters", nargs="+", metavar="NAME", help="only these chapters, e.g. 01_data 02_tokenization")
    p.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override (repeatable), e.g. -o tokenizer.codebook_size=64",
    )
    p.add_argument("--force", action="store_true", help="re-run chapters even when their inputs did not change")
    p.add_argument("--notebooks", default="notebooks", help="folder of the NN_name.py chapters (default notebooks)")
    p.set_defaults(func=cmd_run)
