"""The tokenizer comparison page (`comparison: tokenizers`): kinds grouped by bits per track with their seeds, one
paired bootstrap on the same test jets, and verdicts that name a best kind only when it is significantly ahead."""

from __future__ import annotations

import json
import math
from functools import partial

import numpy as np
import pytest

from treasure_lib import config
from treasure_lib import scan as scans
from treasure_lib.errors import ConfigError
from treasure_lib.metrics.paired import flavour_statistics, paired_bootstrap
from treasure_lib.scan import comparison as cmp
from treasure_lib.scan.points import mark

from .conftest import ROOT

STAT, QUANTITY = "light_rejection_at_77", "light-jet rejection at 77% b-efficiency"


def _jets(n=4000, seed=0):
    """Flavour labels (b, c, light, tau) and weights of synthetic test jets."""
    rng = np.random.default_rng(seed)
    return rng.choice(4, size=n, p=[0.3, 0.15, 0.5, 0.05]), np.ones(n)


def _tagger(labels, separation: float, seed: int) -> np.ndarray:
    """Class probabilities whose b-vs-light separation grows with `separation` (seeded noise: a training seed)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(labels.size, 4))
    logits[np.arange(labels.size), labels] += separation
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def _boot(models: dict, labels, weight, n_boot=60):
    stat_fn = partial(flavour_statistics, f_c=0.2, f_tau=0.01)
    return paired_bootstrap(stat_fn, labels, weight, models, n_boot=n_boot, seed=1)


def test_a_kind_far_ahead_of_every_other_is_called_the_best_at_its_budget():
    y, w = _jets()
    boot = _boot(
        {
            "a": [_tagger(y, 1.5, s) for s in (1, 2)],
            "b": [_tagger(y, 0.5, s) for s in (3, 4)],
            "raw": [_tagger(y, 1.6, s) for s in (5, 6)],
        },
        y,
        w,
    )
    labels = {"a": "FSQ", "b": "per-feature binning", "raw": "raw features"}
    text = cmp.budget_verdict(18, ["a", "b"], labels, {"a": True, "b": True, "raw": True}, boot, STAT, QUANTITY, "raw")
    best = boot.summary("a")[STAT]
    assert text.startswith(f"At 18 bits per track, FSQ reaches the highest {QUANTITY} ({best:.3g} ±")
    assert "significantly ahead of every other kind (per-feature binning): it is the best at this budget" in text
    assert "FSQ" in text.split("). ")[1] and "is ahead of per-feature binning" in text, "the paired sentence follows"
    assert "raw features (" in text, "and the distance to the raw-feature reference"


def test_two_kinds_within_their_uncertainty_are_not_ranked():
    y, w = _jets(n=1500)
    boot = _boot(
        {
            "a": [_tagger(y, 1.2, s) for s in (1, 2)],
            "c": [_tagger(y, 1.2, s) for s in (7, 8)],
            "b": [_tagger(y, 0.3, s) for s in (3, 4)],
        },
        y,
        w,
    )
    labels = {"a": "VQ-VAE (MLP)", "b": "per-feature binning", "c": "residual k-means"}
    text = cmp.budget_verdict(27, ["a", "b", "c"], labels, dict.fromkeys("abc", True), boot, STAT, QUANTITY)
    level = [k for k in "ac" if k != max("ac", key=lambda k: boot.summary(k)[STAT])][0]
    assert f"it is not significantly ahead of {labels[level]}, so no single kind is best at this budget" in text
    assert "(it is significantly ahead of per-feature binning)" in text
    assert "raw features" not in text, "no reference point: no reference sentence"


def test_an_entry_whose_classifier_did_not_converge_carries_no_verdict():
    y, w = _jets(n=1500)
    boot = _boot({"a": [_tagger(y, 1.2, 1)], "b": [_tagger(y, 1.6, 2)], "raw": [_tagger(y, 1.2, 3)]}, y, w)
    labels = {"a": "FSQ", "b": "VQ-VAE (transformer)", "raw": "raw features"}
    text = cmp.budget_verdict(
        36, ["a", "b"], labels, {"a": True, "b": False, "raw": False}, boot, STAT, QUANTITY, "raw"
    )
    assert "FSQ reaches the highest" in text and "the only kind judged at this budget" in text, (
        "the better but unconverged transformer is not ranked"
    )
    assert text.endswith("Not judged (a classifier seed did not finish learning): VQ-VAE (transformer).")
    assert "raw features did not finish learning: no verdict against the reference" in text
    none = cmp.budget_verdict(36, ["b"], labels, {"b": False}, boot, STAT, QUANTITY)
    assert "no kind has every classifier seed converged: no verdict" in none


def test_reconstruction_verdict_prefers_the_lowest_response_spread_and_tests_the_gap():
    text = cmp.reconstruction_verdict(
        18, {"FSQ": (0.20, 0.004), "binning": (0.35, 0.006), "k-means": (0.21, 0.004)}, "jet pT response IQR/median"
    )
    assert text == (
        "At 18 bits per track, FSQ has the best jet pT response IQR/median, 0.2000 ± 0.0040; k-means is "
        "not significantly worse (0.2100 ± 0.0040, a difference of 0.0100 ± 0.0057)."
    )
    far = cmp.reconstruction_verdict(27, {"FSQ": (0.20, 0.004), "binning": (0.35, 0.006)}, "x")
    assert "binning is significantly worse" in far
    assert cmp.reconstruction_verdict(27, {"FSQ": (math.nan, 0.1)}, "x") == "At 27 bits per track no kind has a x."


@pytest.mark.parametrize(
    "overrides, kind",
    [
        ([], "VQ-VAE (MLP)"),
        (["tokenizer.encoder=transformer"], "VQ-VAE (transformer)"),
        (["tokenizer.quantizer=rfsq"], "FSQ"),
        (["tokenizer.kind=kmeans"], "residual k-means"),
        (["tokenizer.kind=binning"], "per-feature binning"),
        (["classify.inputs=features"], "raw features"),
        (["tokenizer.per_collection={tracks: {kind: kmeans}}"], "residual k-means"),
    ],
)
def test_kind_of_a_point_reads_its_tracks_tokenizer(overrides, kind):
    params = config.load([ROOT / "params" / "default.yaml"], overrides)
    assert cmp.kind_of(params.classify, params.tokenizer) == kind


SCAN = """\
name: cmp
base: {base}
output_dir: {out}
overrides: [classify.compare=false]
chapters: [02_tokenization, 03_codebook_diagnostics, 06_classification]
comparison: tokenizers
zip:
  - {{tokenizer.kind: [vqvae, kmeans], tokenizer.quantizer: [rfsq, rvq]}}
  - {{tokenizer.codebook_size: [64, 512], tokenizer.fsq_levels: [[4, 4, 4], [8, 8, 8]]}}
