"""The run's log, `<run>/logs/run.log`: what the chapters wrote to stderr, cell by cell, and how each chapter ended.

A chapter's warnings belong to the run, not to the page: the book leaves stderr out (`nb_output_stderr: remove`),
and `treasure run` copies every cell's stderr here as the cell finishes (and shows it in the terminal), with the
chapter and cell it came from. The file is appended to, run after run, with a header per `treasure run`; a
failing cell's traceback is written too. Lightning's routine notes never get this far (`treasure_lib.quiet`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path

LOG = Path("logs") / "run.log"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cell_stderr(cell: Mapping) -> str:
    """Everything a notebook cell wrote to stderr, in order."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = output.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))
    return "".join(parts)


def cell_error(cell: Mapping) -> str:
    """A failing cell's traceback as plain text ('' when the cell did not fail)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            text = "\n".join(output.get("traceback", [])) or f"{output.get('ename')}: {output.get('evalue')}"
            return ANSI.sub("", text)
    return ""


class RunLog:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOG

    def write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")

    def event(self, text: str) -> None:
        """A time-stamped line: a run starting, a chapter done or failed."""
        self.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}")

    def cell(self, chapter: str, where: str, stderr: str = "", error: str = "") -> None:
        """The stderr (and traceback) of one cell, under a header naming it; nothing when it wrote none."""
        if stderr.strip():
            self.write(f"--- {chapter}, {where}: stderr\n{stderr.rstrip()}")
        if error.strip():
            self.write(f"--- {chapter}, {where}: error\n{error.rstrip()}")
