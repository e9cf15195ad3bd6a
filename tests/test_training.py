"""Pretraining and classification runs on toy token files: documented metrics, determinism, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from treasure_lib import metric_keys
from treasure_lib.config import section_from
from treasure_lib.datamodules.tasks import Task
from treasure_lib.training import _streams, classify, pretrain, token_files, training_seed

from .test_datamodules import token_files as exported  # noqa: F401  (the module fixture)


def _params(exported, tmp_path, **classify_overrides):  # noqa: F811  (the fixture's value)
    params, _, _ = exported
    train = dict(max_epochs=1, batch_size=64, limit_train_batches=5, progress_bar=False, resume=False)
    return params.replace(
        model={"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
        pretrain={"train": train, "output_dir": str(tmp_path / "pretrain")},
        classify={
            "tasks": {"t": {"classes": {"bkg": ["events_zz", "events_top"], "sig": ["events_sig", "events_qcd"]}}},
            "task": "t",
            **classify_overrides,
            "train": train,
            "output_dir": str(tmp_path / "classify"),
        },
    )


def _classify(p):
    return classify(study=p.study, model=p.model, classify=p.classify, tokens=Path(p.export.output_dir))


def _files_and_task(p):
    return token_files(Path(p.export.output_dir)), Task.from_params(p.classify)


def _classifier_streams(p, files, task, label_fraction=1.0):
    seed = training_seed(p.study, p.classify)
    c = p.classify
    return _streams(
        c.train, files, task, seed=seed, label_seed=c.label_seed, pretraining=False, label_fraction=label_fraction
    )


def test_the_same_params_and_seed_give_identical_metrics(exported, tmp_path):  # noqa: F811
    a = _classify(_params(exported, tmp_path / "a"))
    b = _classify(_params(exported, tmp_path / "b"))
    metric_keys.check(a)
    assert a["classify.t.tokens.auc"] == b["classify.t.tokens.auc"], "weights are drawn after seeding"
    assert a == {k: b[k] for k in a if not k.endswith("train_seconds")} | {
        k: a[k] for k in a if k.endswith("train_seconds")
    }


def test_pretraining_reports_documented_metrics_and_fine_tuning_loads_its_backbone(exported, tmp_path):  # noqa: F811
    p = _params(exported, tmp_path)
    tokens = Path(p.export.output_dir)
    numbers = pretrain(study=p.study, model=p.model, pretrain=p.pretrain, classify=p.classify, tokens=tokens)
    metric_keys.check(numbers)
    assert 0 <= numbers["pretrain.masked_accuracy"] <= 1 and "pretrain.masked_accuracy.level_1" in numbers
    tuned = _classify(
        _params(exported, tmp_path, mode="finetune", backbone=str(tmp_path / "pretrain" / "checkpoints" / "best.ckpt"))
    )
    assert "classify.t.tokens_finetuned.auc" in tuned


def test_fine_tuning_without_a_pretrained_backbone_says_what_to_run(exported, tmp_path):  # noqa: F811
    from treasure_lib.errors import InputFileError

    with pytest.raises(InputFileError, match="no pretrained checkpoint here; run `treasure pretrain` first"):
        _classify(_params(exported, tmp_path, mode="finetune", backbone=str(tmp_path / "none.ckpt")))


def test_a_label_fraction_trains_as_many_steps_as_all_labels(exported, tmp_path):  # noqa: F811
    """The label-efficiency curve compares labels, not training time: a quarter of the labels, four times the epochs."""
    from treasure_lib.training import equal_steps

    p = _params(exported, tmp_path, label_fraction=0.25)
    p = p.replace(classify={"train": {"limit_train_batches": None, "max_epochs": 2, "patience": 1}})
    files, task = _files_and_task(p)
    _, _, part, _ = _classifier_streams(p, files, task, 0.25)
    _, _, full, _ = _classifier_streams(p, files, task, 1.0)
    t = equal_steps(p.classify, files, task, part)
    assert t["max_epochs"] * len(part) >= 2 * len(full) > (t["max_epochs"] - 1) * len(part)
    assert t["patience"] > 1
    assert equal_steps(p.classify.replace(equal_steps=False), files, task, part)["max_epochs"] == 2


def test_pretraining_reads_every_training_row_not_only_the_probe_tasks(exported, tmp_path):  # noqa: F811
    """Masked-token pretraining uses no labels: rows outside the probe task (here the top and qcd samples of a
    sig-vs-zz probe) must still be pretrained on; the probe learns from the rows its task labels."""
    p = _params(exported, tmp_path).replace(
        classify={"tasks": {"t": {"classes": {"bkg": ["events_zz"], "sig": ["events_sig"]}, "others": "drop"}}},
        pretrain={"train": {"limit_train_batches": None}},
    )
    files, task = _files_and_task(p)
    _, _, pre_train, pre_val = _streams(
        p.pretrain.train, files, task, seed=training_seed(p.study), label_seed=p.classify.label_seed, pretraining=True
    )
    _, _, cls_train, _ = _classifier_streams(p, files, task)
    everything = len(pre_train.identities())
    assert pre_train.summary["rows"] == everything > cls_train.summary["rows"]
    labels = np.concatenate([b["label"] for b in pre_train.arrays()])
    assert (labels == -1).any() and (labels >= 0).sum() == cls_train.summary["rows"]


def test_a_label_fraction_is_selected_on_the_same_fraction_of_validation_labels(exported, tmp_path):  # noqa: F811
    """At 10% of the labels a model must not be chosen with all validation labels (which it is assumed not to have)."""
    p = _params(exported, tmp_path)
    files, task = _files_and_task(p)
    _, _, _, val_all = _classifier_streams(p, files, task, 1.0)
    _, _, _, val_part = _classifier_streams(p, files, task, 0.25)
    share = val_part.summary["rows"] / val_all.summary["rows"]
    assert 0.1 < share < 0.4
    assert set(val_part.identities().tolist()) < set(val_all.identities().tolist())


def test_classifier_records_training_health_and_the_rows_it_read(exported, tmp_path):  # noqa: F811
    p = _params(exported, tmp_path).replace(classify={"train": {"max_epochs": 2, "patience": 1}})
    numbers = _classify(p)
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
        f: evaluate(task, rows, probs, section_from("classify", {"f_c": 0.2, "f_tau": f, "pt_bins_gev": [20, 1000]}), 0)
        for f in (0.0, 0.3)
    }
    assert out[0.3]["tau_rejection_at_77"] > 1.2 * out[0.0]["tau_rejection_at_77"]
