"""Where a CLI step (`treasure train-tokenizer`, `export`, `pretrain`, `classify`) writes: through the run's stages,
or into a folder of its own; never silently into a folder a stage owns.

- Without output locations in the params (the default), a step is a stage of the run folder
  `runs/<kind>/<name>`: it holds the folder's lock, makes its params.yaml hold the step's params (the earlier
  metrics move aside when they differ, as with `treasure run`), and builds the stage exactly as the chapters do,
  with the stages it needs. A later `treasure run` with other params sees the stage's inputs differ and rebuilds it.
- With an output location (`tokenizer.output_dir=...`, `export.output_dir=...`, ...) or under a launcher (torchrun,
  srun: every rank runs the command), a step writes where the params say (under the run folder's lock when that
  lies inside it), and its numbers go beside its outputs, never into a run's metrics.json. A location that is a
  stage's folder (it has a `<folder>.stage.json` record) is refused with one line: writing there would change
  what the stage built behind its record.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import DataParams
    from .folder import Run


def through_stages(*locations: str | None) -> bool:
    """The step builds the run's stage (none of the locations it reads or writes is given (each command passes its
    own: `export` its output and cards folders, ...), one process); else it writes where they say."""
    from ..distributed import launched

    return not launched() and all(location is None for location in locations)


def stage_owning(path: str | Path) -> Path | None:
    """The stage folder `path` is (or lies inside), by its record beside it; None when no stage owns it."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if folder.name and folder.with_name(f"{folder.name}.stage.json").is_file():
            return folder
    return None


def refuse_stage_folder(key: str, path: str | Path) -> None:
    """One line when a step would write into a folder a stage owns."""
    owner = stage_owning(path)
    if owner is not None:
        raise ConfigError(
            f"{key}={path}: {owner} is a stage's folder (recorded in {owner.name}.stage.json); a direct "
            f"command would change what it holds behind its record. Leave the output locations unset to "
            f"build the run's stage, or give a folder of its own"
        )


def direct(command: str, key: str, path: str | Path, run_dir: Path):
    """The context a direct step writes `path` in: refused when a stage owns it; under the lock of the run folder
    `run_dir` (`runs/<kind>/<name>`) when it lies inside it (not under a launcher: there every rank runs the command,
    rank 0 writes)."""
    import contextlib

    from ..distributed import launched
    from . import lock

    refuse_stage_folder(key, path)
    inside = Path(path).absolute().is_relative_to(run_dir.absolute())
    return lock.writing(run_dir, f"treasure {command}") if inside and not launched() else contextlib.nullcontext()


def build(command: str, data: DataParams, open_run: Callable[[], Run], log=print) -> dict:
    """Run a step as the stage of the run folder `open_run()` opens (`runs/<kind>/<name>` with the step's params): the
    folder's params.yaml comes to hold them first. Returns {"path": artifact, "metrics": numbers logged (if any)}."""
    from ..io.h5 import expand_files
    from ..study import stages
    from . import atomic, lock, provenance
    from .folder import PROVENANCE

    expand_files(data.files)  # no input file is one clear error, before anything is written
    run = open_run()
    run_dir = run.dir
    with lock.writing(run_dir, f"treasure {command}"):
        run._adopt()  # (the lock is held here)
        if not (run_dir / PROVENANCE).is_file():
            atomic.write_json(run_dir / PROVENANCE, provenance.collect(run.params, mode=f"treasure {command}"))
        if command == "classify":
            numbers = stages.classifier(run)
            return {"path": run.artifacts, "metrics": numbers}
        build_stage = {"train-tokenizer": stages.tokenizers, "export": stages.tokens, "pretrain": stages.pretrained}
        path = build_stage[command](run)
        log(f"{command}: {path} (the {path.name} stage of {run_dir})")
        return {"path": path, "metrics": {}}
