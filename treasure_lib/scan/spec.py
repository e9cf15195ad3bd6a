"""Scan files (`params/scans/*.yaml`): a base study, axes of values, chapters per point, metrics to collect.

    name: codebook_demo
    base: ../default.yaml                  # the study params (relative to this file; a list is allowed)
    overrides: [tokenizer.train.max_epochs=2]   # every point (dotted KEY=VALUE, as on the command line)
    grid:                                  # the full grid: every combination of these
      tokenizer.codebook_size: [64, 256]
      tokenizer.num_quantizers: [1, 2]
    zip:                                   # groups of axes that advance together (equal lengths)
      - {tokenizer.encoder: [mlp, transformer], tokenizer.size: [small, medium]}
    points:                                # single points beside the product (a reference, say)
      - {classify.inputs: features, tokenizer.codebook_size: 64}
    comparison: tokenizers                 # an extra section of the summary page (see `page`)
    chapters: [02_tokenization, 03_codebook_diagnostics]
    metrics: ["tokenizer.tracks.pt.*", "codebook.tracks.level_*.utilization"]
    resources: {gpu: 1, cpus_per_task: 8, mem_mb: 32000, runtime: 240}

Grid axes and zip groups combine as a product; `points` are added to it as they are. Every axis key
must be a key of the params schema and every value passes its check; a point's params are the base
files, then `overrides`, then its axis values. `resources` are Snakemake resources of one point's job
(the Slurm executor plugin turns `gpu`, `cpus_per_task`, `mem_mb`, `runtime` [min], `slurm_partition`,
`slurm_account`, `gpu_model`, `constraint`, `qos`, `slurm_extra` into sbatch options); no site values are built in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import config
from ..config.rules import plain_name
from ..config.schema import Key as K
from ..errors import ConfigError

#: Snakemake resources a point may request (what the Slurm executor plugin understands, plus the generic ones).
RESOURCES = (
    "gpu",
    "gpu_model",
    "cpus_per_task",
    "mem_mb",
    "runtime",
    "tasks",
    "nodes",
    "slurm_partition",
    "slurm_account",
    "constraint",
    "qos",
    "slurm_extra",
    "disk_mb",
)

SCAN_SCHEMA: dict = {
    "name": K("str", None, "scan name: its folder is <output_dir> (default runs/scans/<name>)", required=True),
    "description": K("str", "", "one or two sentences for the summary page"),
    "base": K("any", None, "study params file(s) every point starts from, relative to the scan file", required=True),
    "overrides": K("list", [], "dotted KEY=VALUE overrides applied to every point", item="str"),
    "grid": K("dict", {}, "axes of the full grid: {dotted key: [values]}"),
    "zip": K("list", [], "groups of axes advanced together: [{dotted key: [values], ...}, ...]"),
    "points": K(
        "list",
        [],
        "single points beside the grid x zip product, each {dotted key: value} (e.g. a "
        "reference row: {classify.inputs: features})",
    ),
    "comparison": K(
        "str",
        None,
        "a comparison section the summary page adds: tokenizers (tokenizer kinds at matched "
        "bits per object, paired against the raw-feature points on the same test rows)",
        nullable=True,
        choices=("tokenizers",),
    ),
    "chapters": K("list", None, "chapters each point runs (null: all)", nullable=True, item="str"),
    "metrics": K(
        "list", [], "metric keys (glob patterns) the summary table collects; [] collects every key", item="str"
    ),
    "output_dir": K("str", None, "where point folders and the summary go (null: runs/scans/<name>)", nullable=True),
    "shared_artifacts": K(
        "str",
        "runs/scans/shared",
        "stages shared between points (and scans): a tokenizer "
        "trained for one point is linked, not retrained, by every point with the same inputs",
    ),
    "resources": K("dict", {}, f"Snakemake resources of one point's job: {', '.join(RESOURCES)}"),
    "first_alone": K(
        "bool",
        False,
        "run the first point before the others, which then link the stages it built "
        "(tokenizer, tokens, backbone) instead of waiting for them while holding their GPUs",
    ),
}


@dataclass(frozen=True)
class Scan:
    """A validated scan file."""

    path: Path
    name: str
    description: str
    base: tuple[Path, ...]
    overrides: tuple[str, ...]
    grid: dict = field(default_factory=dict)
    zip: tuple = ()
    chapters: tuple[str, ...] | None = None
    metrics: tuple[str, ...] = ()
    output_dir: Path = Path("runs/scans")
    shared_artifacts: Path = Path("runs/scans/shared")
    resources: dict = field(default_factory=dict)
    first_alone: bool = False
    points: tuple = ()  # single points beside the product: ({dotted key: value}, ...)
    comparison: str | None = None

    @property
    def axes(self) -> list[str]:
        """Every axis key, grid first, then the zip groups', then keys only the single points set, in file order."""
        product = list(self.grid) + [key for group in self.zip for key in group]
        return product + [k for k in dict.fromkeys(k for p in self.points for k in p) if k not in product]

    @property
    def points_dir(self) -> Path:
        return self.output_dir / "points"


