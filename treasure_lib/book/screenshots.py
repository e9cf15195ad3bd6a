"""Screenshots of the built book in headless Chromium: the results page and chapters 02, 04 and 06 of every study.

    python -m treasure_lib.book.screenshots [--html book/_build/html] [--out runs/screenshots]   # or: make screenshots

The book is reviewed as a physicist about to present it sees it, so each page is rendered at a laptop's width and
its whole height (up to `MAX_HEIGHT` pixels): a table cut off at the right, a figure too small to read or a stray
stderr box shows in the PNG. The page height is measured first (a copy of the page beside it, so its relative links
hold, reports `scrollHeight` into the DOM Chromium dumps), then the screenshot is taken with a window that tall.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

CHAPTERS = ("02", "04", "06")
WIDTH = 1280  # px: a laptop screen, sidebar shown
MAX_HEIGHT = 12000  # px: longer pages are cut (a PNG per page stays a few MB)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: Headless Chromium as root, offline, with nothing of its own to do (the book's browser tests use these too).
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
FLAGS = (*HEADLESS, "--hide-scrollbars", "--force-device-scale-factor=1")
PROBE = (
    '<script>window.addEventListener("load", () => { document.body.setAttribute("data-page-height", '
    "Math.ceil(document.documentElement.scrollHeight)); });</script></body>"
)


class ScreenshotError(RuntimeError):
    """Chromium is missing or could not render a page."""


def chromium() -> str | None:
    """The headless browser on PATH (Debian's `chromium`; `make browser` installs it), or None."""
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


def _book_order(html: Path) -> list[str]:
    """Study folders in the order of the book's navigation (as the results page links them)."""
    results = html / "results.html"
    text = results.read_text() if results.is_file() else ""
    return list(dict.fromkeys(re.findall(r'href="([\w.-]+)/\d{2}_[^"/]*\.html', text)))


def pages(html: str | Path, chapters: Sequence[str] = CHAPTERS) -> list[Path]:
    """The results page, then chapters `NN_*.html` of each study folder (in the book's order), that exist."""
    html = Path(html)
    found = [html / "results.html"]
    order = _book_order(html)
    studies = sorted(
        (p for p in html.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")) and p.name != "scans"),
        key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name),
    )
    for folder in studies:
        for number in chapters:
            found += sorted(folder.glob(f"{number}_*.html"))
    return [p for p in found if p.is_file()]


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise ScreenshotError(f"chromium did not finish within 120 s: {' '.join(cmd)}") from None


def page_height(browser: str, page: Path, profile: Path) -> int:
    """The rendered height of `page` at `WIDTH` [px]."""
    probe = page.with_name(f".{page.stem}.probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE, 1))
    try:
        proc = _run(
            browser, profile, f"--window-size={WIDTH},1000", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()
        )
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'data-page-height="(\d+)"', proc.stdout)
    if not found:
        raise ScreenshotError(f"chromium could not measure {page}: {proc.stderr.strip()[-500:]}")
    return int(found.group(1))


def shoot(page: Path, png: Path, browser: str, profile: Path, max_height: int = MAX_HEIGHT) -> Path:
    """One full-page PNG of `page`."""
    height = min(max(page_height(browser, page, profile), 600), max_height)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    proc = _run(
        browser,
        profile,
        f"--window-size={WIDTH},{height}",
        "--virtual-time-budget=5000",
        f"--screenshot={png}",
        page.as_uri(),
    )
    if not png.is_file():
        raise ScreenshotError(f"chromium wrote no screenshot of {page}: {proc.stderr.strip()[-500:]}")
    return png


def name_of(page: Path, html: Path) -> str:
    """`results.png`, `jet-flavour-tagging-02_tokenization.png`: the page's path in the book, flattened."""
    return "-".join(page.relative_to(html).with_suffix(".png").parts)


def take(
    html: str | Path = "book/_build/html",
    out: str | Path = "runs/screenshots",
    chapters: Sequence[str] = CHAPTERS,
    max_height: int = MAX_HEIGHT,
) -> list[Path]:
    """Screenshot the results page and chapters `chapters` of every study of the book in `html`; returns the PNGs."""
    html, out = Path(html).resolve(), Path(out).resolve()  # file:// URIs need absolute paths
    if not (html / "index.html").is_file():
        raise ScreenshotError(f"{html}: no built book (index.html missing); run `make book` first")
    browser = chromium()
    if browser is None:
        raise ScreenshotError("chromium not found: `make browser` installs Debian's chromium")
    with tempfile.TemporaryDirectory(prefix="treasure-chromium-") as profile:
        return [
            shoot(page, out / name_of(page, html), browser, Path(profile), max_height) for page in pages(html, chapters)
        ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", default="book/_build/html", help="the built book (default book/_build/html)")
    ap.add_argument("--out", default="runs/screenshots", help="where the PNGs go (default runs/screenshots)")
    ap.add_argument(
        "--chapters", nargs="+", default=list(CHAPTERS), metavar="NN", help="chapter numbers (default 02 04 06)"
    )
    ap.add_argument(
        "--max-height", type=int, default=MAX_HEIGHT, help=f"cut pages taller than this [px] (default {MAX_HEIGHT})"
    )
    args = ap.parse_args(argv)
    try:
        shots = take(args.html, args.out, args.chapters, args.max_height)
    except ScreenshotError as exc:
        print(f"screenshots: error: {exc}", file=sys.stderr)
        return 2
    for png in shots:
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
