"""The one updating terminal line of `treasure run`: chapter, cell n of N, and the model in training with its epoch and
validation loss, from the file the kernel reports to; a warning is printed above it, never into it."""

from __future__ import annotations

import io
import os
import time

from treasure_lib.runs import live


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_shows_the_cell_and_the_training_the_kernel_reports():
    terminal = Terminal()
    with live.StatusLine("04_leakage", stream=terminal, interval=60) as line:
        assert os.environ[live.ENV] == str(line.file)  # what the kernel papermill starts inherits
        assert line.text() == "04_leakage: starting its kernel, 0:00"
        line.cell(12, 31)
        assert line.text().startswith("04_leakage: cell 12/31, 0:0")
        live.report(what="classifier flavour/tokens", epoch=4, max_epochs=20, val_loss=0.61234)
        assert line.text().endswith(" | classifier flavour/tokens: epoch 4/20, val loss 0.6123")
        line.redraw()
        assert terminal.getvalue().endswith("\r" + line.text() + "\033[K")
        line.message("04_leakage, cell 12 wrote to stderr")
        assert terminal.getvalue().endswith("\r\033[K04_leakage, cell 12 wrote to stderr\n")
    assert live.ENV not in os.environ and not line.file.exists()


def test_a_report_from_an_earlier_cell_is_not_shown():
    with live.StatusLine("06_classification", stream=io.StringIO(), draw=False) as line:
        live.report(what="classifier flavour/raw", epoch=9, max_epochs=9, val_loss=0.4)
        time.sleep(0.01)
        line.cell(5, 20)
        assert line.text() == "06_classification: cell 5/20, 0:00"


def test_off_a_terminal_nothing_is_drawn():
    pipe = io.StringIO()
    with live.StatusLine("01_data", stream=pipe) as line:
        line.cell(1, 9)
        line.message("a warning")
    assert pipe.getvalue() == "a warning\n"


def test_reports_outside_treasure_run_go_nowhere(monkeypatch, tmp_path):
    monkeypatch.delenv(live.ENV, raising=False)
    live.report(what="tokenizer tracks", epoch=1)  # no file named: nothing happens, nothing fails
    assert live.read(tmp_path / "missing.json") == {}
    assert (
        live.describe({"what": "pretraining", "epoch": 2, "max_epochs": None, "val_loss": None})
        == "pretraining: epoch 2"
    )
