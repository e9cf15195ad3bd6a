"""papermill's own engine (nbclient), with a hook as each cell starts and as it completes.

`treasure run` needs to know which cell runs (the status line), to tag the parameter cells for the book while they
are in the notebook papermill writes, and to copy each cell's stderr to the run's log as soon as the cell ends.
papermill calls `cell_start` and `cell_complete` on its execution manager for every cell (markdown cells too); this
engine wraps the two for one execution, so nothing global changes:

    papermill.execute_notebook(nb, out, engine_name=engine_name(), on_cell_start=f, on_cell_complete=g, ...)

`f(index, cell)` runs before papermill records the start (a change to the cell is saved with it); `g(index, cell)`
after the cell's outputs are complete (a failing cell included). An exception raised by a hook is not the
chapter's failure: it is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

NAME = "treasure"

Hook = Callable[[int, dict], None]


def _safely(hook: Hook | None, index, cell) -> None:
    if hook is None:
        return
    try:
        hook(index, cell)
    except Exception:  # noqa: BLE001 - a status line or log must never fail a chapter
        pass


@functools.cache
def engine_name() -> str:
    """Register the engine with papermill (once per process); returns its name for `engine_name=`."""
    from papermill.engines import NBClientEngine, papermill_engines

    class CellHooks(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls, nb_man, kernel_name, on_cell_start: Hook | None = None, on_cell_complete: Hook | None = None, **kwargs
        ):
            start, complete = nb_man.cell_start, nb_man.cell_complete

            def cell_start(cell, cell_index=None, **kw):
                _safely(on_cell_start, cell_index, cell)
                return start(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                result = complete(cell, cell_index, **kw)
                _safely(on_cell_complete, cell_index, cell)
                return result

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(NAME, CellHooks)
    return NAME
