"""What a running chapter is doing, on one updating terminal line: the chapter, its cell, the model in training.

    04_leakage: cell 12/31, 3:05 | classifier flavour/tokens: epoch 4/20, val loss 0.6123

The runner (`treasure run`, `make book`) knows which cell papermill executes; only the kernel knows which model
trains. The kernel side (`report`, called by the Lightning callback `treasure_lib.epoch_report.EpochReport`) writes
a small JSON file whose path the runner hands down in the environment (`TREASURE_LIVE_FILE`, inherited by the
kernel and the workers it spawns); a thread of the runner reads it twice a second and redraws the line. The
callback prints nothing, so nothing of it reaches a notebook or the book. Off a terminal (a pipe, CI's log) no line
is drawn: the runner's own messages are all there is.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

ENV = "TREASURE_LIVE_FILE"


def report(**fields) -> None:
    """Kernel side: tell the runner what trains now (nothing happens outside `treasure run`).

    The file is replaced atomically, so the runner never reads half of it; a write that fails is dropped (the line is
    a courtesy, never a reason to fail a chapter)."""
    path = os.environ.get(ENV)
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as fh:
            json.dump({**fields, "time": time.time()}, fh)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def read(path: str | Path) -> dict:
    """The last report, or {} when there is none (or it cannot be read just now)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def describe(fields: dict) -> str:
    """`classifier flavour/tokens: epoch 4/20, val loss 0.6123` from a report ('' when it names no model)."""
    what = fields.get("what")
    if not what:
        return ""
    text = f"{what}: epoch {fields.get('epoch', '?')}"
    if fields.get("max_epochs"):
        text += f"/{fields['max_epochs']}"
    loss = fields.get("val_loss")
    if isinstance(loss, (int, float)):
        text += f", val loss {loss:.4g}"
    return text


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class StatusLine:
    """One terminal line, redrawn while a chapter runs; a context manager that sets `TREASURE_LIVE_FILE` meanwhile.

    `cell(n, of)` says which cell runs; `message(text)` prints a lasting line above it (a warning the chapter wrote).
    `draw=None` draws only when `stream` is a terminal."""

    def __init__(self, chapter: str, stream: TextIO | None = None, interval: float = 0.5, draw: bool | None = None):
        self.chapter = chapter
        self.stream = stream or sys.stderr
        self.interval = interval
        self.draw = bool(getattr(self.stream, "isatty", lambda: False)()) if draw is None else draw
        self.number, self.total = 0, 0
        self.cell_started = self.started = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False
        self._env_before: str | None = None
        self.file: Path | None = None

    # the context: the file the kernel reports to, and the drawing thread ------------------------------------
    def __enter__(self) -> StatusLine:
        fd, name = tempfile.mkstemp(prefix="treasure-live-", suffix=".json")
        os.close(fd)
        self.file = Path(name)
        self._env_before = os.environ.get(ENV)
        os.environ[ENV] = str(self.file)  # the kernel papermill starts next inherits it
        if self.draw:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._clear()
        if self._env_before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._env_before
        if self.file is not None:
            self.file.unlink(missing_ok=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.redraw()

    # what is shown ------------------------------------------------------------------------------------------
    def cell(self, number: int, total: int) -> None:
        self.number, self.total, self.cell_started = number, total, time.time()
        if self.draw:
            self.redraw()

    def text(self) -> str:
        """The line as it reads now; the training report only while it is newer than the running cell."""
        where = f"cell {self.number}/{self.total}" if self.number else "starting its kernel"
        text = f"{self.chapter}: {where}, {_clock(time.time() - self.started)}"
        fields = read(self.file) if self.file is not None else {}
        if fields.get("time", 0) >= self.cell_started and describe(fields):
            text += f" | {describe(fields)}"
        return text

    def redraw(self) -> None:
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)  # a wrapped line cannot be redrawn
        with self._lock:
            self.stream.write("\r" + self.text()[:width] + "\033[K")
            self.stream.flush()
            self._shown = True

    def message(self, text: str) -> None:
        """Print `text` as lasting lines above the status line (which is drawn again at the next tick)."""
        with self._lock:
            self._clear()
            self.stream.write(text.rstrip("\n") + "\n")
            self.stream.flush()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