grid:
  classify.seed: [1, 2]
points:
  - {{classify.inputs: features, classify.seed: 1}}
  - {{classify.inputs: features, classify.seed: 2}}
"""


def _fake_point(p, labels, separation, bits, jet_response):
    """What a point's chapters leave behind: metrics.json, the classifier's predictions, a complete state."""
    from treasure_lib.training import metrics_prefix, variant_name

    c = p.resolved.classify
    stage = p.dir / "artifacts" / f"classify-flavour-{variant_name(c)}-100" / "flavour"
    stage.mkdir(parents=True)
    np.savez(
        stage / "predictions.npz",
        probs=_tagger(labels, separation, c.seed),
        label=labels,
        weight=np.ones(labels.size, np.float32),
        event_number=np.arange(labels.size),
    )
    prefix = metrics_prefix(c)
    metrics = {
        f"{prefix}.converged": 1.0,
        f"{prefix}.light_rejection_at_77": 1.0,
        "tokenizer.tracks.bits_per_object": bits,
        "tokenizer.tracks.pt.response_iqr_over_median": 0.3,
        "tokenizer.jets.track_sum_pt.response_iqr_over_median": jet_response,
        "tokenizer.jets.track_sum_pt.response_iqr_over_median_err": 0.002,
        "export.rows_per_s": 1000.0 * bits,
        "codebook.tracks.level_1.utilization": 1.0,
        "tokenizer.tracks.train_seconds": 5.0,
    }
    (p.dir / "metrics.json").write_text(json.dumps(metrics))
    mark(p, state="complete", chapters=["02_tokenization", "03_codebook_diagnostics", "06_classification"])


def test_scan_page_groups_seeds_by_kind_and_budget_and_pairs_them_against_raw(tmp_path):
    path = tmp_path / "cmp.yaml"
    path.write_text(SCAN.format(base=ROOT / "params" / "default.yaml", out=tmp_path / "scan"))
    scan = scans.load_scan(path)
    points = scans.expand(scan)
    assert len(points) == 2 * 2 * 2 + 2 and points[-1].values == {"classify.inputs": "features", "classify.seed": 2}
    assert scan.axes[-1] == "classify.inputs", "a key only the single points set is an axis of the table"
    labels, _ = _jets(n=2000)
    for p in points:
        r = p.resolved
        kind, bits = cmp.kind_of(r.classify, r.tokenizer), (18.0 if r.tokenizer.codebook_size == 64 else 27.0)
        separation = {"FSQ": 1.2, "residual k-means": 0.8, "raw features": 1.5}[kind] + (bits == 27) * 0.2
        _fake_point(p, labels, separation, bits, 0.2 if kind == "FSQ" else 0.3)
    found = cmp.entries(points, {p.id: "complete" for p in points})
    assert [(e.kind, e.bits, len(e.points)) for e in found] == [
        ("FSQ", 18, 2),
        ("residual k-means", 18, 2),
        ("FSQ", 27, 2),
        ("residual k-means", 27, 2),
        ("raw features", math.inf, 2),
    ]
    assert [p.resolved.classify.seed for p in found[0].points] == [1, 2]
    out = scans.summarize(scan)
    page = out["page"].read_text()
    assert "## Which tokenizer?" in page and page.index("## Which tokenizer?") < page.index("## Points")
    assert "At 18 bits per track, FSQ reaches the highest light-jet rejection" in page
    assert "At 27 bits per track, FSQ has the best jet pT response IQR/median" in page
    assert "By light-jet rejection at 77% b-jet efficiency, raw features (" in page
    for f in ("reconstruction_vs_bits", "light_rejection_at_77_vs_bits", "c_rejection_at_77_vs_bits", "export_speed"):
        assert (tmp_path / "scan" / "figures" / f"{f}.png").is_file() and f"figures/{f}.png" in page
    boot = cmp.paired(found, n_boot=20)
    fsq = boot.summary("FSQ @ 18 bits")
    assert f"{fsq[STAT]:.3g}" in page.replace(",", ""), "the table quotes the bootstrap's seed mean"


def test_points_evaluated_on_other_test_rows_are_refused(tmp_path):
    path = tmp_path / "cmp.yaml"
    path.write_text(SCAN.format(base=ROOT / "params" / "default.yaml", out=tmp_path / "scan"))
    points = scans.expand(scans.load_scan(path))
    labels, _ = _jets(n=500)
    for i, p in enumerate(points):
        _fake_point(p, labels if i else np.roll(labels, 1), 1.0, 18.0, 0.3)
    found = cmp.entries(points, {p.id: "complete" for p in points})
    with pytest.raises(ConfigError, match="other test rows"):
        cmp.paired(found, n_boot=5)


def test_a_single_point_of_a_scan_file_must_be_a_mapping_of_params_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nbase: {ROOT / 'params' / 'default.yaml'}\npoints: [classify.inputs]\n")
    with pytest.raises(ConfigError, match=r"points\[0\] must be a mapping"):
        scans.load_scan(path)
    path.write_text(f"name: bad\nbase: {ROOT / 'params' / 'default.yaml'}\npoints: [{{inputs: features}}]\n")
    with pytest.raises(ConfigError, match="dotted params key"):
        scans.load_scan(path)
