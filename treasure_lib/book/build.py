"""Build the study book: executed run folders rendered as a Jupyter Book 1.x (HTML), offline, without re-execution;
and `treasure book`, the command that does it.

    build_book([("Jet flavour tagging", "runs/jets/default")])  # -> book/_build/html/index.html

The book source is generated under `<out>/_generated/` (intro, results page, one part per study
with its executed chapters, scan pages, _toc.yml, _config.yml) from the templates
`book/intro.md` and `book/config.yml`; the HTML is built in a staging folder and moved to
`<out>/_build/html` only when the build succeeded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import ClassifyParams, StudyParams
from ..runs import atomic
from .assemble import BookError, write_source
from .results import headline_rows

GENERATED = "_generated"
REPO_BOOK = Path(__file__).resolve().parents[2] / "book"  # the templates of a source checkout


def _jupyter_book() -> list[str]:
    """The jupyter-book beside this Python (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / "jupyter-book"
    if here.is_file():
        return [str(here)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise BookError("jupyter-book not found: install the book extra (pip install -e '.[book]')")


def _templates(out: Path, templates: str | Path | None) -> Path:
    for folder in [Path(templates)] if templates else [out, REPO_BOOK]:
        if (folder / "intro.md").is_file():
            return folder
    raise BookError(f"book templates not found: expected intro.md in {templates or out} (or {REPO_BOOK})")


def build_book(
    run_dirs: Sequence[tuple[str, str | Path]],
    out: str | Path = "book",
    scan_pages: Sequence[str | Path] = (),
    warnings_as_errors: bool = False,
    templates: str | Path | None = None,
    title: str | None = None,
    rows: Callable[[StudyParams, ClassifyParams], list] = headline_rows,
    quiet: bool = True,
) -> Path:
    """Build the book from (study title, run folder) pairs; returns `<out>/_build/html`.

    `scan_pages`: markdown files of scan summaries (their local figures are copied with them).
    `templates`: the folder holding intro.md and config.yml (default: `out`, else the repo's book/).
    `rows`: (study, classify sections) -> [(label, key, err_key)], the results-page rows (default `headline_rows`).
    """
    out = Path(out)
    studies = [(str(t), Path(d)) for t, d in run_dirs]
    if not studies:
        raise BookError("build_book: no run folder given")
    folder = _templates(out, templates)
    source = out / GENERATED
    write_source(
        source, studies, [Path(p) for p in scan_pages], folder / "intro.md", folder / "config.yml", title, rows
    )

    build = out / "_build"
    staging = build / ".staging"
    atomic.remove_path(staging)
    staging.mkdir(parents=True)
    cmd = [*_jupyter_book(), "build", str(source), "--path-output", str(staging), "--builder", "html", "--all"]
    if warnings_as_errors:
        cmd += ["-W", "--keep-going"]
    if quiet:
        cmd += ["-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    built = staging / "_build" / "html"
    if proc.returncode != 0 or not (built / "index.html").is_file():
        log = (proc.stdout + "\n" + proc.stderr).strip().splitlines()
        raise BookError(f"jupyter-book build of {source} failed (exit {proc.returncode}):\n" + "\n".join(log[-40:]))
    html = build / "html"
    atomic.replace_path(built, html)
    atomic.remove_path(staging)
    return html


def cmd_book(args) -> int:
    runs = []
    for item in args.run:
        title, sep, path = item.rpartition("=")
        runs.append((title if sep else Path(path).name, path))
    html = build_book(runs, out=args.out, scan_pages=args.scan_page or (), warnings_as_errors=args.warnings_as_errors)
    print(f"book: {html / 'index.html'}")
    return 0


def register(sub, add_params=None, _params=None) -> None:
    """Add `treasure book` to the CLI (cli._EXTRA_COMMANDS)."""
    p = sub.add_parser("book", help="build the Jupyter Book (HTML) from executed run folders, without re-executing")
    p.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="TITLE=RUN_DIR",
        help="a study part: its title and run folder, e.g. 'Jet flavour tagging=runs/jets/default' (repeatable)",
    )
    p.add_argument("--scan-page", action="append", metavar="MD", help="a scan summary page (markdown; repeatable)")
    p.add_argument(
        "--out", default="book", help="book folder (default book): source in _generated/, HTML in _build/html/"
    )
    p.add_argument("-W", "--warnings-as-errors", action="store_true", help="fail on any Sphinx warning")
    p.set_defaults(func=cmd_book)