def _values(where: str, key: Any, values: Any) -> list:
    if not isinstance(key, str) or "." not in key:
        raise ConfigError(f"{where}: axis {key!r} must be a dotted params key such as tokenizer.codebook_size")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: axis '{key}' needs a non-empty list of values, got {values!r}")
    return values


def load_scan(path: str | Path) -> Scan:
    """Read and check a scan file; every message names the file and the key."""
    path = Path(path)
    raw = config.read_yaml(path)
    config.check_keys(raw, SCAN_SCHEMA, origin=str(path))
    try:
        data = config.validate(raw, SCAN_SCHEMA)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not plain_name(data["name"]):
        raise ConfigError(
            f"{path}: 'name' must be a plain folder name (no '/' or '\\', not starting with '.'): the "
            f"scan's folder is runs/scans/<name>; got {data['name']!r}"
        )
    if data["chapters"]:
        _check_chapters(path, data["chapters"])
    base = data["base"] if isinstance(data["base"], list) else [data["base"]]
    if not base or not all(isinstance(b, str) for b in base):
        raise ConfigError(f"{path}: 'base' must be a params file or a list of them, got {data['base']!r}")
    files = tuple(path.parent / b for b in base)
    for f in files:
        if not f.is_file():
            raise ConfigError(f"{path}: base params file not found: {f}")
    grid = {k: _values(f"{path}: grid", k, v) for k, v in data["grid"].items()}
    groups = []
    for i, group in enumerate(data["zip"]):
        if not isinstance(group, dict) or not group:
            raise ConfigError(f"{path}: zip[{i}] must be a mapping {{dotted key: [values]}}, got {group!r}")
        group = {k: _values(f"{path}: zip[{i}]", k, v) for k, v in group.items()}
        lengths = {k: len(v) for k, v in group.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"{path}: zip[{i}] advances its axes together, so they need equal lengths; got {lengths}")
        groups.append(group)
    points = []
    for i, point in enumerate(data["points"]):
        if not isinstance(point, dict) or not point:
            raise ConfigError(f"{path}: points[{i}] must be a mapping {{dotted key: value}}, got {point!r}")
        for key in point:
            _values(f"{path}: points[{i}]", key, [point[key]])
        points.append(dict(point))
    axes = list(grid) + [k for g in groups for k in g]
    repeated = sorted({k for k in axes if axes.count(k) > 1})
    if repeated:
        raise ConfigError(f"{path}: axis {repeated} appears more than once (grid and zip axes must differ)")
    unknown = sorted(set(data["resources"]) - set(RESOURCES))
    if unknown:
        raise ConfigError(f"{path}: unknown resources {unknown}; known: {', '.join(RESOURCES)}")
    out = Path(data["output_dir"]) if data["output_dir"] else Path("runs") / "scans" / data["name"]
    return Scan(
        path=path,
        name=data["name"],
        description=data["description"],
        base=files,
        overrides=tuple(data["overrides"]),
        grid=grid,
        zip=tuple(groups),
        chapters=tuple(data["chapters"]) if data["chapters"] else None,
        metrics=tuple(data["metrics"]),
        output_dir=out,
        shared_artifacts=Path(data["shared_artifacts"]),
        resources=dict(data["resources"]),
        first_alone=data["first_alone"],
        points=tuple(points),
        comparison=data["comparison"],
    )


def notebooks_dir() -> Path:
    """The chapters a scan runs: `notebooks/` of the working directory (the project root), else of this repository."""
    here = Path("notebooks")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "notebooks"


def _check_chapters(path: Path, names: list) -> None:
    """Every chapter a scan file names exists (as `01_data`, `01_data.py` or `01`)."""
    from ..runs.chapters import discover, select
    from ..runs.folder import RunError

    try:
        select(discover(notebooks_dir()), names)
    except RunError as exc:
        raise ConfigError(f"{path}: chapters: {exc}") from None


def override_text(key: str, value: Any) -> str:
    """`KEY=VALUE` with the value written as YAML that reads back as the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].strip()
    elif text.endswith("..."):
        text = text[:-3].strip()
    if yaml.safe_load(text) != value:
        raise ConfigError(f"axis '{key}': value {value!r} cannot be written as a command-line override")
    return f"{key}={text}"
