"""Run folders and chapter execution, on toy chapters written into a temporary project.

The toy project has the layout of the repository (params/, notebooks/NN_name.py, data files)
so chapters run from its root exactly as `treasure run` runs the real ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from treasure_lib import cli, runs
from treasure_lib.errors import ConfigError
from treasure_lib.hashing import file_sha256
from treasure_lib.runs import provenance
from treasure_lib.runs.folder import Run

from .conftest import ROOT

ROOT_PARAMS = ROOT / "params"

TOY_PARAMS = """\
study: {name: toy, kind: jets, seed: 7}
data: {files: ["data/*.h5"]}
"""

PARAMETERS = """\
# %% tags=["parameters"]
params_file = "params/toy.yaml"
run_dir = "runs/jets/toy"
overrides = []
"""

# reads its params, logs metrics, saves a matplotlib figure into run.figures and displays it
CHAPTER_PLOT = (
    """\
# %% [markdown]
# # Toy data
# A chapter that reads its params, logs a number and shows a figure.

"""
    + PARAMETERS
    + """
# %%
from treasure_lib import runs
run = runs.open_run(params_file, run_dir, overrides)

# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1], [0, run.seed])
run.save_figure(fig, "line")
run.log_metrics({"codebook.tracks.level_1.utilization": run.seed / 10, "export.rows_per_s": 1234.5})
plt.show()
"""
)

CHAPTER_SECOND = (
    """\
# %% [markdown]
# # Toy second
"""
    + PARAMETERS
    + """
# %%
from treasure_lib import runs
run = runs.open_run(params_file, run_dir, overrides)
run.log_metrics({"pretrain.masked_accuracy": 0.5})
"""
)

# raises in its 3rd cell
CHAPTER_FAIL = (
    PARAMETERS
    + """
# %%
x = 1

# %%
raise ValueError("no tracks in this toy")

