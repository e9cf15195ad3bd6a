"""Parameter scans: expansion and ids, bad scan files, resume, the Snakemake DAG, and a real 2-point scan."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from treasure_lib import scan as scans
from treasure_lib.errors import ConfigError
from treasure_lib.formatting import fmt
from treasure_lib.scan import points as P

from .conftest import ROOT, generate_sections
from .test_runs import PARAMETERS, make_project

SCAN = """\
name: {name}
base: {base}
chapters: {chapters}
grid:
  tokenizer.codebook_size: [64, 256, 1024]
  tokenizer.num_quantizers: [1, 2]
zip:
  - {{tokenizer.encoder: [mlp, transformer], tokenizer.size: [small, medium]}}
resources: {{gpu: 1, cpus_per_task: 4, mem_mb: 16000, runtime: 30}}
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_grid_times_zip_gives_every_point_once_with_stable_readable_ids(tmp_path):
    base = ROOT / "params" / "default.yaml"
    s = scans.load_scan(_write(tmp_path / "a.yaml", SCAN.format(name="a", base=base, chapters="null")))
    points = scans.expand(s)
    assert len(points) == 3 * 2 * 2
    combos = {
        (
            p.resolved.tokenizer.codebook_size,
            p.resolved.tokenizer.num_quantizers,
            p.resolved.tokenizer.encoder,
            p.resolved.tokenizer.size,
        )
        for p in points
    }
    assert len(combos) == 12 and all((e, z) in {("mlp", "small"), ("transformer", "medium")} for *_, e, z in combos), (
        "zipped axes advance together"
    )
    first = points[0]
    assert re.fullmatch(r"codebook_size-64_encoder-mlp_num_quantizers-1_size-small-[0-9a-f]{10}", first.id)
    assert first.dir == Path("runs/scans/a/points") / first.id
    # another name, another axis order: the same points (ids hash the resolved params, not the file)
    reordered = SCAN.format(name="b", base=base, chapters="[02_tokenization]").replace(
        "  tokenizer.codebook_size: [64, 256, 1024]\n  tokenizer.num_quantizers: [1, 2]\n",
        "  tokenizer.num_quantizers: [1, 2]\n  tokenizer.codebook_size: [64, 256, 1024]\n",
    )
    again = scans.expand(scans.load_scan(_write(tmp_path / "b.yaml", reordered)))
    assert sorted(p.id for p in again) == sorted(p.id for p in points)
    shifted = scans.expand(
        scans.load_scan(
            _write(
                tmp_path / "c.yaml",
                SCAN.format(name="c", base=base, chapters="null").replace(
                    "chapters: null", "chapters: null\noverrides: [study.seed=1]"
                ),
            )
        )
    )
    assert not set(p.id for p in shifted) & set(p.id for p in points), "other params, other ids"
    assert all(p.resolved.study.shared_artifacts == "runs/scans/shared" for p in points)


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda t: t.replace("tokenizer.num_quantizers:", "tokenizer.num_quantizer:"),
            r"unknown key 'tokenizer.num_quantizer'; did you mean 'tokenizer.num_quantizers'",
        ),
        (lambda t: t.replace("tokenizer.size: [small, medium]", "tokenizer.size: [small]"), r"zip\[0\].*equal lengths"),
        (lambda t: t.replace("gpu: 1", "gpus: 1"), r"unknown resources \['gpus'\]"),
        (lambda t: t.replace("[64, 256, 1024]", "[64, 256, big]"), r"tokenizer.codebook_size.*must be int"),
        (lambda t: t.replace("name: x\n", ""), r"missing required key 'name'"),
    ],
)
def test_a_bad_scan_file_names_the_file_and_the_key(tmp_path, edit, message):
    path = _write(
        tmp_path / "bad.yaml", edit(SCAN.format(name="x", base=ROOT / "params" / "default.yaml", chapters="null"))
    )
    with pytest.raises(ConfigError, match=message) as err:
        scans.expand(scans.load_scan(path))
    assert "bad.yaml" in str(err.value)


# a toy project: chapters that count their executions and fail while a flag file exists
COUNTING = (
    """\
# %% [markdown]
# # Toy chapter
"""
    + PARAMETERS
    + """
# %%
from pathlib import Path
from treasure_lib import runs
run = runs.open_run(params_file, run_dir, overrides)
with open(Path(run.dir) / "executions.txt", "a") as fh:
    fh.write("ran\\n")
if Path(f"fail-{run.seed}").exists():
    raise RuntimeError(f"seed {run.seed} diverged")
run.log_metrics({"codebook.tracks.level_1.utilization": run.seed / 10})
"""
)

