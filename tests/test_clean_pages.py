"""Pages with nothing but the study: a chapter executed by `treasure run` and rendered into the book shows no stderr
box, no machine path and no parameter cell; what it wrote to stderr is kept in the run's log and shown in the
terminal; screenshots of the built book come out of headless Chromium."""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from treasure_lib import runs
from treasure_lib.book import screenshots
from treasure_lib.book.build import build_book

from .conftest import ROOT, inside
from .test_runs import CHAPTER_FAIL, PARAMETERS, make_project

SITE_PACKAGES_NOTE = "/opt/venv/lib/python3.11/site-packages/somelib/core.py:12: DeprecationWarning: old call"

# writes to stderr twice (a path of the machine, a warning) and to stdout once: only stdout is the study (the strings
# are split in the source, which the page shows, so only an output can put them on the page)
NOISY = (
    """\
# %% [markdown]
# # Noisy chapter
# A chapter whose cell writes warnings beside its result.

"""
    + PARAMETERS
    + '''
# %%
from treasure_lib import runs
run = runs.open_run(params_file, run_dir, overrides)

# %%
import sys
import warnings
print("'''
    + SITE_PACKAGES_NOTE.replace("site-", 'site-" "')
    + """", file=sys.stderr)
warnings.warn("the calibration " "file is older than the data")
print("the study says 42")
"""
)


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The noisy chapter run by `runs.execute` (the terminal captured) and its book built with -W."""
    tmp = tmp_path_factory.mktemp("pages")
    terminal = io.StringIO()
    with inside(tmp / "proj", tmp / "cache"):
        chapters = {"02_noisy": NOISY, "04_again": NOISY.replace("Noisy chapter", "Second chapter")}
        root = make_project(tmp / "proj", chapters)
        os.chdir(root)
        with contextlib.redirect_stderr(terminal):
            runs.execute(["params/toy.yaml"], "runs/jets/toy", cwd=root, log=lambda _: None)
        built = build_book(
            [("Jet flavour tagging", root / "runs/jets/toy")],
            out=tmp / "book",
            warnings_as_errors=True,
            templates=ROOT / "book",
        )
    return {"html": built, "run": root / "runs/jets/toy", "terminal": terminal.getvalue(), "tmp": tmp}


def test_the_rendered_chapter_holds_no_stderr_box_no_machine_path_and_no_parameter_cell(book):
    page = (book["html"] / "jet-flavour-tagging" / "02_noisy.html").read_text()
    assert "the study says 42" in page and "Noisy chapter" in page
    assert not re.search(r'class="[^"]*\bstderr\b', page), "a stderr output box is on the page"
    assert "site-packages" not in page and "calibration file" not in page
    text = html.unescape(re.sub(r"<[^>]+>", "", page))  # the code as a reader sees it, without highlighting
    assert "open_run(params_file, run_dir, overrides)" in text  # the chapter's own code stays
    for assignment in ("params_file = ", "run_dir = ", "overrides = "):  # the template's and papermill's cells
        assert assignment not in text, f"a parameter cell is on the page ({assignment.strip()})"
    assert "runs/jets/toy/params.yaml" not in text


def test_the_executed_notebook_tags_both_parameter_cells_and_keeps_its_stderr(book):
    nb = nbformat.read(book["run"] / "notebooks" / "02_noisy.ipynb", as_version=4)
    tagged = {
        tag: [c for c in nb.cells if tag in c.metadata.get("tags", [])]
        for tag in ("parameters", "injected-parameters", "remove-cell")
    }
    assert len(tagged["parameters"]) == len(tagged["injected-parameters"]) == 1
    assert tagged["remove-cell"] == tagged["parameters"] + tagged["injected-parameters"]
    stderr = [o for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert stderr, "the notebook is the record: its stderr stays in it, only the page leaves it out"


def test_a_cells_stderr_goes_to_the_run_log_and_the_terminal_with_its_chapter_and_cell(book):
    log = (book["run"] / "logs" / "run.log").read_text()
    assert "--- 02_noisy, cell 4: stderr" in log and "--- 04_again, cell 4: stderr" in log
    assert SITE_PACKAGES_NOTE in log and "UserWarning: the calibration file is older than the data" in log
    assert re.search(r"\] 02_noisy: done in \d+\.\d s", log)
    assert "treasure run into runs/jets/toy: 02_noisy, 04_again" in log
    assert "the study says 42" not in log, "stdout is the study, not the log"
    assert "02_noisy, cell 4 wrote to stderr (kept in runs/jets/toy/logs/run.log)" in book["terminal"]
    assert "the calibration file is older than the data" in book["terminal"]


def test_screenshots_of_the_results_page_and_chapters_are_pngs(book):
    if screenshots.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not installed (make test installs Debian's chromium)")
        pytest.skip("chromium not installed (make browser)")
    shots = screenshots.take(book["html"], book["tmp"] / "shots")
    assert [p.name for p in shots] == [
        "results.png",
        "jet-flavour-tagging-02_noisy.png",
        "jet-flavour-tagging-04_again.png",
    ]
    for png in shots:
        data = png.read_bytes()
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and width == screenshots.WIDTH
        assert 600 <= height <= screenshots.MAX_HEIGHT
        assert len(data) > 10_000, f"{png.name} looks blank"
    relative = Path(os.path.relpath(book["html"]))  # `make screenshots` passes book/_build/html, a relative path
    assert [p.name for p in screenshots.take(relative, Path(os.path.relpath(book["tmp"] / "again")), ["02"])] == [
        "results.png",
        "jet-flavour-tagging-02_noisy.png",
    ]


def test_the_book_config_removes_stderr_whatever_the_template_says(tmp_path):
    from treasure_lib.book.assemble import book_config

    template = tmp_path / "config.yml"
    template.write_text("execute: {stderr_output: show}\n")
    assert book_config(template, None)["execute"] == {"execute_notebooks": "off", "stderr_output": "remove"}


def test_executed_notebooks_record_stderr_as_json_streams(book):
    """What the log reads is what nbclient writes: stream outputs named stderr (guards a format change)."""
    data = json.loads((book["run"] / "notebooks" / "04_again.ipynb").read_text())
    names = {o.get("name") for c in data["cells"] for o in c.get("outputs", []) if o["output_type"] == "stream"}
    assert names == {"stdout", "stderr"}


def test_a_failing_cell_leaves_its_traceback_in_the_run_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project(tmp_path / "proj", {"01_fail": CHAPTER_FAIL})
    monkeypatch.chdir(root)
    with pytest.raises(runs.ChapterError, match="cell 3"):
        runs.execute(["params/toy.yaml"], "runs/jets/toy", cwd=root, log=lambda _: None)
    log = (root / "runs/jets/toy/logs/run.log").read_text()
    assert "--- 01_fail, cell 3: error" in log and "ValueError: no tracks in this toy" in log
    assert "01_fail: FAILED after" in log and "\x1b[" not in log  # plain text, no terminal colours
