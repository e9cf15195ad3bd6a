"""Chapter 07 (events): the signal-region classifier tested against each background after the preselection."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.datamodules.tasks import Task
from treasure_lib.study import generalisation as gen

TASK = Task(
    name="h_vs_zz_sr",
    class_names=("qqZZ", "H"),
    classes={"qqZZ_4l": 0, "ggH_ZZ4l": 1},
    others="drop",
    weights="cross_section",
    balance=True,
    require=("pass_h4l_sr",),
)


def _rows(seed=0):
    """400 signal, 400 ZZ*, 300 ttbar and 500 Z+jets test rows; scores: signal ~ 0.7, ZZ* ~ 0.3, ttbar ~ 0.8 (more
    signal-like than the signal), Z+jets ~ 0.5; the signal region holds half of the signal and ZZ*, the preselection
    all of them, 200 ttbar and 3 Z+jets."""
    rng = np.random.default_rng(seed)
    process = np.array(["ggH_ZZ4l"] * 400 + ["qqZZ_4l"] * 400 + ["ttbar"] * 300 + ["Zjets"] * 500)
    centre = {"ggH_ZZ4l": 0.7, "qqZZ_4l": 0.3, "ttbar": 0.8, "Zjets": 0.5}
    probs = np.array([centre[p] for p in process]) + rng.normal(0, 0.1, len(process))
    in_region = np.zeros(len(process), bool)
    in_region[:200], in_region[400:600] = True, True
    pre = np.isin(process, ["ggH_ZZ4l", "qqZZ_4l"])
    pre[800:1000], pre[1100:1103] = True, True
    weight_fb = np.array([{"ggH_ZZ4l": 0.002, "qqZZ_4l": 0.004, "ttbar": 100.0, "Zjets": 500.0}[p] for p in process])
    return process, in_region, pre, probs, weight_fb


def test_the_reference_is_the_trained_region_and_each_background_is_tested_after_the_preselection():
    table, n_signal = gen.after_preselection(TASK, *_rows())
    assert [(r["background"], r["region"]) for r in table] == [
        ("qqZZ_4l", "signal region"),
        ("Zjets", "preselection"),
        ("qqZZ_4l", "preselection"),
        ("ttbar", "preselection"),
    ]
    assert n_signal == {"signal region": 200, "preselection": 400}
    ref, zjets, zz, ttbar = table
    assert ref["n_background"] == 200 and zz["n_background"] == 400 and ttbar["n_background"] == 200
    assert ref["auc"] == pytest.approx(0.9977, abs=0.005)  # two Gaussians 0.4 apart, width 0.1: Phi(2.83)
    assert ttbar["auc"] == pytest.approx(0.24, abs=0.04) and ttbar["auc_change"] < -0.7
    assert zz["trained_on"] and not ttbar["trained_on"]
    assert zjets["n_background"] == 3 and np.isnan(zjets["auc"])  # fewer than 10 events: no AUC
    assert zjets["background_fb"] == pytest.approx(1500.0) and ttbar["background_fb"] == pytest.approx(20000.0)
    assert 0 < ref["auc_err"] < 0.01


def test_metrics_quote_an_auc_only_where_there_are_events():
    table, _ = gen.after_preselection(TASK, *_rows())
    out = gen.generalisation_metrics(table, "qqZZ_4l")
    assert out["generalisation.qqZZ_4l_to_Zjets.n_background"] == 3.0
    assert "generalisation.qqZZ_4l_to_Zjets.auc" not in out and "generalisation.qqZZ_4l_to_ttbar.auc_change" in out
    assert not any(".signal region" in k for k in out)


def _gen(converged=True):
    table, n_signal = gen.after_preselection(TASK, *_rows())
    return {
        "table": table,
        "converged": converged,
        "health": {"converged": 0.0, "best_epoch": 0.0, "epochs_run": 3.0},
        "trained_on": ["qqZZ_4l"],
        "signal": ["ggH_ZZ4l"],
        "n_signal": n_signal,
    }


def test_the_verdict_names_what_the_classifier_learned_and_what_cannot_be_tested():
    text = gen.events_sentence(_gen())
    assert text.startswith("Trained against qq -> ZZ* -> 4l in the signal region (AUC 0.99")
    assert "on its 200 signal and 200 background test events" in text and "(400 signal test events)" in text
    assert "Below 0.5 (ttbar)" in text and "not what the signal looks like" in text
    assert "Fewer than 10 test events pass the preselection for Z + jets (3)" in text
    assert "did not finish learning" in gen.events_sentence(_gen(converged=False))


def test_the_table_lists_the_trained_region_first_with_units():
    rows = gen.events_table(_gen())
    assert rows[0]["events"] == "signal region" and rows[0]["tested against"] == "qq -> ZZ* -> 4l (trained on)"
    assert set(rows[0]) == {
        "tested against",
        "events",
        "AUC",
        "change",
        "background test events",
        "background σ × ε [fb]",
    }
    assert rows[-1]["AUC"] == "—" and rows[-1]["background test events"] == 3