TOY_SCAN = """\
name: toy
base: ../params/toy.yaml
grid:
  study.seed: [1, 2, 3]
resources: {cpus_per_task: 1}
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project(tmp_path / "proj", {"01_count": COUNTING})
    _write(root / "scans" / "toy.yaml", TOY_SCAN)
    monkeypatch.chdir(root)
    return root, scans.load_scan("scans/toy.yaml")


def _executions(point) -> int:
    path = point.dir / "executions.txt"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_resume_runs_only_incomplete_points_and_failed_ones_on_request(toy):
    root, scan = toy
    (root / "fail-2").touch()
    outcome = scans.run_local(scan, jobs=2, progress=False, log=lambda _: None)
    by_seed = {p.resolved.study.seed: p for p in scans.expand(scan)}
    assert sorted(outcome.values()) == ["complete", "complete", "failed"]
    failed = scans.state(by_seed[2])
    assert failed["state"] == "failed" and "seed 2 diverged" in failed["error"]
    assert not by_seed[2].complete_file.exists(), "a failed point never looks complete"
    assert by_seed[2].done_file.exists() and by_seed[1].complete_file.exists(), "its attempt ended: recorded"
    # an interrupted point: killed inside its chapter (no executed notebook yet), point.json still says running
    P.mark(by_seed[3], state="running", pid=999999)
    (by_seed[3].dir / "notebooks" / "01_count.ipynb").unlink()
    assert scans.state(by_seed[3])["state"] == "interrupted", "'running' with nobody holding its lock: it died"
    outcome = scans.run_local(scan, jobs=1, progress=False, log=lambda _: None)
    assert outcome == {by_seed[1].id: "skipped-complete", by_seed[2].id: "skipped-failed", by_seed[3].id: "complete"}
    assert [_executions(by_seed[s]) for s in (1, 2, 3)] == [1, 1, 2], "only the interrupted point ran again"
    (root / "fail-2").unlink()
    outcome = scans.run_local(scan, jobs=1, retry_failed=True, progress=False, log=lambda _: None)
    assert outcome[by_seed[2].id] == "complete" and _executions(by_seed[2]) == 2 and _executions(by_seed[1]) == 1
    assert scans.state(by_seed[2])["attempts"] == 2
    out = scans.summarize(scan)
    table = pq.read_table(out["parquet"]).to_pylist()
    assert {r["study.seed"]: r["codebook.tracks.level_1.utilization"] for r in table} == {1: 0.1, 2: 0.2, 3: 0.3}
    assert all(r["state"] == "complete" for r in table) and out["csv"].is_file() and out["page"].is_file()


def _job_counts(stdout: str) -> dict:
    block = stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.M)}


def _dry_run(scan, **kw):
    done = subprocess.run(
        scans.snakemake_command(scan, dry_run=True, **kw), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    scheduled = set(re.findall(r"wildcards: point=(\S+)", done.stdout))
    return _job_counts(done.stdout), scheduled, done.stdout


def test_snakemake_dry_run_builds_one_job_per_point_to_run(toy):
    root, scan = toy
    points = scans.expand(scan)
    counts, scheduled, out = _dry_run(scan, profile=str(ROOT / "params" / "profiles" / "slurm"))
    assert counts == {"point": 3, "all": 1, "total": 4} and scheduled == {p.id for p in points}
    assert "cpus_per_task=1" in out, "the scan's resources reach the job"
    P.mark(points[0], state="complete", chapters=[])
    P.mark(points[1], state="failed", chapters=[], error="diverged")
    counts, scheduled, _ = _dry_run(scan, jobs=2)
    assert scheduled == {points[2].id}, "complete and failed points are not resubmitted"
    counts, scheduled, _ = _dry_run(scan, jobs=2, retry_failed=True)
    assert scheduled == {points[1].id, points[2].id}, "--retry-failed resubmits the failed point"
    assert scans.state(points[1])["state"] == "failed" and points[1].done_file.exists(), "a dry run changes nothing"
    _write(root / "scans" / "toy.yaml", TOY_SCAN + "chapters: [01_count]\n")
    counts, scheduled, _ = _dry_run(scans.load_scan("scans/toy.yaml"), jobs=2)
    assert points[0].id in scheduled, "a point finished with other chapters than the scan asks for runs again"


def test_first_alone_makes_every_other_point_wait_for_the_first(toy):
    root, _ = toy
    scan = scans.load_scan(
        _write(root / "scans" / "first.yaml", TOY_SCAN.replace("name: toy", "name: first") + "first_alone: true\n")
    )
    first = scans.expand(scan)[0]
    counts, scheduled, out = _dry_run(scan)
    blocks = [b for b in out.split("rule point:")[1:] if "wildcards: point=" in b]
    waits = {
        re.search(r"wildcards: point=(\S+)", b).group(1): f"{first.id}/done.json" in b.split("output:")[0]
        for b in blocks
    }
    assert waits == {p.id: p.id != first.id for p in scans.expand(scan)}


def test_snakemake_runs_the_points_and_the_summary_despite_a_failed_point(toy):
    root, scan = toy
    (root / "fail-2").touch()
    assert scans.run_snakemake(scan, jobs=2) == 1, "a failed point makes the run fail"
    states = {p.resolved.study.seed: scans.state(p)["state"] for p in scans.expand(scan)}
    assert states == {1: "complete", 2: "failed", 3: "complete"}
    page = (scan.output_dir / "summary.md").read_text()
    assert "seed 2 diverged" in page, "the summary lists the failed point with its error"
    (root / "fail-2").unlink()
    assert scans.run_snakemake(scan, jobs=2, retry_failed=True) == 0
    assert all(scans.state(p)["state"] == "complete" for p in scans.expand(scan))
    assert [_executions(p) for p in scans.expand(scan)] == [1, 2, 1], "only the failed point ran again"
    first = scans.expand(scan)[0]
    first.done_file.unlink()  # a finished point Snakemake schedules again (a removed marker, a resumed workflow)
    assert scans.run_snakemake(scan, jobs=2) == 0 and first.done_file.exists(), "its job restores the marker"
    assert _executions(first) == 1, "without running its chapters again"


@pytest.mark.slow
def test_two_point_scan_on_tiny_params_shares_its_tokenizer_and_is_summarised(tmp_path, monkeypatch):
    from treasure_lib import config
    from treasure_lib.generate import generate

    data = tmp_path / "data"
    generate(
        *generate_sections(
            config.load(
                [ROOT / "params" / "default.yaml"],
                [
                    f"generate.output_dir={data}",
                    "generate.layouts=[jets]",
                    "generate.samples={ttbar: 300, Zprime_qq: 150}",
                    "study.seed=5",
                ],
            )
        ),
        progress=False,
    )
    path = _write(
        tmp_path / "scan.yaml",
        f"""\
