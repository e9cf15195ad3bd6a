"""The real chapters, end to end on tiny params for both studies, and the book built from those runs (slow)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from treasure_lib import config, metric_keys
from treasure_lib.generate import generate
from treasure_lib.runs import execute

from .conftest import ROOT, generate_sections
from .test_book import _assert_png_shown

pytestmark = pytest.mark.slow
CHAPTERS = [
    "01_data",
    "02_tokenization",
    "03_codebook_diagnostics",
    "04_leakage",
    "05_pretraining",
    "06_classification",
    "07_generalisation",
    "08_anomaly_detection",
]
SAMPLES = (
    "{ttbar: 500, Zprime_qq: 200, ggH_ZZ4l: 300, qqZZ_4l: 600, Zjets: 200, Wjets: 150, WZ_3lnu: 100, Ztautau: 150, "
    "QCD: 150}"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    generate(
        *generate_sections(
            config.load(
                [ROOT / "params" / "default.yaml"],
                [f"generate.output_dir={out}", f"generate.samples={SAMPLES}", "study.seed=11"],
            )
        ),
        progress=False,
    )
    return out


def _run(study: str, data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp(study) / "run"
    prefix = "jets" if study == "tiny_jets" else "events"
    sm = ["ttbar", "Zprime_qq"] if prefix == "jets" else [s.split(":")[0].strip() for s in SAMPLES[1:-1].split(",")]
    # the generator settings the data were made with: chapter 01 then finds them up to date and keeps them; the
    # standard-model files named one by one, as the studies do: chapter 08 writes its held-out signals beside them
    overrides = [
        f"data.files=[{', '.join(f'{data}/{prefix}_{s}_*.h5' for s in sm)}]",
        f"generate.output_dir={data}",
        f"generate.samples={SAMPLES}",
        "generate.seed=11",
    ]
    result = execute([ROOT / "tests" / "data" / f"{study}.yaml"], run_dir, overrides=overrides, cwd=ROOT)
    return run_dir, result


@pytest.fixture(scope="module")
def jets_run(data, tmp_path_factory):
    return _run("tiny_jets", data, tmp_path_factory)


@pytest.fixture(scope="module")
def events_run(data, tmp_path_factory):
    return _run("tiny_events", data, tmp_path_factory)


def _check_run(run_dir, result, expected_keys):
    assert result == {c: "ran" for c in CHAPTERS}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metric_keys.check(metrics)
    for pattern in expected_keys:
        assert any(re.fullmatch(pattern, k) for k in metrics), f"no metrics key matches {pattern}"
    for chapter in CHAPTERS:
        assert (run_dir / "notebooks" / f"{chapter}.ipynb").is_file()
    assert len(list((run_dir / "figures").glob("*.png"))) >= 10
    return metrics


def test_every_chapter_runs_for_the_jets_study(jets_run):
    metrics = _check_run(
        *jets_run,
        [
            r"tokenizer\.tracks\.pt\.response_iqr_over_median",
            r"codebook\.tracks\.level_1\.utilization",
            r"tokenizer\.jets\.track_sum_pt\.response_iqr_over_median",
            r"pretrain\.masked_accuracy",
            r"classify\.flavour\.tokens\.light_rejection_at_77",
            r"classify\.flavour\.raw\.auc_macro",
            r"classify\.flavour\.decoded\.auc_macro",
            r"leakage\.flavour\.multiplicity\.auc_b$",
            r"generalisation\.ttbar_to_ttbar\.light_rejection_at_77",
            r"classify\.flavour\.tokens\.light_rejection_at_77_seed_std",
            r"classify\.flavour\.compare\.tokens_finetuned_vs_tokens\.light_rejection_at_77\.z",
            r"leakage\.flavour\.structure\.converged",
            r"tokenizer\.tracks\.converged",
            r"pretrain\.baseline\.level_1\.most_frequent_share",
            r"classify\.flavour\.tokens_finetuned\.label_fraction_50\.auc_macro",
        ],
    )
    assert 0 <= metrics["codebook.tracks.level_1.utilization"] <= 1
    seeds = [metrics[f"classify.flavour.tokens.seed_{s}.auc_macro"] for s in (1, 2)]
    assert metrics["classify.flavour.tokens.auc_macro"] == pytest.approx(np.mean(seeds), abs=0.02), (
        "the headline is the seed mean (bootstrap statistic), never one seed's or a leakage row's number"
    )
    leak = [k for k in metrics if k.startswith("leakage.flavour.structure.")]
    assert leak and not any(".leakage" in k for k in metrics if k.startswith("classify."))


def test_every_chapter_runs_for_the_events_study(events_run):
    _check_run(
        *events_run,
        [
            r"tokenizer\.leptons\.m4l\.peak_shift_gev",
            r"classify\.h_vs_zz_sr\.tokens\.auc",
            r"classify\.h_vs_zz_sr\.gbdt\.auc",
            r"classify\.h_vs_zz_sr\.mass_window\.auc",
            r"classify\.h_vs_zz_sr\.compare\.tokens_vs_gbdt\.auc\.z",
            r"leakage\.h_vs_all\.shape_fraction",
            r"data\.ggH_ZZ4l\.h4l\.m4l_window\.events",
            r"classify\.multiclass\.raw\.auc_macro",
            r"codebook\.electrons\.level_1\.perplexity",
        ],
    )


def test_the_book_builds_from_the_tiny_runs_and_shows_their_figures(jets_run, events_run, tmp_path):
    from treasure_lib.book.build import build_book

    html = build_book(
        [("Jets", jets_run[0]), ("Events", events_run[0])],
        out=tmp_path / "book",
        templates=ROOT / "book",
        warnings_as_errors=True,
    )
    pages = {p.name for p in html.rglob("*.html")}
    for chapter in CHAPTERS:
        assert any(chapter in name for name in pages), chapter
    results = (html / "results.html").read_text()
    metrics = json.loads((jets_run[0] / "metrics.json").read_text())
    assert "classify.flavour.{tokens,tokens_finetuned,decoded,raw}.light_rejection_at_77" in results
    assert (
        "codebook.tracks.level_1.utilization" in results and metrics["codebook.tracks.level_1.utilization"] is not None
    )
    chapter = next(p for p in html.rglob("*02_tokenization.html"))
    _assert_png_shown(chapter, tmp_path)
