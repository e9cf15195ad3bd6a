"""Chapter 08's plumbing: the signals stay held out, every score is judged on the same chosen test rows, each
backbone (objective, seed) has its own stage and metrics, and the numbers the chapter quotes are the right ones."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import config
from treasure_lib.book.results import anomaly_rows
from treasure_lib.errors import ConfigError
from treasure_lib.study import anomaly, held_out, stages
from treasure_lib.training import metrics_prefix, variant_name

from .conftest import ROOT

JETS = ROOT / "params" / "default.yaml"
EVENTS = ROOT / "params" / "studies" / "events.yaml"


def test_a_signal_the_study_also_generates_is_refused_as_not_held_out():
    with pytest.raises(ConfigError, match="held out"):
        config.load([JETS], ["anomaly.signals={ttbar: 100}"])


def test_a_signal_whose_files_the_study_reads_is_refused():
    p = config.load([JETS], ["data.files=[runs/data/jets_*.h5]"])
    with pytest.raises(ConfigError, match="held out"):
        held_out.signals(p.anomaly, p.data, p.generate, "jets")


def test_the_default_studies_score_held_out_signals_against_their_own_standard_model():
    for path, sm, kind in ((JETS, {"ttbar", "Zprime_qq"}, "jets"), (EVENTS, {"ggH_ZZ4l", "qqZZ_4l", "QCD"}, "events")):
        p = config.load([path])
        found = held_out.standard_model(p.data, p.generate, kind)
        assert sm <= set(found)
        signals = held_out.signals(p.anomaly, p.data, p.generate, kind)
        assert signals and not set(signals) & set(found)
    assert "H2_ZZ4l_300" in config.load([EVENTS]).anomaly.signals


def test_signals_are_exported_with_their_own_split_and_a_label_for_every_sample():
    p = config.load([EVENTS])
    data = held_out.export_data(p.data, p.anomaly)
    assert data.split.test == pytest.approx(0.4) and data.split.salt == p.data.split.salt
    assert all(data.label["classes"][s] == 1 for s in p.anomaly.signals)
    assert data.label["classes"]["qqZZ_4l"] == 0  # the standard model keeps its labels
    jets = config.load([JETS])
    assert held_out.export_data(jets.data, jets.anomaly).label == jets.data.label  # flavour labels untouched


def test_chosen_rows_keep_every_row_up_to_the_cap_and_a_fixed_sorted_subset_beyond():
    process = np.array(["ttbar"] * 50 + ["HV"] * 30 + ["Zprime_qq"] * 40 + ["Ztt"] * 5)
    chosen = anomaly.chosen_rows(process, ["standard_model", "HV", "Ztt"], 35, seed=3)
    assert len(chosen["standard_model"]) == 35 and set(process[chosen["standard_model"]]) <= {"ttbar", "Zprime_qq"}
    assert np.all(np.diff(chosen["standard_model"]) > 0)
    assert len(chosen["HV"]) == 30 and len(chosen["Ztt"]) == 5  # all of them
    again = anomaly.chosen_rows(process, ["standard_model", "HV", "Ztt"], 35, seed=3)
    assert all(np.array_equal(chosen[k], again[k]) for k in chosen)


def test_object_count_skips_cls_sep_and_padding():
    tokens = np.array([[[1, 4], [9, 10], [11, 12], [2, 4], [0, 0]]])
    rows = {
        "tokens": tokens,
        "type_ids": np.array([[0, 1, 2, 0, 0]]),
        "mask": np.array([[True, True, True, True, False]]),
    }
    assert anomaly.object_count(rows).tolist() == [2]


def test_each_backbone_has_its_own_stage_identity_and_metrics_prefix():
    class FakeRun:
        params = config.load([JETS])

    run = FakeRun()
    assert stages.pretrain_variant(run, "masked", 42) == ({}, None)  # chapter 05's backbone
    assert stages.pretrain_variant(run, "masked", None) == ({}, None)
    assert stages.pretrain_variant(run, "next_token", 42) == (
        {"objective": "next_token", "seed": None},
        "next_token.seed_42",
    )
    assert stages.pretrain_variant(run, "masked", 43) == ({"objective": "masked", "seed": 43}, "masked.seed_43")


def test_a_classifier_fine_tuned_from_the_next_token_backbone_logs_apart_from_chapter_06s():
    c = config.load([JETS]).classify
    assert variant_name(c.replace(mode="finetune")) == "tokens_finetuned"
    tuned = c.replace(mode="finetune", backbone_objective="next_token", label_fraction=0.1)
    assert variant_name(tuned) == "tokens_finetuned_next_token"
    assert metrics_prefix(tuned) == "classify.flavour.tokens_finetuned_next_token.label_fraction_10"
    assert variant_name(c.replace(backbone_objective="next_token")) == "tokens"  # scratch reads no backbone


def test_the_results_page_names_each_signal_and_score():
    p = config.load([EVENTS])
    rows = anomaly_rows(p.anomaly, p.study, p.classify)
    keys = [key for _, key, _ in rows]
    assert "anomaly.H2_ZZ4l_300.masked.auc" in keys and "anomaly.H2_ZZ4l_300.supervised.auc" in keys
    assert "classify.h_vs_zz_sr.tokens_finetuned_next_token.label_fraction_25.auc" in keys
    assert all(label and "_" not in label.split(":")[0] for label, _, _ in rows if label.startswith("Anomaly"))


def _comparison(diff: float, err: float):
    from treasure_lib.metrics import Comparison, significance

    return Comparison(
        a="tokens_finetuned_next_token",
        b="tokens_finetuned",
        stat="auc",
        diff=diff,
        err_test=err,
        err_seed=0.0,
        err=err,
        z=diff / err,
        significant=significance(diff, err),
        value_a=0.8 + diff,
        err_a=err,
        n_seeds_a=3,
        value_b=0.8,
        err_b=err,
        n_seeds_b=3,
        dropped_fraction=0.0,
    )


def test_the_objectives_verdict_names_a_lead_only_where_the_paired_difference_is_significant():
    from treasure_lib.study.wording import objective_verdict

    none = objective_verdict([(0.1, _comparison(0.01, 0.01)), (1.0, _comparison(-0.01, 0.01))], "AUC")
    assert "do not differ significantly at any fraction" in none
    ahead = objective_verdict([(0.1, _comparison(0.05, 0.01)), (1.0, _comparison(0.001, 0.01))], "AUC")
    assert ahead.endswith("The next-token backbone is ahead at 10% of the labels.")
    behind = objective_verdict([(0.3, _comparison(-0.05, 0.01))], "AUC")
    assert behind.endswith("The masked backbone is ahead at 30% of the labels.")
    mixed = objective_verdict([(0.1, _comparison(0.05, 0.01)), (1.0, _comparison(-0.05, 0.01))], "AUC")
    assert "ahead at 10% and behind at 100%" in mixed
    assert "no verdict" in objective_verdict([], "AUC")


def test_the_anomaly_paragraph_ranks_scores_on_the_paired_bootstrap_and_quotes_the_upper_bound():
    from treasure_lib.anomaly import anomaly_statistics
    from treasure_lib.metrics import paired
    from treasure_lib.study.wording import anomaly_verdict

    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(2000, int), np.ones(500, int)]
    shift = {"masked": 1.5, "next_token": 0.2, "reconstruction": 0.0, "autoencoder": 0.1, "supervised": 3.0}
    preds = {k: [rng.normal(0, 1, y.size) + v * y for _ in range(2)] for k, v in shift.items()}
    boot = paired.paired_bootstrap(anomaly_statistics, y, None, preds, n_boot=50, seed=0)
    found = {"boot": boot, "controls": {}, "mean_objects": (10.0, 12.0)}
    text = anomaly_verdict("HV_darkpion_bb", found, {s: True for s in shift})
    assert "masked-token pseudo-likelihood ranks it best" in text and "larger than the test-sample" in text
    assert "of the supervised classifier's separation above chance" in text
    text = anomaly_verdict("HV_darkpion_bb", found, {**{s: True for s in shift}, "supervised": False})
    assert "did not finish learning: no upper bound is quoted" in text