name: tiny
base: {ROOT / "tests" / "data" / "tiny_jets.yaml"}
output_dir: {tmp_path / "scan"}
shared_artifacts: {tmp_path / "shared"}
overrides: ["data.files=[{data}/jets_*.h5]", classify.compare=false]
chapters: [02_tokenization, 06_classification]
grid:
  classify.seed: [1, 2]
metrics: [tokenizer.tracks.pt.response_iqr_over_median, classify.flavour.tokens.auc_macro]
""",
    )
    scan = scans.load_scan(path)
    monkeypatch.chdir(ROOT)
    outcome = scans.run_local(scan, jobs=2, progress=False, log=lambda _: None)
    assert sorted(outcome.values()) == ["complete", "complete"], [scans.state(p) for p in scans.expand(scan)]
    shared = sorted(
        p.name
        for p in (tmp_path / "shared").iterdir()
        if not p.name.startswith(".") and not p.name.endswith(".stage.json")
    )
    assert [n.rsplit("-", 1)[0] for n in shared].count("tokenizers") == 1, f"one tokenizer for both points: {shared}"
    assert [n.rsplit("-", 1)[0] for n in shared].count("classify-flavour-tokens-100") == 2, shared
    links = {os.path.realpath(p.dir / "artifacts" / "tokenizers") for p in scans.expand(scan)}
    assert len(links) == 1
    out = scans.summarize(scan)
    rows = {r["point"]: r for r in pq.read_table(out["parquet"]).to_pylist()}
    for p in scans.expand(scan):
        metrics = json.loads((p.dir / "metrics.json").read_text())
        assert rows[p.id]["headline"] == metrics["classify.flavour.tokens.auc_macro"]
        assert (
            rows[p.id]["tokenizer.tracks.pt.response_iqr_over_median"]
            == metrics["tokenizer.tracks.pt.response_iqr_over_median"]
        )
    assert len({r["headline"] for r in rows.values()}) == 2, "two seeds, two trainings"
    page = out["page"].read_text()
    assert "figures/auc_per_point.png" in page and (tmp_path / "scan" / "figures" / "auc_per_point.png").is_file()
    best = max(rows.values(), key=lambda r: r["light_rejection_at_77"])  # flavour: judged by the light rejection
    quoted = fmt(best["light_rejection_at_77"], best["light_rejection_at_77_err"])  # the book's one rule
    assert quoted in page, "the page quotes the table's numbers"
    for p in scans.expand(scan):
        metrics = json.loads((p.dir / "metrics.json").read_text())
        assert rows[p.id]["light_rejection_at_77"] == metrics["classify.flavour.tokens.light_rejection_at_77"]
