"""The verdict sentences of the classification chapters, on synthetic numbers: a verdict only from a paired,
significant difference between models that finished learning."""

from __future__ import annotations

from types import SimpleNamespace

from treasure_lib.study import wording


def _c(diff, err, a="tokens_finetuned", b="tokens"):
    from treasure_lib.metrics import significance

    return SimpleNamespace(
        a=a, b=b, diff=diff, err=err, z=diff / err if err else float("nan"), significant=significance(diff, err)
    )


def test_a_difference_within_its_paired_error_is_not_called_a_gain():
    text = wording.difference_verdict(_c(1.0, 0.8), "tokens_finetuned", "tokens", "light-jet rejection")
    assert "do not differ significantly" in text and "ahead" not in text


def test_a_significant_difference_names_the_better_model_first():
    text = wording.difference_verdict(_c(-3.0, 1.0), "tokens_finetuned", "tokens", "light-jet rejection")
    assert "tokens, from scratch is ahead of tokens, fine-tuned by 3.0 ± 1.0, 3.0 σ" in text, (
        "the lead is the better model minus the other: positive, whichever order the pair was given in"
    )


def test_no_verdict_from_a_model_that_did_not_finish_learning():
    text = wording.difference_verdict(_c(5.0, 1.0), "raw", "tokens", "AUC", converged={"raw": False, "tokens": True})
    assert text.startswith("No verdict") and "raw features did not finish learning" in text


def test_label_efficiency_says_when_fine_tuning_lowers_the_rejection():
    """Issue 14: at 10% and 30% of labels fine-tuning lowered light rejection, yet the chapter said it helps."""
    points = [(0.1, _c(-4.1, 1.0)), (0.3, _c(-4.5, 1.2)), (1.0, _c(0.5, 1.0))]
    text = wording.label_efficiency_verdict(points, "light-jet rejection")
    assert "*lowers* it at 10%, 30%" in text and "helps at every fraction" not in text


def test_label_efficiency_helps_everywhere_and_most_where_labels_are_scarce():
    points = [(0.1, _c(6.0, 1.0)), (0.3, _c(4.0, 1.0)), (1.0, _c(2.5, 1.0))]
    assert "helps at every fraction, most where labels are scarce" in wording.label_efficiency_verdict(points, "x")
    points = [(0.1, _c(2.5, 1.0)), (0.3, _c(4.0, 1.0)), (1.0, _c(6.0, 1.0))]
    assert "but not most where labels are scarce" in wording.label_efficiency_verdict(points, "x")


def test_label_efficiency_without_significant_differences_says_nothing_is_gained():
    points = [(0.1, _c(1.0, 1.0)), (1.0, _c(-0.5, 1.0))]
    assert "No difference is significant" in wording.label_efficiency_verdict(points, "x")
    assert "significant only at 10%" in wording.label_efficiency_verdict(
        [(0.1, _c(3.0, 1.0)), (1.0, _c(0.5, 1.0))], "x"
    )


def test_convergence_sentence_names_each_unconverged_seed_and_why():
    health = {
        "tokens": [
            {"seed": 1, "converged": 1.0, "best_epoch": 3, "epochs_run": 7},
            {
                "seed": 2,
                "converged": 0.0,
                "best_epoch": 9,
                "epochs_run": 10,
                "prior_entropy": 1.0,
                "best_val_loss": 0.8,
            },
        ],
        "raw": [
            {
                "seed": 1,
                "converged": 0.0,
                "best_epoch": 4,
                "epochs_run": 8,
                "prior_entropy": 1.01,
                "best_val_loss": 1.026,
            }
        ],
    }
    text = wording.convergence_sentence(health)
    assert text.startswith("2 of 3 models did not finish learning")
    assert "tokens, from scratch (seed 2): still improving: best epoch 10 of 10" in text
    assert "raw features (seed 1): never left the class prior (validation loss 1.026 vs prior entropy 1.010)" in text
    ok = {"tokens": [{"seed": 1, "converged": 1.0}]}
    assert wording.convergence_sentence(ok).startswith("All 1 models finished learning")


