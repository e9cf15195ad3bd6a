"""Fault injection: the run and scan machinery under kills, concurrent writers, edited files and code, and bad input.

Every observation of issue 17 has a test here that failed before the fix: a stage is done only while what it built
still verifies; its identity is exactly the params it reads, its inputs' content and the code it imports; one lock
guards every writer of a run folder; bad input is one line and writes nothing. The end-to-end parts (a SIGKILL in
the middle of training and of export, the README's CLI-then-`treasure run --force` sequence) are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from treasure_lib import config, runs
from treasure_lib.cli import main
from treasure_lib.datamodules import TokenFiles
from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.runs import lock
from treasure_lib.runs.folder import Run
from treasure_lib.runs.stage import Stage
from treasure_lib.study import stages
from treasure_lib.tokenizers import card as cards

from .conftest import ROOT, export_sections, generate_sections

TINY = ROOT / "tests" / "data" / "tiny_jets.yaml"
DEFAULT = ROOT / "params" / "default.yaml"


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(autouse=True)
def _own_checksum_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TREASURE_CACHE_DIR", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- one model of "done"


def _toy_build(log: list):
    def build(out: Path):
        out.mkdir()
        (out / "weights.pt").write_text(f"weights {len(log)}")
        (out / "card.json").write_text('{"codebook_size": 16}')
        log.append(out)

    return build


def test_a_stage_whose_files_changed_after_its_build_is_rebuilt_and_the_file_named(tmp_path, capsys):
    built: list = []
    stage = Stage(tmp_path / "artifacts", "tokenizers", {"codebook_size": 16})
    stage(_toy_build(built))
    assert stage.done and len(built) == 1
    (stage.path / "card.json").write_text('{"codebook_size": 8}')  # another command wrote into the stage's folder
    assert not stage.done, "a record that matches while the files changed is not done"
    assert "card.json has changed" in stage.why_not_done()
    stage(_toy_build(built))
    assert len(built) == 2 and json.loads((stage.path / "card.json").read_text()) == {"codebook_size": 16}
    assert "card.json" in _one_line(capsys.readouterr().err)
    (stage.path / "weights.pt").unlink()  # a card half deleted
    assert "weights.pt is missing" in stage.why_not_done()
    stage(_toy_build(built))
    (stage.path / "extra.txt").write_text("x")
    assert "extra.txt was added" in stage.why_not_done()
    os.utime(stage.path / "card.json", ns=(1, 1))  # touched, same bytes: still what was built
    (stage.path / "extra.txt").unlink()
    assert stage.done


def test_a_build_killed_half_way_leaves_a_partial_folder_that_the_next_build_clears(tmp_path):
    folder = tmp_path / "artifacts"
    script = (
        f"import time; from pathlib import Path; from treasure_lib.runs.stage import Stage\n"
        f"s = Stage(Path({str(folder)!r}), 'tokens', {{'k': 1}})\n"
        f"with s.build() as out:\n    out.mkdir(); (out / 'a.parquet').write_text('half'); print('writing', "
        f"flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in folder.glob(".tokens.partial-*")], "the kill leaves the partial folder"
    Stage(folder, "tokens", {"k": 1})(lambda out: out.mkdir())
    assert not list(folder.glob(".*partial*")), "the next build of the stage clears what the killed one left"


def test_an_identical_rebuild_changes_nothing_downstream_while_another_result_does(tmp_path):
    """`content` says what a result is: timings and paths that differ between two builds of the same weights
    never make the stages built from it rebuild."""
    weights = iter(["w", "w", "other"])

    def build(out: Path):
        out.mkdir()
        (out / "weights.pt").write_text(next(weights))
        (out / "card.json").write_text(json.dumps({"train_seconds": time.perf_counter()}))

    content = lambda folder: (folder / "weights.pt").read_text()  # noqa: E731
    upstream = Stage(tmp_path / "a", "tokenizers", {"k": 8}, content=content)
    upstream(build)
    first = stages.identity(upstream.path)
    upstream.record.unlink()
    upstream(build)
    assert stages.identity(upstream.path) == first, "same weights, another train_seconds: same identity"
    upstream.record.unlink()
    upstream(build)
    assert stages.identity(upstream.path) != first


def test_a_chapter_is_complete_only_while_its_notebook_is_the_one_its_run_wrote(tmp_path):
    from treasure_lib.runs.chapters import Status

    notebook = tmp_path / "notebooks" / "02_tokenization.ipynb"
    notebook.parent.mkdir()
    notebook.write_text('{"cells": []}')
    status = Status(tmp_path)
    import hashlib

    status.set(
        "02_tokenization",
        state="complete",
        inputs_sha256="h",
        notebook_sha256=hashlib.sha256(notebook.read_bytes()).hexdigest(),
    )
    assert status.is_complete("02_tokenization", "h", notebook)
    notebook.write_text('{"cells": [1]}')
    assert not status.is_complete("02_tokenization", "h", notebook)


def test_a_complete_scan_point_whose_notebook_changed_runs_again(tmp_path, monkeypatch):
    import hashlib

    from treasure_lib import scan as scans
    from treasure_lib.scan import points as P

    monkeypatch.chdir(ROOT)
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\nbase: {DEFAULT}\noutput_dir: {tmp_path / 'out'}\ngrid: {{study.seed: [1]}}\nchapters: [01_data]\n"
    )
    s = scans.load_scan(path)
    point = scans.expand(s)[0]
    notebook = point.dir / "notebooks" / "01_data.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text('{"cells": []}')
    (point.dir / "status.json").write_text(
        json.dumps(
            {
                "chapters": {
                    "01_data": {
                        "state": "complete",
                        "notebook": "notebooks/01_data.ipynb",
                        "notebook_sha256": hashlib.sha256(notebook.read_bytes()).hexdigest(),
                    }
                }
            }
        )
    )
    P.mark(point, state="complete", chapters=["01_data"])
    assert P.finished(s, point) == "complete" and not P.must_rerun(s, point)
    notebook.write_text('{"cells": ["edited"]}')
    assert P.state(point)["state"] == "pending" and P.must_rerun(s, point), "a done marker is not enough"


# ----------------------------------------------------------------------------- cards


def _binning_card(folder: Path, edges_shift: float = 0.0, **training) -> Path:
    collection = {"name": "event", "features": ["mu"], "type_id": 1, "max_objects": 1}
    edges = np.array([[0.0, 10.0, 20.0, 30.0]]) + edges_shift
    tok = cards.BinningTokenizer(collection, edges, 0.5 * (edges[:, 1:] + edges[:, :-1]))
    return cards.save(tok, folder / "card", training=training, metrics={"reco.mu": 0.1})


def test_a_card_hash_covers_its_weights_and_config_not_its_folder_or_timings(tmp_path):
    a = _binning_card(tmp_path / "a", train_seconds=1.5, params={"tokenizer": {"output_dir": str(tmp_path / "tmp1")}})
    b = _binning_card(tmp_path / "b", train_seconds=9.0, params={"tokenizer": {"output_dir": str(tmp_path / "tmp2")}})
    assert cards.card_hash(a) == cards.card_hash(b)
    assert str(tmp_path) not in (a / "card.json").read_text(), "no temporary output folder in the card"
    assert cards.card_hash(_binning_card(tmp_path / "c", edges_shift=1.0)) != cards.card_hash(a)


def test_a_truncated_card_or_missing_weights_is_one_line_naming_the_file(tmp_path, capsys):
    card = _binning_card(tmp_path / "cards" / "event")
    text = (card / "card.json").read_text()
    (card / "card.json").write_text(text[: len(text) // 2])
    with pytest.raises(InputFileError, match=r"card\.json: not valid JSON"):
        cards.load(card)
    (card / "card.json").write_text(text)
    (card / "weights.pt").unlink()
    with pytest.raises(InputFileError, match=r"weights\.pt: missing"):
        cards.load(card)
    with pytest.raises(InputFileError, match=r"weights\.pt: missing"):
        cards.card_hash(card)


# ----------------------------------------------------------------------------- token files


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    from treasure_lib.tokenizers.export import export

    from .test_sequences import _cards, _params, _toy_files

    tmp = tmp_path_factory.mktemp("tokens")
    files = _toy_files(tmp / "data", n=200)
    _cards(tmp / "cards", files)
    return [r["outputs"][0] for r in export(*export_sections(_params(tmp, files)), progress=False)]


@pytest.mark.parametrize("column", ["split", "weight"])
def test_every_token_file_is_checked_for_its_columns_before_training(token_files, tmp_path, column):
    bad = tmp_path / f"no_{column}.tokens.parquet"
    table = pq.read_table(token_files[1])
    pq.write_table(table.drop_columns([column]), bad)
    with pytest.raises(
        InputFileError,
        match=rf"no_{column}\.tokens\.parquet: a tokens Parquet without column\(s\) "
        rf"\['{column}'\]",
    ):
        TokenFiles([token_files[0], bad])  # the second file: not only the first one's columns count


# ----------------------------------------------------------------------------- stage identity


@pytest.fixture()
def lib_copy(tmp_path):
    copy = tmp_path / "treasure_lib"
    shutil.copytree(ROOT / "treasure_lib", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "module, stage",
    [
        ("metric_keys.py", "classify"),
        ("metric_keys.py", "pretrain"),
        ("object_collections.py", "classify"),
        ("object_collections.py", "tokenizers"),
        ("splits.py", "leakage"),
    ],
)
def test_editing_a_module_a_stage_imports_rebuilds_it(lib_copy, module, stage):
    before = stages.code(stage, lib_copy)
    assert before == stages.code(stage), "a copy of the library hashes as the library"
    _edit_a_function(lib_copy / module)
    assert stages.code(stage, lib_copy) != before


def _edit_a_function(path: Path) -> None:
    """One more statement in the first top-level function of a module (its behaviour would be someone's edit)."""
    import ast

    lines = path.read_text().splitlines(keepends=True)
    first = next(n for n in ast.parse("".join(lines)).body if isinstance(n, ast.FunctionDef)).body[-1]
    lines.insert(first.lineno - 1, " " * first.col_offset + "_edited_by_the_test = 1\n")
    path.write_text("".join(lines))


def test_a_stage_follows_the_functions_it_calls_not_comments_or_code_it_never_imports(lib_copy):
    before = {s: stages.code(s, lib_copy) for s in stages.CODE}
    with open(lib_copy / "training.py", "a") as fh:
        fh.write("# a comment changes no result\n")
    with open(lib_copy / "plots" / "style.py", "a") as fh:  # no stage draws
        fh.write("PLOT_ONLY = 1\n")
    assert {s: stages.code(s, lib_copy) for s in stages.CODE} == before
    _edit(lib_copy / "training.py", "def evaluate(", "def evaluate(*_a, **_k):\n    pass\n\n\ndef _evaluate(")
    after = {s: stages.code(s, lib_copy) for s in stages.CODE}
    assert after["classify"] != before["classify"] and after["pretrain"] != before["pretrain"]
    assert after["tokenizers"] == before["tokenizers"], "a tokenizer never imports the classifier's training"


@pytest.fixture()
def toy_run(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "jets_a.h5").write_bytes(b"rows")  # hashed by content only: stages are not built here
    overrides = [f"data.files=[{data}/*.h5]", f"data.objects_file={ROOT / 'params' / 'objects.yaml'}"]
    return lambda *more: runs.open_run(TINY, tmp_path / "run", [*overrides, *more])


def _hashes(run, tmp_path, monkeypatch) -> dict:
    """{stage: inputs hash} of the tokenizers, tokens and classifier stages of `run` (nothing is built)."""
    monkeypatch.setattr(Stage, "__call__", lambda self, fn, log=None: self.path)
    seen = {}
    original = run.stage

    def spy(name, inputs, content=None):
        stage = original(name, inputs, content)
        seen[name] = stage.hash
        return stage

    monkeypatch.setattr(run, "stage", spy)
    stages.tokens(run)  # and the tokenizers it is built from
    token_dir = tmp_path / "tokens"
    token_dir.mkdir(exist_ok=True)
    seen["classify"] = stages._classifier_stage(run, token_dir=token_dir)[0].hash
    return seen


def _classifier_hash_in_worker(job: tuple) -> str:
    from treasure_lib.runs.folder import Run

    run_dir, params, token_dir = job
    return stages._classifier_stage(Run(run_dir, params), token_dir=Path(token_dir))[0].hash


def test_a_classifier_stage_hashes_the_same_in_a_spawned_worker_as_in_its_parent(toy_run, tmp_path):
    import multiprocessing

    run = toy_run()
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    (token_dir / "a.tokens.parquet").write_bytes(b"tokens")
    here = stages._classifier_stage(run, token_dir=token_dir)[0].hash
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pool.map(_classifier_hash_in_worker, [(str(run.dir), run.params, str(token_dir))])[0]
    assert there == here


@pytest.mark.parametrize(
    "kind, override",
    [
        ("evaluation-only", "classify.f_c=0.05"),
        ("evaluation-only", "classify.f_tau=0.05"),
        ("evaluation-only", "classify.pt_bins_gev=[20, 100, 1000]"),
        ("evaluation-only", "classify.n_boot=7"),
        ("performance-only", "export.batch_size=33"),
        # (not data.chunk_size: it sizes the reservoir sample the scalers and codebooks fit on; not classify.jobs:
        # it sets each classifier's thread count: both are part of what a stage built, see config/schema.py)
    ],
)
def test_keys_a_stage_never_reads_rebuild_nothing(toy_run, tmp_path, monkeypatch, kind, override):
    before = _hashes(toy_run(), tmp_path, monkeypatch)
    assert _hashes(toy_run(override), tmp_path, monkeypatch) == before, f"{kind} key {override} rebuilt a stage"


@pytest.mark.parametrize(
    "override, changed",
    [
        ("tokenizer.codebook_size=8", "tokenizers"),
        ("export.layout=flat", "tokens"),
        ("classify.train.lr=0.01", "classify"),
    ],
)
def test_keys_a_stage_reads_rebuild_it(toy_run, tmp_path, monkeypatch, override, changed):
    before = _hashes(toy_run(), tmp_path, monkeypatch)
    after = _hashes(toy_run(override), tmp_path, monkeypatch)
    assert after[changed] != before[changed]


def test_evaluation_only_keys_change_the_numbers_without_retraining(tmp_path):
    folder = tmp_path / "classify-flavour-tokens-100" / "flavour" / "tokens"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    label = np.repeat([0, 1, 2, 3], [150, 150, 600, 100])
    probs = rng.dirichlet(np.ones(4), size=label.size) * 0.8 + 0.2 * np.eye(4)[label]
    np.savez(
        folder / "predictions.npz",
        probs=probs.astype(np.float32),
        label=label,
        weight=np.ones(label.size, np.float32),
        jet_pt=rng.uniform(20e3, 400e3, label.size),
    )
    stage = folder.parents[1]
    (stage / "metrics.json").write_text(
        json.dumps({"classify.flavour.tokens.best_epoch": 3.0, "classify.flavour.tokens.pt_bin_20_1000.n": 1.0})
    )
    params = lambda *o: config.load([DEFAULT], ["classify.seeds=[1]", *o])  # noqa: E731
    first, second = params(), params("classify.f_c=0.05", "classify.pt_bins_gev=[20, 60, 1000]")
    first = stages.evaluated(stage, first.classify, first.study.seed)
    second = stages.evaluated(stage, second.classify, second.study.seed)
    key = "classify.flavour.tokens.light_rejection_at_77"
    assert first[key] != second[key], "f_c shapes D_b, so the rejection follows it"
    assert first["classify.flavour.tokens.best_epoch"] == second["classify.flavour.tokens.best_epoch"] == 3.0
    assert "classify.flavour.tokens.pt_bin_20_1000.n" not in first, "numbers of other pT bins are not kept"
    assert any(k.startswith("classify.flavour.tokens.pt_bin_20_60.") for k in second)


# ----------------------------------------------------------------------------- one lock


@pytest.fixture()
def holder(tmp_path):
    """Another process writing the run folder runs/jets/held (as `treasure run` does) until the test ends."""
    run_dir = tmp_path / "runs" / "jets" / "held"
    script = (
        f"import time; from treasure_lib.runs import lock\n"
        f"with lock.writing({str(run_dir)!r}, 'treasure run'):\n    print('held', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield run_dir
    proc.kill()
    proc.wait()


def test_open_run_with_overrides_during_treasure_run_is_refused_and_changes_nothing(holder):
    """The JupyterLab path with `study.seed=7` while `treasure run` (seed 42) executes: params.yaml stays 42."""
    config.dump(config.load([DEFAULT]), holder / "params.yaml")
    with pytest.raises(lock.RunBusy, match=r"treasure run \(pid \d+ on .*\) is writing this run folder") as caught:
        runs.open_run(DEFAULT, holder, ["study.seed=7"])
    _one_line(str(caught.value))
    assert config.read_yaml(holder / "params.yaml")["study"]["seed"] == 42


def test_a_second_treasure_run_or_cli_step_is_refused_with_one_line(holder, tmp_path, capsys, monkeypatch):
    assert main(["run", "--params", str(DEFAULT), "--run-dir", str(holder), "--chapters", "01_data"]) == 2
    assert "is writing this run folder, so treasure run cannot" in _one_line(capsys.readouterr().err)
    monkeypatch.chdir(tmp_path)  # a step builds the stage of runs/<kind>/<study.name>: the held folder
    (tmp_path / "jets_a.h5").write_bytes(b"rows")
    assert main(["train-tokenizer", "--params", str(DEFAULT), "study.name=held", f"data.files=[{tmp_path}/*.h5]"]) == 2
    assert "is writing this run folder, so treasure train-tokenizer cannot" in _one_line(capsys.readouterr().err)
    assert not (holder / "params.yaml").exists()


def test_a_run_whose_params_another_writer_changed_refuses_to_write(tmp_path):
    first = runs.open_run(DEFAULT, tmp_path / "run")
    runs.open_run(DEFAULT, tmp_path / "run", ["study.seed=7"])
    with pytest.raises(runs.RunError, match="now holds other params than this run was opened with"):
        first.log_metrics({"pretrain.loss": 1.0})
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_new_params_move_the_chapters_completion_aside_with_the_metrics(tmp_path):
    run = runs.open_run(DEFAULT, tmp_path / "run")
    run.log_metrics({"pretrain.loss": 1.0})
    (run.dir / "status.json").write_text('{"chapters": {"02_tokenization": {"state": "complete"}}}')
    Run(run.dir, config.load([DEFAULT], ["tokenizer.codebook_size=8"])).adopt_params()
    assert not (run.dir / "status.json").exists() and (run.dir / "status.previous.json").exists()


# ----------------------------------------------------------------------------- bad input, one line, nothing written


@pytest.mark.parametrize(
    "override, expected",
    [
        ("tokenizer.train.devices=banana", "key 'tokenizer.train.devices' must be a number of devices"),
        ("model.d_model=30", "key 'model.d_model' (30) must be divisible by 'model.n_heads' (4)"),
        ("pretrain.mask_rate=2", "key 'pretrain.mask_rate' is the fraction of positions to predict"),
        ("model.dropout=1.5", "key 'model.dropout' is a probability or fraction"),
        ("classify.label_fraction=0", "key 'classify.label_fraction' must lie in (0, 1]"),
        ("classify.label_fractions=[0.5, 2]", "key 'classify.label_fractions[1]' must lie in (0, 1)"),
        ("study.name=../../../x", "key 'study.name' must be a plain folder name"),
    ],
)
def test_bad_params_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, override, expected):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--params", str(DEFAULT), "--chapters", "01_data", override]) == 2
    assert expected in _one_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir()) and not (tmp_path.parent / "x").exists(), "nothing written anywhere"
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        config.load([DEFAULT], [override])


