"""Multi-device training with Lightning DDP: who is the main process, merging per-rank tallies, and launching.

Training params carry `devices`, `num_nodes` and `strategy`. Under a launcher that starts one
process per device (`torchrun`, or `srun` on Slurm: Lightning reads its environment) every
process trains on its own share of the data; only the main process (global rank 0) evaluates
the saved weights on one device and writes cards, metrics and predictions.

A chapter's kernel cannot host DDP itself (Lightning's launcher re-executes the command that
started the process), so a stage that asks for more than one device on this node runs its
command under `torchrun --standalone` (`run_distributed`). Several nodes: submit the command
itself with srun (README, "Scans and scale-out").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def device_count(train: Mapping) -> int:
    """Devices per node that training params ask for (`devices`: an int, a list of ids, or 'auto')."""
    devices = train.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if devices in ("auto", -1, "-1"):
        gpu = torch.cuda.is_available() and train.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        return torch.cuda.device_count() if gpu else 1
    try:
        return int(devices)
    except (TypeError, ValueError):
        from .errors import ConfigError

        raise ConfigError(f"train.devices must be an int, a list of device ids or 'auto'; got {devices!r}") from None


def world_size(train: Mapping) -> int:
    return device_count(train) * int(train.get("num_nodes", 1))


def launched() -> bool:
    """This process is one of several started by a launcher (torchrun, srun with several tasks)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def rank() -> int:
    """Global rank: torch.distributed's once initialised, else the launcher's environment, else 0."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def is_main() -> bool:
    return rank() == 0


def quiet_sync_warning() -> None:
    """Our validation numbers are merged over ranks before they are logged (`gather`), so Lightning's advice to
    reduce them again (`sync_dist=True`) does not apply; it would print once per metric and epoch."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*It is recommended to use `self\.log\(.*sync_dist=True")


def gather(trainer, obj: Any) -> list:
    """`obj` of every rank of the trainer's DDP group ([obj] when it runs on one device)."""
    if trainer is None or trainer.world_size <= 1:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * trainer.world_size
    dist.all_gather_object(out, obj)
    return out


def merge_tallies(parts: Sequence[Mapping]) -> dict:
    """Per-rank validation tallies as one: lists are joined, numbers added, dicts of numbers added key by key."""
    out: dict = {}
    for key in parts[0]:
        values = [p.get(key) for p in parts]
        if isinstance(values[0], list):
            out[key] = [x for v in values for x in v]
        elif isinstance(values[0], Mapping):
            out[key] = {k: sum(v.get(k, 0) for v in values) for k in dict.fromkeys(k for v in values for k in v)}
        else:
            out[key] = sum(values)
    return out


def torchrun_command(args: Sequence[str], params_file: Path, nproc: int) -> list[str]:
    """`treasure <args> --params <params_file>` as `nproc` processes on this node (torchrun --standalone)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "treasure_lib.cli",
        *args,
        "--params",
        str(params_file),
    ]


def run_distributed(args: Sequence[str], params_file: Path, nproc: int, metrics_out: Path | None = None) -> None:
    """Run `treasure <args> --params <params_file>` as `nproc` processes on this node (torchrun --standalone).

    `params_file`: the resolved params as YAML; the main process writes its metrics to `metrics_out`.
    The processes' output is printed as it comes (a chapter shows it); a failure is an error with the
    command, its params file and the last lines of that output.
    """
    from collections import deque

    from .errors import TreasureError

    cmd = torchrun_command(args, params_file, nproc)
    if metrics_out is not None:
        cmd += ["--metrics-out", str(metrics_out)]
    tail: deque = deque(maxlen=30)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            tail.append(line)
    if proc.returncode:
        raise TreasureError(
            f"distributed training failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"(params kept in {params_file}); last output:\n" + "".join(tail)
        )


def fit_here_or_distributed(
    command: str, train: Mapping, here, resolved: Callable[[], Mapping], metrics_out: Path | None = None
):
    """Train in this process, or, when `train` asks for several devices on this node and no launcher started us,
    as one process per device under torchrun (then the metrics come back through `metrics_out`). `resolved`: the
    resolved params as plain data (`params.to_dict`), asked for only then: the processes read them from a YAML file
    (kept when they fail)."""
    import shutil

    from . import config
    from .errors import ConfigError

    n = world_size(train)
    if n <= 1 or launched():
        return here()
    if train["num_nodes"] > 1:
        raise ConfigError(
            f"{command}: num_nodes = {train['num_nodes']} needs one process per device on every node; "
            f"submit `srun treasure {command} --params ...` (README, 'Scans and scale-out') instead of "
            f"running it from a chapter"
        )
    tmp = Path(tempfile.mkdtemp(prefix="treasure-ddp-"))
    config.dump(resolved(), tmp / "params.yaml")
    run_distributed([command], tmp / "params.yaml", n, metrics_out)
    shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(Path(metrics_out).read_text()) if metrics_out is not None else None
