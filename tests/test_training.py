"""Pretraining and classification runs on toy token files: documented metrics, determinism, resume."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from treasure_lib import metric_keys
from treasure_lib.training import classify, pretrain

from .test_datamodules import token_files  # noqa: F401, F811  (the module fixture)


def _params(token_files, tmp_path, **classify_overrides):  # noqa: F811  (the fixture's value)
    params, _, _ = token_files
    p = copy.deepcopy(params)
    p["model"].update(d_model=16, n_layers=1, n_heads=2, d_ff=32)
    p["classify"]["tasks"] = {
        "t": {"classes": {"bkg": ["events_zz", "events_top"], "sig": ["events_sig", "events_qcd"]}}
    }
    p["classify"]["task"] = "t"
    p["classify"].update(classify_overrides)
    for section in ("pretrain", "classify"):
        p[section]["train"].update(max_epochs=1, batch_size=64, limit_train_batches=5, progress_bar=False, resume=False)
        p[section]["output_dir"] = str(tmp_path / section)
    return p


def test_the_same_params_and_seed_give_identical_metrics(token_files, tmp_path):  # noqa: F811
    a = classify(_params(token_files, tmp_path / "a"))
    b = classify(_params(token_files, tmp_path / "b"))
    metric_keys.check(a)
    assert a["classify.t.tokens.auc"] == b["classify.t.tokens.auc"], "weights are drawn after seeding"
    assert a == {k: b[k] for k in a if not k.endswith("train_seconds")} | {
        k: a[k] for k in a if k.endswith("train_seconds")
    }


def test_pretraining_reports_documented_metrics_and_fine_tuning_loads_its_backbone(token_files, tmp_path):  # noqa: F811
    p = _params(token_files, tmp_path)
    numbers = pretrain(p)
    metric_keys.check(numbers)
    assert 0 <= numbers["pretrain.masked_accuracy"] <= 1 and "pretrain.masked_accuracy.level_1" in numbers
    tuned = classify(
        _params(
            token_files, tmp_path, mode="finetune", backbone=str(tmp_path / "pretrain" / "checkpoints" / "best.ckpt")
        )
    )
    assert "classify.t.tokens_finetuned.auc" in tuned


def test_fine_tuning_without_a_pretrained_backbone_says_what_to_run(token_files, tmp_path):  # noqa: F811
    from treasure_lib.errors import InputFileError

    with pytest.raises(InputFileError, match="no pretrained checkpoint here; run `treasure pretrain` first"):
        classify(_params(token_files, tmp_path, mode="finetune", backbone=str(tmp_path / "none.ckpt")))


def test_a_label_fraction_trains_as_many_steps_as_all_labels(token_files, tmp_path):  # noqa: F811
    """The label-efficiency curve compares labels, not training time: a quarter of the labels, four times the epochs."""
    from treasure_lib.datamodules.tasks import Task
    from treasure_lib.training import _streams, equal_steps
    from treasure_lib.training import token_files as files_of

    p = _params(token_files, tmp_path, label_fraction=0.25)
    p["classify"]["train"].update(limit_train_batches=None, max_epochs=2, patience=1)
    files, task = files_of(p), Task.from_params(p)
    _, _, part, _ = _streams(p, "classify", files, task, 0.25)
    _, _, full, _ = _streams(p, "classify", files, task, 1.0)
    t = equal_steps(p, files, task, part)
    assert t["max_epochs"] * len(part) >= 2 * len(full) > (t["max_epochs"] - 1) * len(part)
    assert t["patience"] > 1
    p["classify"]["equal_steps"] = False
    assert equal_steps(p, files, task, part)["max_epochs"] == 2


def test_pretraining_reads_every_training_row_not_only_the_probe_tasks(token_files, tmp_path):  # noqa: F811
    """Masked-token pretraining uses no labels: rows outside the probe task (here the top and qcd samples of a
    sig-vs-zz probe) must still be pretrained on; the probe learns from the rows its task labels."""
    from treasure_lib.datamodules.tasks import Task
    from treasure_lib.training import _streams
    from treasure_lib.training import token_files as files_of

    p = _params(token_files, tmp_path)
    p["classify"]["tasks"] = {"t": {"classes": {"bkg": ["events_zz"], "sig": ["events_sig"]}, "others": "drop"}}
    p["pretrain"]["train"]["limit_train_batches"] = None
    files, task = files_of(p), Task.from_params(p)
    _, _, pre_train, pre_val = _streams(p, "pretrain", files, task)
    _, _, cls_train, _ = _streams(p, "classify", files, task)
    everything = len(pre_train.identities())
    assert pre_train.summary["rows"] == everything > cls_train.summary["rows"]
    labels = np.concatenate([b["label"] for b in pre_train.arrays()])
    assert (labels == -1).any() and (labels >= 0).sum() == cls_train.summary["rows"]


def test_a_label_fraction_is_selected_on_the_same_fraction_of_validation_labels(token_files, tmp_path):  # noqa: F811
    """At 10% of the labels a model must not be chosen with all validation labels (which it is assumed not to have)."""
    from treasure_lib.datamodules.tasks import Task
    from treasure_lib.training import _streams
    from treasure_lib.training import token_files as files_of

    p = _params(token_files, tmp_path)
    files, task = files_of(p), Task.from_params(p)
    _, _, _, val_all = _streams(p, "classify", files, task, 1.0)
    _, _, _, val_part = _streams(p, "classify", files, task, 0.25)
    share = val_part.summary["rows"] / val_all.summary["rows"]
    assert 0.1 < share < 0.4
    assert set(val_part.identities().tolist()) < set(val_all.identities().tolist())


def test_classifier_records_training_health_and_the_rows_it_read(token_files, tmp_path):  # noqa: F811
    p = _params(token_files, tmp_path)
    p["classify"]["train"].update(max_epochs=2, patience=1)
    numbers = classify(p)
    assert numbers["classify.t.tokens.epochs_run"] == 2
    assert numbers["classify.t.tokens.converged"] in (0.0, 1.0)
    import json

    val = json.loads(next((tmp_path / "classify").rglob("summary.json")).read_text())["val_rows"]
    fractions = np.array(val["class_counts"]) / sum(val["class_counts"])  # unweighted task: counts are the weights
    assert numbers["classify.t.tokens.prior_entropy"] == pytest.approx(-(fractions * np.log(fractions)).sum(), rel=1e-6)
    rows = np.load(next((tmp_path / "classify").rglob("rows_read.npz")))
    assert set(rows.files) == {"train", "val", "test"}
    assert not set(rows["train"].tolist()) & set(rows["test"].tolist())


def test_the_b_tagging_discriminant_counts_tau_jets_as_background():
    """D_b = ln(p_b / (f_c p_c + f_tau p_tau + (1 - f_c - f_tau) p_light)): with f_tau > 0 a tau-like jet scores
    lower, so tau rejection rises (issue 14: D_b ignored the tau class)."""
    from treasure_lib.datamodules.tasks import Task
    from treasure_lib.training import evaluate

    rng = np.random.default_rng(1)
    n = 4000
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4)) + 2.0 * np.eye(4)[y]
    logits[y == 3, 0] += 1.5  # tau jets look a little like b-jets
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    task = Task("flavour", ("b", "c", "light", "tau"), column="label")
    rows = {"label": y, "weight": np.ones(n)}
    out = {
        f: evaluate(
            task, rows, probs, {"classify": {"f_c": 0.2, "f_tau": f, "pt_bins_gev": [20, 1000]}, "study": {"seed": 0}}
        )
        for f in (0.0, 0.3)
    }
    assert out[0.3]["tau_rejection_at_77"] > 1.2 * out[0.0]["tau_rejection_at_77"]