@pytest.mark.parametrize(
    "edit, expected",
    [
        (("name: ok", "name: ../../.."), "'name' must be a plain folder name"),
        (
            ("chapters: [02_tokenization]", "chapters: [02_tokenisation]"),
            "chapter '02_tokenisation': no chapter matches",
        ),
    ],
)
@pytest.mark.parametrize("verb", ["status", "list"])
def test_bad_scan_files_are_one_line(tmp_path, capsys, monkeypatch, edit, expected, verb):
    monkeypatch.chdir(ROOT)
    scan = tmp_path / "scan.yaml"
    scan.write_text(f"name: ok\nbase: {DEFAULT}\nchapters: [02_tokenization]\n".replace(*edit))
    assert main(["scan", verb, str(scan)]) == 2
    assert expected in _one_line(capsys.readouterr().err)


def test_the_snakefile_quotes_the_scan_path(tmp_path):
    folder = tmp_path / "a b;c"
    folder.mkdir()
    scan = folder / "s.yaml"
    scan.write_text(
        f"name: quoting\nbase: {DEFAULT}\noutput_dir: {tmp_path / 'out'}\ngrid: {{study.seed: [1]}}\n"
        f"chapters: [01_data]\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "workflow" / "Snakefile"),
            "--directory",
            str(ROOT),
            "--config",
            f"scan={scan}",
            "--cores",
            "1",
            "--dry-run",
            "--printshellcmds",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    commands = [ln for ln in out.stdout.splitlines() if "scan point" in ln]
    assert commands and f"scan point '{scan}' --id" in commands[0], out.stdout + out.stderr


def test_a_direct_cli_step_never_writes_into_a_stage_folder(tmp_path, capsys):
    stage_dir = tmp_path / "runs" / "jets" / "x" / "artifacts" / "tokenizers"
    stage_dir.mkdir(parents=True)
    stage_dir.with_name("tokenizers.stage.json").write_text("{}")
    assert main(["train-tokenizer", "--params", str(DEFAULT), f"tokenizer.output_dir={stage_dir}"]) == 2
    assert "is a stage's folder" in _one_line(capsys.readouterr().err)
    assert not any(stage_dir.iterdir())


# ----------------------------------------------------------------------------- end to end (slow)


@pytest.fixture(scope="module")
def jets_data(tmp_path_factory):
    from treasure_lib.generate import generate

    out = tmp_path_factory.mktemp("data")
    generate(
        *generate_sections(
            config.load(
                [DEFAULT],
                [
                    f"generate.output_dir={out}",
                    "generate.samples={ttbar: 300, Zprime_qq: 150}",
                    "generate.layouts=[jets]",
                    "study.seed=11",
                    "generate.workers=1",
                ],
            )
        ),
        progress=False,
    )
    return out


def _data_overrides(data: Path) -> list[str]:
    return [
        f"data.files=[{data}/jets_*.h5]",
        f"generate.output_dir={data}",
        "generate.layouts=[jets]",
        "generate.samples={ttbar: 300, Zprime_qq: 150}",
        "generate.seed=11",
        "classify.jobs=1",
        "tokenizer.train.max_epochs=1",
        "tokenizer.train.limit_train_batches=4",
    ]


BUILD = """
import json, sys
from treasure_lib import runs
from treasure_lib.study import stages
run = runs.open_run(sys.argv[1], sys.argv[2], sys.argv[3:])
print("tokenizers", flush=True)
stages.tokenizers(run)
print("tokens", flush=True)
stages.tokens(run)
print("classify", flush=True)
print(json.dumps(stages.classifier(run)), flush=True)
"""


def _build(run_dir: Path, overrides: list[str], kill_when=None) -> dict | None:
    """Build tokenizers, tokens and a classifier in a process of its own; `kill_when(run_dir)` true: SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(TINY), str(run_dir), *overrides],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if kill_when is not None:
        while proc.poll() is None and not kill_when(run_dir):
            time.sleep(0.05)
        assert proc.poll() is None, "the build ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None
    out, _ = proc.communicate()
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def _untimed(numbers: dict) -> dict:
    return {k: v for k, v in numbers.items() if "seconds" not in k and "per_s" not in k}


@pytest.mark.slow
def test_killed_in_training_and_in_export_a_build_resumes_to_identical_metrics(jets_data, tmp_path):
    overrides = _data_overrides(jets_data)
    training = lambda d: any(d.glob("artifacts/.tokenizers.partial-*/tracks/checkpoints"))  # noqa: E731
    _build(tmp_path / "run", overrides, kill_when=training)
    assert list((tmp_path / "run" / "artifacts").glob(".tokenizers.partial-*"))
    slow_export = [*overrides, "export.batch_size=8", "data.chunk_size=32"]  # performance only: the same stage
    exporting = lambda d: any(d.glob("artifacts/.tokens.partial-*/*"))  # noqa: E731
    _build(tmp_path / "run", slow_export, kill_when=exporting)
    assert list((tmp_path / "run" / "artifacts").glob(".tokens.partial-*"))
    resumed = _build(tmp_path / "run", overrides)
    reference = _build(tmp_path / "reference", overrides)
    assert _untimed(resumed) == _untimed(reference) and len(resumed) > 20
    assert not list((tmp_path / "run").rglob("*partial*")), "no partial folder after the next run"
    records = {
        r: json.loads((tmp_path / r / "artifacts" / "tokens.stage.json").read_text()) for r in ("run", "reference")
    }
    assert records["run"]["content_sha256"] == records["reference"]["content_sha256"], "identical token files"
    artifacts = tmp_path / "run" / "artifacts"
    record = json.loads((artifacts / "tokenizers.stage.json").read_text())
    stage = Stage(artifacts, "tokenizers", record["inputs"])
    assert stage.done
    card_json = stage.path / "tracks" / "card" / "card.json"
    card_json.write_text(card_json.read_text()[:100])  # a corrupt card is not done: it is rebuilt
    assert "card.json has changed" in stage.why_not_done()


@pytest.mark.slow
def test_a_cli_step_with_an_override_then_treasure_run_force_rebuilds_never_reuses_its_cards(
    jets_data, tmp_path, monkeypatch, capsys
):
    """README: `treasure train-tokenizer tokenizer.codebook_size=8`, then `treasure run --force` (params: 16)."""
    for folder in ("params", "notebooks"):
        os.symlink(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    overrides = _data_overrides(jets_data)
    assert main(["train-tokenizer", "--params", str(TINY), *overrides, "tokenizer.codebook_size=8"]) == 0
    run_dir = tmp_path / "runs" / "jets" / "tiny"
    card = run_dir / "artifacts" / "tokenizers" / "tracks" / "card" / "card.json"
    assert json.loads(card.read_text())["vocabulary"]["codebook_size"] == 8
    assert config.read_yaml(run_dir / "params.yaml")["tokenizer"]["codebook_size"] == 8, "the step's params, recorded"
    assert main(["run", "--params", str(TINY), "--chapters", "02_tokenization", "--force", *overrides]) == 0
    assert json.loads(card.read_text())["vocabulary"]["codebook_size"] == 16, "rebuilt for the run's params"
    held = {
        n: i["hash"]
        for f in (run_dir / "artifacts" / "tokens").glob("*.tokens.parquet")
        for n, i in json.loads(pq.read_schema(f).metadata[b"treasure.cards"]).items()
    }
    assert held["tracks"] == cards.card_hash(card.parent), "the token files were made with the cards of the run"
    assert torch.load(card.parent / "weights.pt", weights_only=True), "a card the run can load"
