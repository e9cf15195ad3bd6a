"""Whether long work shows a progress bar: yes at a terminal and in JupyterLab, no in a chapter executed for the
book (`treasure run` sets TREASURE_NO_PROGRESS=1 for its kernels: thousands of bar updates would fill the pages)."""

from __future__ import annotations

import os

ENV = "TREASURE_NO_PROGRESS"


def shown(wanted: bool = True) -> bool:
    return bool(wanted) and os.environ.get(ENV, "") not in ("1", "true", "yes")
