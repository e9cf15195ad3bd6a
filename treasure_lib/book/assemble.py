"""Assemble the Jupyter Book source folder from run folders: intro, results, chapters, scans, _toc, _config.

Chapters are copied as executed notebooks and never re-executed: a chapter is taken only when
the run's status.json records it complete for the run's current params.yaml.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from .. import config
from ..config import ClassifyParams, StudyParams
from ..errors import TreasureError
from ..formatting import DASH
from ..runs import METRICS, PARAMS, PROVENANCE, Status, atomic, provenance
from . import results

MARKER = ".treasure-generated"  # only a folder holding this file is ever wiped

#: Settings that keep the build and the pages offline; they win over book/config.yml.
OFFLINE = {
    "only_build_toc_files": True,
    "execute": {"execute_notebooks": "off"},
    "launch_buttons": {
        "notebook_interface": "classic",
        "binderhub_url": "",
        "jupyterhub_url": "",
        "thebe": False,
        "colab_url": "",
        "deepnote_url": "",
    },
    "repository": {"url": "", "path_to_book": "", "branch": ""},
    "html": {
        "use_repository_button": False,
        "use_issues_button": False,
        "use_edit_page_button": False,
        "baseurl": "",
        "comments": {"hypothesis": False, "utterances": False},
        "analytics": {"google_analytics_id": "", "plausible_analytics_domain": ""},
    },
}


#: Settings that keep the pages to the study; they win over book/config.yml too. What a chapter wrote to stderr
#: (warnings, with the paths of the machine that ran it) is the run's business: `treasure run` keeps it in
#: `<run>/logs/run.log`. The parameter cells are left out by their `remove-cell` tag (runs.execute tags them).
PAGES = {"execute": {"stderr_output": "remove"}}


class BookError(TreasureError, RuntimeError):
    """A run folder or scan page cannot go into the book, or the build failed."""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "study"


def completed_notebooks(run_dir: Path) -> list[Path]:
    """The executed chapter notebooks of a run, in book order; an unfinished chapter is an error naming it."""
    params_file = run_dir / PARAMS
    if not params_file.is_file():
        raise BookError(f"{run_dir}: not a run folder (no {PARAMS}); run `treasure run --run-dir {run_dir}` first")
    current = provenance.params_hash(config.read_yaml(params_file))
    status = Status(run_dir)
    chapters = status.data["chapters"]
    if not chapters:
        raise BookError(f"{run_dir}: no executed chapter (status.json is empty or missing)")
    bad = []
    for name, entry in sorted(chapters.items()):
        if entry.get("state") != "complete":
            bad.append(f"{name} is {entry.get('state', 'unknown')}")
        elif entry.get("params_sha256") != current:
            bad.append(f"{name} ran with other params than {PARAMS}")
        elif not (run_dir / "notebooks" / f"{name}.ipynb").is_file():
            bad.append(f"{name}: notebooks/{name}.ipynb is missing")
    if bad:
        raise BookError(f"{run_dir}: chapters not ready for the book: {'; '.join(bad)} (re-run `treasure run`)")
    return [run_dir / "notebooks" / f"{name}.ipynb" for name in sorted(chapters)]


def results_page(studies: Sequence[tuple[str, Path]], rows_for: Callable[[StudyParams, ClassifyParams], list]) -> str:
    lines = [
        "# Results",
        "",
        "Every number on this page is read from the run's `metrics.json` when the book is built "
        "(`treasure_lib.book.results`). A classifier's number is the mean over its training seeds, "
        "with the test-sample uncertainty (a bootstrap of the test rows with the working point "
        "recomputed in every replicate) and the seed spread; an uncertainty is rounded to two "
        "significant figures and its value to match. "
        f"{DASH} means not recorded; {results.UNCONVERGED} marks a number from a model "
        "that did not finish learning.",
        "",
    ]
    for title, run_dir in studies:
        params = config.resolve(config.read_yaml(run_dir / PARAMS))
        metrics = atomic.read_json(run_dir / METRICS, {}) or {}
        prov = atomic.read_json(run_dir / PROVENANCE, {}) or {}
        git = prov.get("git", {})
        commit = str(git.get("commit", "unknown"))[:12]
        dirty = " with uncommitted changes" if git.get("dirty") is True else ""
        lines += [
            f"## {title}",
            "",
            f"Run folder `{run_dir}` (study `{params['study']['kind']}`, run `{params['study']['name']}`, "
            f"seed {params['study']['seed']}); code commit `{commit}`{dirty}; "
            f"finished {prov.get('finished') or 'unknown'} on {prov.get('device', {}).get('name', 'unknown')}.",
            "",
            results.tables(
                metrics,
                rows_for(params.study, params.classify)
                + results.anomaly_rows(params.anomaly, params.study, params.classify),
            ),
            "",
            results.resolution(metrics, params.study, params.classify),
            "",
        ]
    return "\n".join(lines)


_IMAGE_PATTERNS = (
    re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?"),  # ![alt](path "title")
    re.compile(r"^\s*(?:```+|:::+)\s*\{(?:figure|image)\}\s+(\S+)", re.M),  # ```{figure} path
    re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.I),  # <img src="path">
)


def copy_scan_page(page: Path, dest_dir: Path) -> Path:
    """Copy a scan summary page and the local figures it shows into `dest_dir`; returns the copy."""
    if not page.is_file():
        raise BookError(f"scan page not found: {page}")
    text = page.read_text()
    dest_dir.mkdir(parents=True, exist_ok=True)
    for pattern in _IMAGE_PATTERNS:
        for ref in pattern.findall(text):
            if "://" in ref or ref.startswith("data:"):
                continue
            rel = Path(ref)
            if rel.is_absolute() or ".." in rel.parts:
                raise BookError(f"{page}: figure {ref!r} must be a path inside the page's folder")
            src = page.parent / rel
            if not src.is_file():
                raise BookError(f"{page}: figure {ref!r} not found ({src})")
            (dest_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest_dir / rel)
    if not re.search(r"^#\s+\S", text, re.M):
        text = f"# {page.stem.replace('_', ' ')}\n\n{text}"
    out = dest_dir / page.name
    out.write_text(text)
    return out


def deep_merge(base: Mapping, override: Mapping) -> dict:
    return config.merge(base, override)


def book_config(template: Path | None, title: str | None) -> dict:
    base = config.read_yaml(template) if template and template.is_file() else {}
    cfg = deep_merge(deep_merge(base, OFFLINE), PAGES)
    if title:
        cfg["title"] = title
    cfg.setdefault("title", "TREASURE study book")
    return cfg


def write_source(
    source: Path,
    studies: Sequence[tuple[str, Path]],
    scan_pages: Sequence[Path],
    intro: Path,
    config_template: Path | None,
    title: str | None,
    rows_for: Callable[[StudyParams, ClassifyParams], list],
) -> None:
    """Write the whole book source folder `source` (wiped first; it must be ours or absent)."""
    notebooks = [completed_notebooks(run_dir) for _, run_dir in studies]  # every run is checked before any write
    if not intro.is_file():
        raise BookError(f"intro page not found: {intro}")
    if source.exists():
        if not (source / MARKER).is_file():
            raise BookError(f"{source} exists and was not made by build_book ({MARKER} missing); not touching it")
        shutil.rmtree(source)
    source.mkdir(parents=True)
    (source / MARKER).write_text("made by treasure_lib.book.build.build_book; rewritten on every build\n")
    shutil.copy2(intro, source / "intro.md")

    parts = []
    (source / "results.md").write_text(results_page(studies, rows_for))
    parts.append({"caption": "Results", "chapters": [{"file": "results"}]})
    used: set[str] = set()
    for (study_title, _), chapters in zip(studies, notebooks):
        folder = slug(study_title)
        while folder in used:
            folder += "-2"
        used.add(folder)
        (source / folder).mkdir()
        files = []
        for notebook in chapters:
            shutil.copy2(notebook, source / folder / notebook.name)
            files.append({"file": f"{folder}/{notebook.stem}"})
        parts.append({"caption": study_title, "chapters": files})
    if scan_pages:
        files = []
        for k, page in enumerate(scan_pages):
            copied = copy_scan_page(Path(page), source / "scans" / f"{k:02d}-{slug(Path(page).parent.name)}")
            files.append({"file": str(copied.relative_to(source).with_suffix(""))})
        parts.append({"caption": "Scans", "chapters": files})

    toc = {"format": "jb-book", "root": "intro", "parts": parts}
    (source / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (source / "_config.yml").write_text(yaml.safe_dump(book_config(config_template, title), sort_keys=False))
