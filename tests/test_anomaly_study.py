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
    assert "classify.h_vs_zz_sr.tokens_finetuned.label_fraction_25.auc" in keys
    on = p.anomaly.replace(label_efficiency=True)
    assert "classify.h_vs_zz_sr.tokens_finetuned_next_token.label_fraction_25.auc" in [
        key for _, key, _ in anomaly_rows(on, p.study, p.classify)
    ]
    off = p.anomaly.replace(label_efficiency=False)
    assert not any("next_token" in key for _, key, _ in anomaly_rows(off, p.study, p.classify) if "classify" in key)
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


def test_a_count_that_beats_every_model_comes_first_and_a_supervised_reference_of_a_wider_phase_space_is_no_bound():
    """Z' -> tt in the events study: the number of objects alone separates best; and a supervised classifier trained
    on every jet pT but judged above 500 GeV is not an upper bound, so no share of it is quoted."""
    from treasure_lib.anomaly import anomaly_statistics
    from treasure_lib.metrics import paired
    from treasure_lib.study.wording import anomaly_verdict

    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(2000, int), np.ones(500, int)]
    shift = {"masked": 0.4, "autoencoder": 0.8, "supervised": 2.5, "objects": 2.0}
    preds = {k: [rng.normal(0, 1, y.size) + v * y for _ in range(2)] for k, v in shift.items()}
    preds["objects"] = preds["objects"][:1]
    boot = paired.paired_bootstrap(anomaly_statistics, y, None, preds, n_boot=50, seed=0)
    found = {"boot": boot, "controls": {}, "mean_objects": (55.0, 62.0)}
    text = anomaly_verdict("Zprime_tt", found, {s: True for s in shift}, supervised_everywhere="jet pT > 500 GeV")
    assert text.startswith("Without any model, number of objects (no model) separates Z' (2 TeV) -> t tbar better")
    assert "against the best, raw-feature autoencoder" in text
    assert "judged on jet pT > 500 GeV only: no upper bound there" in text
    assert "of the supervised classifier's separation above chance" not in text
    plain = anomaly_verdict("Zprime_tt", {**found}, {s: True for s in shift})
    assert "of the supervised classifier's separation above chance" in plain


def test_a_score_below_chance_is_quoted_with_its_matched_auc_and_not_called_sm_like_when_matching_lifts_it():
    from treasure_lib.anomaly.wording import sm_like_sentence

    def s(auc, err=0.008):
        return {"auc": auc, "auc_err": err, "auc_seed_std": 0.002, "n_seeds": 2, "converged": 1.0}

    summaries = {"masked": s(0.24), "masked_per_object": s(0.44)}
    lifted = {"masked": s(0.52), "masked_per_object": s(0.62)}
    text = sm_like_sentence("the dark shower", summaries, (8.2, 4.9), "jets", matched=lifted)
    assert text.count("with SM matched in number of objects") == 2 and "AUC 0.62" in text
    assert (
        "no longer below 0.5: the count of objects drives them too" in text and "more standard-model-like" not in text
    )
    still = sm_like_sentence("Z'", {"masked_per_object": s(0.13)}, (55.0, 62.0), matched={"masked_per_object": s(0.36)})
    assert "though not by having fewer objects" in still and "with SM matched in number of objects" in still
    assert "more standard-model-like" in still


def test_the_samples_sentence_says_when_the_reference_mixture_holds_a_process_beyond_the_standard_model():
    """The jets study's "SM" is ttbar plus Z' (1.5 TeV) -> qq jets: the page must not call that the standard model."""
    from treasure_lib.study.wording import held_out_sentence

    rows = {"standard_model": 3713, "HV_darkpion_bb": 2808}
    jets = held_out_sentence(["HV_darkpion_bb"], ["ttbar", "Zprime_qq"], rows)
    assert "3713 standard-model test rows (ttbar, Zprime_qq)" in jets and "dark pions" in jets
    assert "not the standard model alone: it holds Z' (1.5 TeV) -> qq" in jets and "not ATLAS simulation" in jets
    assert "not the standard model alone" not in held_out_sentence(["HV_darkpion_bb"], ["ttbar", "qqZZ_4l"], rows)


def test_the_backbone_table_says_stopped_on_a_plateau_and_counts_the_models_whose_best_epoch_is_their_last():
    """A model stopped by the min_delta rule whose best epoch is its last has not reached a minimum: say how many."""
    from types import SimpleNamespace

    from treasure_lib.study.objectives import backbone_health

    metrics = {}
    for prefix, best, run_ in (
        ("pretrain.", 9, 13),
        ("pretrain.masked.seed_43.", 9, 10),
        ("pretrain.next_token.seed_42.", 7, 8),
        ("pretrain.next_token.seed_43.", 5, 9),
    ):
        metrics.update({prefix + "converged": 1.0, prefix + "best_epoch": best, prefix + "epochs_run": run_})
    run = SimpleNamespace(
        metrics=lambda: metrics,
        params=SimpleNamespace(anomaly=SimpleNamespace(seeds=[42, 43]), study=SimpleNamespace(seed=42)),
    )
    ae = {"42": {"converged": True, "parameters": 10, "target_parameters": 11, "best_epoch": 33, "epochs_run": 36}}
    rows, text = backbone_health(run, {"autoencoder": ae})
    assert [r["best epoch / run"] for r in rows] == ["10 / 13", "10 / 10", "8 / 8", "6 / 9", "34 / 36"]
    assert all(r["stopped on a plateau"] == "yes" for r in rows)
    assert "2 of the 5 have their best epoch last" in text and "not at a minimum" in text


def test_a_study_without_the_next_token_curve_says_why_from_chapter_06():
    """A study may leave the next-token label-efficiency curve out (CPU scale); the page then says why, and only
    calls the study unable to resolve it when chapter 06 found no significant fine-tuning difference anywhere."""
    from treasure_lib.study.objectives import not_run_reason

    none = not_run_reason([(0.25, 0.14, False), (0.5, -0.31, False), (1.0, -0.19, False)], "ROC AUC")
    assert "resolves no difference in ROC AUC" in none and "25%: +0.1 σ" in none and "100%: -0.2 σ" in none
    some = not_run_reason([(0.1, 3.9, True), (1.0, 1.5, False)], "light-jet rejection")
    assert "resolves" not in some and "params leave it out" in some
    assert "params leave it out" in not_run_reason([], "ROC AUC"), "no chapter 06 numbers: no claim about them"


def test_the_next_token_curve_trains_nothing_when_switched_off(tmp_path):
    from treasure_lib.runs.folder import Run
    from treasure_lib.study import objectives

    p = config.load([EVENTS])
    on = Run(tmp_path / "on", p.replace(anomaly={"label_efficiency": True}))
    off = Run(tmp_path / "off", p.replace(anomaly={"label_efficiency": False}))
    jobs = objectives.label_efficiency_jobs(on)
    assert len(jobs) == len(objectives.fractions(on)) * len(objectives.VARIANTS) * len(p.classify.seeds)
    assert objectives.label_efficiency_jobs(off) == []
    found = objectives.label_efficiency(off)
    assert found["figure"] is None and "anomaly.label_efficiency: false" in found["text"]
    assert "label_efficiency" not in p.anomaly.stage_inputs(), "switching it must not rebuild the score stages"
