"""The study book: built from a toy run folder with Sphinx warnings as errors, read back as HTML,
opened in headless Chromium, and the chapters served as notebooks by a Jupyter Server.

Chromium comes from Debian (`make test` installs it when missing); without it these browser
tests skip locally and fail in CI.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from treasure_lib import runs
from treasure_lib.book.assemble import BookError, completed_notebooks
from treasure_lib.book.build import build_book
from treasure_lib.book.screenshots import HEADLESS
from treasure_lib.runs import provenance

from .conftest import inside
from .test_runs import PARAMETERS, make_project

ROOT = Path(__file__).resolve().parents[1]

# numbers for every kind of results-table cell: tokens and raw with uncertainties, one side missing,
# single values, a large number
CHAPTER = (
    """\
# %% [markdown]
# # Toy results
# Logs headline numbers and shows a figure.

"""
    + PARAMETERS
    + """
# %%
from treasure_lib import runs
run = runs.open_run(params_file, run_dir, overrides)

# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.hist([0.1, 0.2, 0.2, 0.7], bins=4)
run.save_figure(fig, "scores")
c = "classify.flavour"
run.log_metrics({
    f"{c}.tokens.light_rejection_at_77": 312.44, f"{c}.tokens.light_rejection_at_77_err": 12.3,
    f"{c}.raw.light_rejection_at_77": 198.71, f"{c}.raw.light_rejection_at_77_err": 9.87,
    f"{c}.tokens.c_rejection_at_77": 4.56789, f"{c}.tokens.c_rejection_at_77_err": 0.0321,
    f"{c}.tokens.auc_macro": 0.912345, f"{c}.tokens.auc_macro_err": 0.00412,
    f"{c}.raw.auc_macro": 0.8811, f"{c}.raw.auc_macro_err": 0.0051,
    "tokenizer.jets.track_sum_pt.response_iqr_over_median": 0.1234567,
    "tokenizer.jets.track_sum_pt.response_iqr_over_median_err": 0.0008765,
    "codebook.tracks.level_1.utilization": 0.87654321,
    "pretrain.masked_accuracy": 0.25,
    "export.rows_per_s": 123456.7,
})
plt.show()
"""
)

SCAN_PAGE = """\
# Codebook size scan

AUC against codebook size.

![AUC vs K](figures/auc_vs_k.png)
"""


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([64, 512, 8192], [0.85, 0.88, 0.9], marker="o")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One toy run, executed once, and its book built with -W."""
    tmp = tmp_path_factory.mktemp("book")
    with inside(tmp / "proj", tmp / "cache"):
        root = make_project(tmp / "proj", {"01_results": CHAPTER})
        os.chdir(root)
        runs.execute(["params/toy.yaml"], "runs/jets/toy", cwd=root, log=lambda _: None)
        scan = root / "runs" / "scans" / "codebook_size"
        scan.mkdir(parents=True)
        (scan / "summary.md").write_text(SCAN_PAGE)
        _png(scan / "figures" / "auc_vs_k.png")
        html_dir = build_book(
            [("Jet flavour tagging", root / "runs/jets/toy")],
            out=tmp / "book",
            scan_pages=[scan / "summary.md"],
            warnings_as_errors=True,
            templates=ROOT / "book",
        )
    return {"html": html_dir, "book": tmp / "book", "run": root / "runs/jets/toy", "tmp": tmp}


def test_book_holds_intro_results_chapter_and_scan_pages(built):
    html_dir = built["html"]
    assert html_dir == built["book"] / "_build" / "html"
    for page in ("index.html", "intro.html", "results.html", "jet-flavour-tagging/01_results.html"):
        assert (html_dir / page).is_file(), page
    scan_pages = list(html_dir.glob("scans/*/summary.html"))
    assert len(scan_pages) == 1
    chapter = (html_dir / "jet-flavour-tagging" / "01_results.html").read_text()
    assert "Toy results" in chapter and "<img" in chapter  # executed: its figure is shown
    assert "runs/jets/toy/params.yaml" not in chapter  # the injected parameters cell is not (test_clean_pages.py)
    assert "Using your own H5 files" in (html_dir / "intro.html").read_text()
    assert not (built["book"] / "_build" / ".staging").exists()