# %%
y = 2
"""
)


def make_project(root: Path, chapters: dict[str, str]) -> Path:
    (root / "params").mkdir(parents=True)
    (root / "params" / "toy.yaml").write_text(TOY_PARAMS)
    (root / "data").mkdir()
    (root / "data" / "a.h5").write_bytes(b"toy input a")
    (root / "data" / "b.h5").write_bytes(b"toy input b")
    (root / "notebooks").mkdir()
    for name, text in chapters.items():
        (root / "notebooks" / f"{name}.py").write_text(text)
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project(tmp_path / "proj", {"01_plot": CHAPTER_PLOT, "02_second": CHAPTER_SECOND})
    monkeypatch.chdir(root)
    return root


def execute(root: Path, **kw) -> dict:
    return runs.execute(["params/toy.yaml"], "runs/jets/toy", cwd=root, log=lambda _: None, **kw)


def test_execute_writes_a_complete_run_folder(project):
    outcome = execute(project, overrides=["study.seed=9"])
    run_dir = project / "runs" / "jets" / "toy"
    assert outcome == {"01_plot": "ran", "02_second": "ran"}

    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    assert params["study"]["seed"] == 9 and params["data"]["files"] == ["data/*.h5"]
    assert "tokenizer" in params  # fully resolved: schema defaults included

    for name in ("01_plot", "02_second"):
        nb = nbformat.read(run_dir / "notebooks" / f"{name}.ipynb", as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "runs/jets/toy/params.yaml" in injected[0].source
        assert all(o.get("output_type") != "error" for c in nb.cells for o in c.get("outputs", []))
    plot_nb = nbformat.read(run_dir / "notebooks" / "01_plot.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in plot_nb.cells for o in c.get("outputs", []))
    assert (run_dir / "figures" / "line.png").stat().st_size > 1000
    assert (run_dir / "artifacts").is_dir()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["codebook.tracks.level_1.utilization"] == pytest.approx(0.9)
    assert metrics["export.rows_per_s"] == 1234.5 and metrics["pretrain.masked_accuracy"] == 0.5
    assert metrics["run.01_plot.seconds"] > 0 and metrics["run.02_second.seconds"] > 0

    prov = json.loads((run_dir / "provenance.json").read_text())
    assert set(prov) >= {"git", "versions", "seeds", "inputs", "device", "hostname", "started", "finished"}
    assert set(prov["git"]) == {"commit", "dirty"}
    assert {"python", "torch", "numpy", "lightning", "vector-quantize-pytorch", "treasure-lib"} <= set(prov["versions"])
    assert prov["versions"]["treasure-lib"] == runs.library_fingerprint()["version"]
    assert prov["seeds"]["study.seed"] == 9
    assert [f["path"] for f in prov["inputs"]["files"]] == ["data/a.h5", "data/b.h5"]
    assert prov["inputs"]["files"][0]["sha256"] == file_sha256(project / "data" / "a.h5")
    assert prov["device"]["type"] in ("cpu", "cuda") and prov["outcome"] == "complete"
    assert prov["started"] <= prov["finished"]

    status = json.loads((run_dir / "status.json").read_text())["chapters"]
    assert {s["state"] for s in status.values()} == {"complete"}
    assert not [p.name for p in run_dir.rglob(".*") if p.suffix != ".lock"]  # no temporary file left behind


def test_rerun_skips_completed_chapters_until_source_changes_or_force(project):
    execute(project)
    assert execute(project) == {"01_plot": "skipped", "02_second": "skipped"}

    chapter = project / "notebooks" / "02_second.py"
    chapter.write_text(chapter.read_text() + "\n# %%\nprint('one more cell')\n")
    assert execute(project) == {"01_plot": "skipped", "02_second": "ran"}

    assert execute(project, chapters=["01_plot"], force=True) == {"01_plot": "ran"}
    assert execute(project, chapters=["02"]) == {"02_second": "skipped"}


def test_earlier_chapter_change_reruns_the_chapters_after_it(project):
    chapters = runs.discover(project / "notebooks")
    params = {"study": {"seed": 1}}
    before = runs.input_hashes(chapters, params)
    first = project / "notebooks" / "01_plot.py"
    first.write_text(first.read_text() + "\n")
    after = runs.input_hashes(chapters, params)
    assert before["01_plot"] != after["01_plot"] and before["02_second"] != after["02_second"]
    assert runs.input_hashes(chapters, {"study": {"seed": 2}})["01_plot"] != after["01_plot"]


def test_failing_chapter_stops_the_run_names_the_cell_and_looks_unfinished(tmp_path, monkeypatch):
    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project(tmp_path / "proj", {"01_fail": CHAPTER_FAIL, "02_second": CHAPTER_SECOND})
    monkeypatch.chdir(root)
    with pytest.raises(runs.ChapterError) as info:
        execute(root)
    err = info.value
    message = str(err)
    assert "01_fail" in message and "cell 3" in message
    assert 'raise ValueError("no tracks in this toy")' in message and "ValueError: no tracks in this toy" in message
    assert err.cell == 3 and err.ename == "ValueError"

    notebooks = root / "runs" / "jets" / "toy" / "notebooks"
    assert sorted(p.name for p in notebooks.iterdir()) == ["01_fail.failed.ipynb"]  # 02 never ran
    partial = nbformat.read(notebooks / "01_fail.failed.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in partial.cells for o in c.get("outputs", []))
    status = json.loads((root / "runs" / "jets" / "toy" / "status.json").read_text())["chapters"]
    assert status["01_fail"]["state"] == "failed" and "cell 3" in status["01_fail"]["error"]
    assert "02_second" not in status
    prov = json.loads((root / "runs" / "jets" / "toy" / "provenance.json").read_text())
    assert prov["outcome"] == "failed in 01_fail" and prov["finished"]


def test_chapter_without_parameters_cell_is_refused(project):
    (project / "notebooks" / "03_bare.py").write_text("# %%\nprint('no parameters')\n")
    with pytest.raises(runs.RunError, match=r"03_bare.py: no cell tagged 'parameters'"):
        execute(project)
    assert not (project / "runs/jets/toy/notebooks/01_plot.ipynb").exists()  # refused before any chapter ran


def test_unknown_chapter_name_lists_the_known_ones(project):
    with pytest.raises(runs.RunError, match="known: 01_plot, 02_second"):
        execute(project, chapters=["07_nope"])


def test_open_run_from_the_notebooks_folder_finds_the_project_root(project, monkeypatch):
    monkeypatch.chdir(project / "notebooks")  # where JupyterLab starts a chapter's kernel
    run = runs.open_run("params/toy.yaml", "runs/jets/toy", ["study.seed=3"])
    assert Path.cwd() == project
    assert run.params["study"]["seed"] == 3 and run.seed == 3 and run.kind == "jets"
    assert run.figures == Path("runs/jets/toy/figures") and run.figures.is_dir() and run.artifacts.is_dir()
    assert yaml.safe_load((project / "runs/jets/toy/params.yaml").read_text())["study"]["seed"] == 3
    assert run.provenance()["mode"] == "interactive"
    assert runs.open_run("params/toy.yaml").dir == Path("runs/jets/toy")  # default: runs/<kind>/<name>


def test_log_metrics_merges_flat_documented_keys(project):
    run = runs.open_run("params/toy.yaml", "runs/jets/toy")
    run.log_metrics({"pretrain": {"masked_accuracy": 0.25}})
    merged = run.log_metrics({"pretrain.loss": float("nan"), "export.rows_per_s": 10})
    assert merged == run.metrics() == {"pretrain.masked_accuracy": 0.25, "pretrain.loss": None, "export.rows_per_s": 10}
    with pytest.raises(ConfigError, match="pretrain.masked_acuracy"):
        run.log_metrics({"pretrain.masked_acuracy": 0.3})
    assert run.log_metrics({"scratch.anything": 1}, check=False)["scratch.anything"] == 1


def test_changed_params_move_earlier_metrics_aside(project):
    run = runs.open_run("params/toy.yaml", "runs/jets/toy")
    run.log_metrics({"pretrain.loss": 1.0})
    reseeded = Run(run.dir, run.params.replace(study={"seed": 99}))
    assert reseeded.adopt_params() is True
    assert not (run.dir / "metrics.json").exists()
    assert json.loads((run.dir / "metrics.previous.json").read_text()) == {"pretrain.loss": 1.0}
    assert reseeded.adopt_params() is False


def test_stage_rebuilds_only_when_its_inputs_change(project):
    run = runs.open_run("params/toy.yaml", "runs/jets/toy")
    built = []

    def build(out: Path):
        built.append(out)
        out.mkdir()
        (out / "weights.txt").write_text(str(len(built)))

    data = project / "data" / "a.h5"
    assert run.stage("card", {"k": 8, "data": data})(build) == run.artifacts / "card"
    assert run.stage("card", {"k": 8, "data": data})(build) == run.artifacts / "card"
    assert len(built) == 1 and run.stage("card", {"k": 8, "data": data}).done
    assert not run.stage("card", {"k": 16, "data": data}).done
    data.write_bytes(b"other content")  # a Path input stands for its content
    assert not run.stage("card", {"k": 8, "data": data}).done
    run.stage("card", {"k": 8, "data": data})(build)
    assert len(built) == 2 and (run.artifacts / "card" / "weights.txt").read_text() == "2"
    record = json.loads((run.artifacts / "card.stage.json").read_text())
    assert record["inputs_sha256"] == runs.inputs_hash({"k": 8, "data": data})

    # a failed build keeps the previous artifact and record, and leaves no partial file
    stage = run.stage("card", {"k": 32, "data": data})
    with pytest.raises(RuntimeError):
        with stage.build() as out:
            out.mkdir()
            raise RuntimeError("training diverged")
    assert (run.artifacts / "card" / "weights.txt").read_text() == "2"
    assert run.stage("card", {"k": 8, "data": data}).done
    assert sorted(p.name for p in run.artifacts.iterdir()) == ["card", "card.stage.json"]

    with run.stage("scores.json", {"k": 1}).build() as out:  # a single file works the same way
        out.write_text("{}")
    assert run.stage("scores.json", {"k": 1}).done


def test_runs_sharing_a_folder_build_a_stage_once_and_link_it(tmp_path, monkeypatch):
    """Scan points with the same tokenizer inputs train it once; other inputs get their own entry."""
    from treasure_lib.runs.stage import Stage

    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    shared = tmp_path / "shared"
    a, b = tmp_path / "a" / "artifacts", tmp_path / "b" / "artifacts"
    data = tmp_path / "data.h5"
    data.write_bytes(b"events")
    built = []

    def build(out: Path):
        built.append(out)
        out.mkdir()
        (out / "weights.txt").write_text(f"build {len(built)}")

    path_a = Stage(a, "tokenizers", {"k": 8, "data": data}, shared=shared)(build)
    path_b = Stage(b, "tokenizers", {"k": 8, "data": data}, shared=shared)(build)
    assert len(built) == 1, "the second run reuses the first one's build"
    assert path_b.is_symlink() and (path_b / "weights.txt").read_text() == "build 1"
    assert os.path.realpath(path_a) == os.path.realpath(path_b)
    assert not os.path.isabs(os.readlink(path_b)), "relative links: the scan folder can move"
    assert Stage(b, "tokenizers", {"k": 8, "data": data}, shared=shared).done
    Stage(b, "tokenizers", {"k": 16, "data": data}, shared=shared)(build)
    assert len(built) == 2 and (path_b / "weights.txt").read_text() == "build 2"
    assert (path_a / "weights.txt").read_text() == "build 1", "another point's artifact is never overwritten"
    assert sorted(p.name for p in shared.iterdir() if not p.name.startswith(".")) == sorted(
        [
            f"tokenizers-{Stage(a, 'tokenizers', {'k': k, 'data': data}).hash[:16]}{ext}"
            for k in (8, 16)
            for ext in ("", ".stage.json")
        ]
    )
    # the same inputs in another place hash the same: where a file lies is not what it holds
    moved = tmp_path / "elsewhere" / "data.h5"
    moved.parent.mkdir()
    moved.write_bytes(b"events")
    assert Stage(a, "x", {"data": moved}).hash == Stage(b, "x", {"data": data}).hash

    # the shared entry is removed and rebuilt by run b with another result: run a must see the new content
    entry = Stage(a, "tokenizers", {"k": 8, "data": data}, shared=shared)
    shutil.rmtree(entry.shared_path)
    entry.shared_record.unlink()
    Stage(b, "tokenizers", {"k": 8, "data": data}, shared=shared)(build)
    Stage(a, "tokenizers", {"k": 8, "data": data}, shared=shared)(build)
    assert len(built) == 3 and (path_a / "weights.txt").read_text() == "build 3"
    assert (
        json.loads(entry.record.read_text())["content_sha256"]
        == json.loads(entry.shared_record.read_text())["content_sha256"]
    ), "the local record follows the shared entry"
    failing = Stage(tmp_path / "c" / "artifacts", "tokenizers", {"k": 32, "data": data}, shared=shared)
    with pytest.raises(RuntimeError):  # a failed shared build leaves nothing that looks complete
        failing(lambda out: (out.mkdir(), (_ for _ in ()).throw(RuntimeError("diverged"))))
    assert not failing.shared_path.exists() and not failing.shared_record.exists()
    assert not [p.name for p in shared.iterdir() if "partial" in p.name], "no half-built entry is left"
    assert not failing.done and not failing.path.exists()


def _build_slowly(args):
    """One of two processes building the same shared stage at once (the other must wait and link)."""
    from treasure_lib.runs.stage import Stage

    folder, shared, counter = args
    import time as _time

    def build(out):
        with open(counter, "a") as fh:
            fh.write("built\n")
        _time.sleep(1.0)
        out.write_text("weights")

    return str(Stage(folder, "card", {"k": 8}, shared=shared)(build).resolve())


def test_two_processes_building_one_shared_stage_build_it_once(tmp_path):
    import multiprocessing

    counter = tmp_path / "builds.txt"
    jobs = [(tmp_path / name / "artifacts", tmp_path / "shared", counter) for name in ("a", "b")]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        paths = pool.map(_build_slowly, jobs)
    assert counter.read_text().count("built") == 1 and paths[0] == paths[1]


def test_a_stage_built_from_another_depends_on_what_that_one_holds(tmp_path, monkeypatch):
    """A rebuilt upstream with the same inputs but another content (another GPU, a deleted shared entry)
    must rebuild what was made from it."""
    from treasure_lib.runs.stage import Stage
    from treasure_lib.study.stages import identity

    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))
    content = iter(["codes A", "codes B"])

    def build(out):
        out.mkdir()
        (out / "x.parquet").write_text(next(content))

    upstream = Stage(tmp_path / "run", "tokens", {"k": 8})
    upstream(build)
    first = identity(upstream.path)
    record = json.loads(upstream.record.read_text())
    assert first == {"stage": "tokens", "content_sha256": record["content_sha256"]}
    upstream.record.unlink()  # e.g. someone removed it to rebuild: same inputs, other result
    upstream(build)
    assert identity(upstream.path) != first


def test_input_checksums_are_cached_by_path_size_and_mtime(tmp_path):
    data = tmp_path / "big.h5"
    data.write_bytes(b"x" * 1000)
    cache = tmp_path / "sha.json"
    first = provenance.file_checksums([data], cache)[str(data)]
    assert first == file_sha256(data)
    entries = json.loads(cache.read_text())
    entries[str(data.resolve())]["sha256"] = "cached"
    cache.write_text(json.dumps(entries))
    assert provenance.file_checksums([data], cache)[str(data)] == "cached"  # unchanged file: not re-read
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))
    assert provenance.file_checksums([data], cache)[str(data)] == first


def test_git_state_outside_git_is_unknown(tmp_path):
    assert provenance.git_state(tmp_path) == {"commit": "unknown", "dirty": "unknown"}
    state = provenance.git_state()  # the repository the library is imported from
    assert state["commit"] == "unknown" or len(state["commit"]) == 40


def test_run_command_line(project, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    runs.register(sub, cli._add_params, cli._params)
    args = parser.parse_args(
        [
            "run",
            "--params",
            "params/toy.yaml",
            "--run-dir",
            "runs/jets/toy",
            "--chapters",
            "02_second",
            "study.seed=5",
            "-o",
            "data.chunk_size=7",
        ]
    )
    assert args.chapters == ["02_second", "study.seed=5"] and args.override == ["data.chunk_size=7"]
    assert args.func(args) == 0
    params = yaml.safe_load((project / "runs/jets/toy/params.yaml").read_text())
    assert params["study"]["seed"] == 5 and params["data"]["chunk_size"] == 7
    out = capsys.readouterr().out
    assert "02_second: done in" in out and "01_plot" not in out


def test_one_execution_at_a_time_per_run_folder(project):
    from treasure_lib.runs import atomic
    from treasure_lib.runs.lock import RunBusy

    run_dir = project / "runs" / "jets" / "toy"
    run_dir.mkdir(parents=True)
    with atomic.locked(run_dir / ".run.lock"), pytest.raises(RunBusy, match="writing this run folder, so treasure run"):
        execute(project)


def test_stage_hashes_follow_what_changes_the_result_and_nothing_else(project, monkeypatch):
    """Retraining follows params that shape a tokenizer and the object definitions' content, never where outputs
    go or whether a progress bar shows; classifiers follow their own task's definition, not every task's."""
    from treasure_lib.runs.stage import Stage
    from treasure_lib.study import stages

    seen = {}
    monkeypatch.setattr(
        Stage, "__call__", lambda self, fn: seen.setdefault(self.name, []).append(self.hash) or self.path
    )
    (project / "params" / "objects.yaml").write_text((ROOT_PARAMS / "objects.yaml").read_text())

    def tokenizer_hash(*overrides):
        run = runs.open_run("params/toy.yaml", "runs/jets/toy", ["data.objects_file=params/objects.yaml", *overrides])
        stages.tokenizers(run)
        return seen["tokenizers"][-1]

    base = tokenizer_hash()
    assert tokenizer_hash("tokenizer.train.progress_bar=false") == base
    assert tokenizer_hash("tokenizer.output_dir=elsewhere") == base
    assert tokenizer_hash("tokenizer.codebook_size=64") != base
    text = (project / "params" / "objects.yaml").read_text()
    (project / "params" / "objects.yaml").write_text(text.replace("max_objects: 40", "max_objects: 30", 1))
    assert tokenizer_hash() != base, "editing the object definitions retrains"