def test_cost_sentence_says_where_information_is_lost_and_what_tokens_keep():
    summaries = {
        "raw": {"x": 80.0, "x_err": 5.0},
        "decoded": {"x": 40.0, "x_err": 4.0},
        "tokens": {"x": 20.0, "x_err": 3.0},
    }
    text = wording.cost_sentence(
        summaries,
        "x",
        "light-jet rejection at 77% b-efficiency",
        _c(40.0, 6.0, "raw", "decoded"),
        _c(20.0, 5.0, "decoded", "tokens"),
    )
    assert "Quantisation (raw minus decoded): 40.0 ± 6.0, 6.7 σ — significant" in text
    assert "Tokens keep 25% of the raw-feature light-jet rejection" in text
    above = {"raw": {"x": 0.80}, "decoded": {"x": 0.82}, "tokens": {"x": 0.85}}
    text = wording.cost_sentence(
        above, "x", "ROC AUC", _c(-0.02, 0.01), _c(-0.03, 0.01), _c(-0.05, 0.01, "raw", "tokens")
    )
    assert "the raw-feature model is the one to question" in text, "tokens above raw indict the raw baseline"
    auc = {"raw": {"x": 0.72}, "decoded": {"x": 0.72}, "tokens": {"x": 0.68}}
    text = wording.cost_sentence(auc, "x", "ROC AUC", _c(0.0, 0.01), _c(0.04, 0.01))
    assert "Tokens keep 82% of the raw features' separation above chance, (AUC − 0.5)." in text, (
        "an AUC keeps (0.68 - 0.5) / (0.72 - 0.5), as chapter 04 counts it, not 0.68 / 0.72"
    )


def test_a_rejection_whose_bootstrap_is_undefined_says_so_instead_of_dropping_the_uncertainty():
    from treasure_lib.study.wording import value_text

    few = {"tau_rejection_at_77": 15.5, "tau_rejection_at_77_err": float("nan"), "tau_rejection_at_77_seed_std": 5.47}
    assert value_text(few, "tau_rejection_at_77") == "15.5 ± undefined (too few jets) (seed spread 5.47)"
    assert value_text({"auc": 0.9, "auc_err": 0.01}, "auc") == "0.900 ± 0.010"
    assert value_text({"auc": 0.9}, "auc") == "0.900", "no uncertainty recorded: nothing to call undefined"


def test_the_events_chapter_first_says_whether_the_transformers_beat_one_variable():
    below = {"tokens": _c(-0.07, 0.02), "raw": _c(-0.035, 0.015)}
    text = wording.baseline_sentence(below, "ROC AUC")
    assert text.startswith("Neither transformer reaches the m4l window alone") and "-0.070 ± 0.020, 3.5 σ" in text
    mixed = {"tokens": _c(-0.07, 0.02), "raw": _c(0.01, 0.02)}
    text = wording.baseline_sentence(mixed, "ROC AUC")
    assert "tokens, from scratch falls short, raw features does not differ from it significantly." in text
    assert "the rest" not in text, "events ch06 said 'the rest' beside a GBT 6.7 sigma ahead of the window"
    unfinished = wording.baseline_sentence(
        {"tokens": _c(-0.07, 0.02), "raw": _c(-0.09, 0.02)}, "ROC AUC", {"tokens": True, "raw": False}
    )
    assert "raw features did not finish learning (no verdict)" in unfinished
    assert "raw features does not differ" not in unfinished, "a model 4.5 sigma below is not 'no different'"
    assert wording.baseline_sentence({"tokens": _c(0.1, 0.02), "raw": _c(0.2, 0.02)}, "ROC AUC").startswith("Both")


def test_a_task_reading_some_collections_says_so_and_that_pretraining_read_them_all():
    every = ["event", "electrons", "muons", "taus", "photons", "jets", "tracks", "met"]
    read = ["event", "electrons", "muons", "photons", "jets", "met"]
    text = wording.inputs_sentence("h_vs_zz_sr", read, every)
    assert text.startswith("These classifiers read event, electrons, muons, photons, jets, met of each event, not its")
    assert "not its taus, tracks (`classify.tasks.h_vs_zz_sr.collections`)" in text and "Pretraining" in text
    assert wording.inputs_sentence("t", every, every) == "", "a task that reads everything needs no sentence"