def test_book_copies_executed_notebooks_and_never_executes(built):
    source = built["book"] / "_generated"
    cfg = yaml.safe_load((source / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert not any(cfg["launch_buttons"][k] for k in ("binderhub_url", "jupyterhub_url", "colab_url", "thebe"))
    assert cfg["html"]["use_repository_button"] is False and cfg["repository"]["url"] == ""
    copied = source / "jet-flavour-tagging" / "01_results.ipynb"
    assert copied.read_bytes() == (built["run"] / "notebooks" / "01_results.ipynb").read_bytes()
    toc = yaml.safe_load((source / "_toc.yml").read_text())
    assert [p["caption"] for p in toc["parts"]] == ["Results", "Jet flavour tagging", "Scans"]


def test_pages_load_nothing_from_the_network(built):
    for page in built["html"].rglob("*.html"):
        text = page.read_text()
        external = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(https?://[^\"]+)\"", text)
        assert not external, f"{page.name} loads {external}"


class _Tables(HTMLParser):
    """Rows of every <table> as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(html.unescape("".join(self._cell)).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _matches(shown: str, value: float) -> bool:
    """`shown` is `value` rounded to the digits shown (trailing zeros of a whole number are not significant)."""
    decimals = len(shown.split(".")[1]) if "." in shown else -(len(shown) - len(shown.rstrip("0")))
    return abs(float(shown) - value) <= 0.5 * 10**-decimals + 1e-12


def test_every_number_on_the_results_page_equals_its_metrics_value(built):
    """Each table of the results page is followed by the metrics.json keys of its rows: every shown number is its
    key's value, rounded by the one rule (uncertainty to two significant figures)."""
    metrics = json.loads((built["run"] / "metrics.json").read_text())
    source = (built["book"] / "_generated" / "results.md").read_text()
    checked = 0
    for table, note in re.findall(r"((?:^\|.*\|\n)+)\n<small>(.*?)</small>", source, re.M):
        keys = re.findall(r"`([^`]+)`", note)
        lines = [line.strip("|").split("|") for line in table.strip().splitlines()]
        header, body = [c.strip() for c in lines[0]], [[c.strip() for c in r] for r in lines[2:]]
        assert len(keys) == len(body), (keys, body)
        for key_pattern, row in zip(keys, body):
            for column, cell in zip(header[1:], row[1:]):
                variant = {"Tokens, from scratch": "tokens", "Raw features": "raw", "Value": None}.get(column, "skip")
                if variant == "skip":
                    continue
                key = re.sub(r"\{[^}]*\}", variant, key_pattern) if variant else key_pattern
                if cell == "\u2014":
                    assert key not in metrics
                    continue
                value, _, err = cell.split(" (seed spread")[0].partition(" ± ")
                assert _matches(value, metrics[key]), (key, cell, metrics[key])
                if err:
                    assert _matches(err, metrics[key + "_err"]), (key, cell)
                    assert len(err.replace(".", "").lstrip("0")) == 2  # two significant digits of the uncertainty
                checked += 1
    assert checked == 9  # 2 x 3 compared rows minus one missing raw cell, plus 4 single values
    page = (built["html"] / "results.html").read_text()
    assert "0.9123 ± 0.0041" in page and "312 ± 12" in page and "123000" in page


def test_the_results_page_formats_numbers_as_the_chapters_do():
    """One rule everywhere (`formatting`): the results page quotes a seed mean exactly as a chapter's sentence does,
    the uncertainty to two significant figures, the value to match, the seed spread in brackets, an undefined
    uncertainty said to be undefined and a missing number as a dash."""
    from treasure_lib.book.results import tables
    from treasure_lib.study.wording import value_text

    key = "classify.flavour.tokens.light_rejection_at_77"
    row = [("Light rejection", key, key + "_err")]
    for summary, text in [
        ({"s": 20.7, "s_err": 2.04, "s_seed_std": 1.1}, "20.7 ± 2.0 (seed spread 1.10)"),
        ({"s": 0.912345, "s_err": 0.00412}, "0.9123 ± 0.0041"),
        ({"s": 312.44, "s_err": 12.3}, "312 ± 12"),
        ({"s": 15.5, "s_err": float("nan"), "s_seed_std": 5.47}, "15.5 ± undefined (too few jets) (seed spread 5.47)"),
        ({"s": 42}, "42"),
        ({"s": float("nan"), "s_err": 0.1}, "\u2014"),
    ]:
        metrics = {key + k[1:]: v for k, v in summary.items()}
        assert value_text(summary, "s") == text
        assert f"| Light rejection | {text} |" in tables(metrics, row), text


def test_a_number_from_an_unconverged_model_is_marked_and_keys_are_not_a_column():
    from treasure_lib.book.results import UNCONVERGED, tables

    metrics = {
        "classify.flavour.tokens.light_rejection_at_77": 20.7,
        "classify.flavour.tokens.light_rejection_at_77_err": 2.04,
        "classify.flavour.tokens.light_rejection_at_77_seed_std": 1.1,
        "classify.flavour.tokens.converged": 1.0,
        "classify.flavour.raw.light_rejection_at_77": 78.0,
        "classify.flavour.raw.light_rejection_at_77_err": 9.0,
        "classify.flavour.raw.converged": 0.0,
    }
    rows = [
        (
            "Light rejection",
            "classify.flavour.{variant}.light_rejection_at_77",
            "classify.flavour.{variant}.light_rejection_at_77_err",
        )
    ]
    page = tables(metrics, rows)
    header, _, body = page.splitlines()[:3]
    assert "metrics.json" not in header and "20.7 ± 2.0 (seed spread 1.10)" in body
    assert f"78.0 ± 9.0 {UNCONVERGED}" in body
    assert "did not finish learning" in page


def test_unfinished_or_stale_chapters_are_refused(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "notebooks").mkdir(parents=True)
    params = {"study": {"name": "x", "kind": "jets", "seed": 1}}
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    (run_dir / "notebooks" / "01_a.ipynb").write_text("{}")
    current = provenance.params_hash(params)

    def status(**chapters):
        (run_dir / "status.json").write_text(json.dumps({"chapters": chapters}))

    status(**{"01_a": {"state": "complete", "params_sha256": current}})
    assert completed_notebooks(run_dir) == [run_dir / "notebooks" / "01_a.ipynb"]
    status(**{"01_a": {"state": "complete", "params_sha256": current}, "02_b": {"state": "failed"}})
    with pytest.raises(BookError, match="02_b is failed"):
        completed_notebooks(run_dir)
    status(**{"01_a": {"state": "complete", "params_sha256": "other"}})
    with pytest.raises(BookError, match="01_a ran with other params"):
        completed_notebooks(run_dir)
    with pytest.raises(BookError, match="not a run folder"):
        build_book([("x", tmp_path / "nothing")], out=tmp_path / "book", templates=ROOT / "book")


# --- headless Chromium -------------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("chromium not installed (make test installs Debian's chromium)")
    pytest.skip("chromium not installed (apt-get install -y chromium, or make test)")


def _chromium_args(tmp: Path) -> list[str]:
    profile = tmp / f"chromium-profile-{time.monotonic_ns()}"
    return [_chromium(), *HEADLESS, f"--user-data-dir={profile}"]


PROBE = (
    '<script>window.addEventListener("load", () => { for (const img of document.images) {'
    ' img.setAttribute("data-natural-width", img.naturalWidth); } document.body.setAttribute("data-probed", "1"); });'
    "</script></body>"
)


def _images_as_shown(page: Path, tmp: Path) -> list[dict]:
    """The <img> elements of `page` after Chromium loaded it, with the pixel width it decoded."""
    probe = page.with_name(page.stem + ".probe.html")  # beside the page, so relative paths still hold
    probe.write_text(page.read_text().replace("</body>", PROBE))
    try:
        proc = subprocess.run(
            [*_chromium_args(tmp), "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        probe.unlink()
    assert 'data-probed="1"' in proc.stdout, proc.stderr[-2000:]
    images = []
    for tag in re.findall(r"<img\b[^>]*>", proc.stdout):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        images.append({"src": html.unescape(attrs["src"]), "width": int(attrs.get("data-natural-width", 0))})
    return images


def _assert_png_shown(page: Path, tmp: Path) -> None:
    images = _images_as_shown(page, tmp)
    assert images, f"{page}: no <img>"
    for img in images:
        target = (page.parent / img["src"].split("?")[0]).resolve()
        assert target.is_file() and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", img
        assert target.stat().st_size > 1000 and img["width"] > 0, img


def test_chromium_shows_the_chapter_and_scan_figures(built):
    _assert_png_shown(built["html"] / "jet-flavour-tagging" / "01_results.html", built["tmp"])
    _assert_png_shown(next(built["html"].glob("scans/*/summary.html")), built["tmp"])


def test_chromium_screenshot_of_the_results_page(built):
    shot = built["tmp"] / "results.png"
    subprocess.run(
        [
            *_chromium_args(built["tmp"]),
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            (built["html"] / "results.html").as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


# --- Jupyter Server: .py chapters open as notebooks ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _get(url: str, token: str | None) -> tuple[int, dict]:
    """(HTTP status, JSON body); status 0 while nothing listens yet."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    try:
        with _LOCAL.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except urllib.error.URLError:
        return 0, {}


def test_jupyter_server_serves_py_chapters_as_notebooks(tmp_path):
    pytest.importorskip("jupyter_server")
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy2(ROOT / "jupytext.toml", root / "jupytext.toml")
    (root / "notebooks" / "01_data.py").write_text(CHAPTER)
    chapters = ["01_data.py"]
    for real in sorted((ROOT / "notebooks").glob("[0-9]*_*.py")):  # the repository's chapters, when there are any
        shutil.copy2(real, root / "notebooks" / f"repo_{real.name}")
        chapters.append(f"repo_{real.name}")

    port, token = _free_port(), "treasure-test-token"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    jupyter = Path(sys.executable).with_name("jupyter")
    server = subprocess.Popen(
        [
            str(jupyter),
            "server",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--ServerApp.port_retries=0",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{base}/api/status", token)[0] != 200:
            assert server.poll() is None and time.monotonic() < deadline, "jupyter server did not start"
            time.sleep(0.5)
        assert _get(f"{base}/api/contents/notebooks/01_data.py?type=notebook", None)[0] == 403  # token auth
        for name in chapters:
            code, model = _get(f"{base}/api/contents/notebooks/{name}?type=notebook", token)
            assert code == 200 and model["type"] == "notebook" and model["format"] == "json", name
            cells = model["content"]["cells"]
            assert any("parameters" in c["metadata"].get("tags", []) for c in cells), name
        cells = _get(f"{base}/api/contents/notebooks/01_data.py?type=notebook", token)[1]["content"]["cells"]
        assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "code"]
        assert cells[1]["source"].startswith("params_file =")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_statistic_keeps_its_acronyms_when_it_starts_a_row():
    from treasure_lib.study import names

    assert names.first_upper(names.statistic("auc_b")) == "B vs rest AUC"
    assert names.first_upper(names.statistic("auc")) == "ROC AUC", "str.capitalize would print 'Roc auc'"


def _report_threads(job: tuple) -> float:
    """A stand-in study for `_side_by_side`: note this process's thread settings and id in the run folder."""
    import json
    import os

    _, run_dir, _ = job
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    seen = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    (Path(run_dir) / "threads.json").write_text(json.dumps({"env": seen, "pid": os.getpid()}))
    return 0.0


def test_studies_side_by_side_run_in_other_processes_with_one_thread_each(tmp_path, monkeypatch, capsys):
    """Two studies at once on a few cores: every process they start has one OpenMP/BLAS thread (a multi-threaded
    step beside the other study's workers spins against them), and this process's settings come back unchanged."""
    import json
    import os

    from treasure_lib.book.main import ONE_THREAD, _side_by_side

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    runs = [("a", tmp_path / "a"), ("b", tmp_path / "b")]
    _side_by_side([("a", "a.yaml"), ("b", "b.yaml")], runs, False, run_one=_report_threads)
    seen = [json.loads((d / "threads.json").read_text()) for _, d in runs]
    assert all(s["env"] == {k: "1" for k in ONE_THREAD} for s in seen)
    assert os.getpid() not in {s["pid"] for s in seen}
    assert os.environ["OMP_NUM_THREADS"] == "2" and "OPENBLAS_NUM_THREADS" not in os.environ
    assert f"== study {tmp_path / 'a'}: 0 s" in capsys.readouterr().out
