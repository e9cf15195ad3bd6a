"""Pretraining and classification runs on toy token files: documented metrics, determinism, resume."""
from __future__ import annotations

import copy

import pytest

from treasure_lib import metric_keys
from treasure_lib.training import classify, pretrain

from .test_datamodules import token_files  # noqa: F401  (the module fixture)


def _params(token_files, tmp_path, **classify_overrides):
    params, _, _ = token_files
    p = copy.deepcopy(params)
    p["model"].update(d_model=16, n_layers=1, n_heads=2, d_ff=32)
    p["classify"]["tasks"] = {"t": {"classes": {"bkg": ["events_zz", "events_top"], "sig": ["events_sig", "events_qcd"]}}}
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
    assert a == {k: b[k] for k in a if not k.endswith("train_seconds")} | {k: a[k] for k in a if k.endswith("train_seconds")}


def test_pretraining_reports_documented_metrics_and_fine_tuning_loads_its_backbone(token_files, tmp_path):  # noqa: F811
    p = _params(token_files, tmp_path)
    numbers = pretrain(p)
    metric_keys.check(numbers)
    assert 0 <= numbers["pretrain.masked_accuracy"] <= 1 and "pretrain.masked_accuracy.level_1" in numbers
    tuned = classify(_params(token_files, tmp_path, mode="finetune",
                             backbone=str(tmp_path / "pretrain" / "checkpoints" / "best.ckpt")))
    assert "classify.t.tokens_finetuned.auc" in tuned


def test_fine_tuning_without_a_pretrained_backbone_says_what_to_run(token_files, tmp_path):  # noqa: F811
    from treasure_lib.errors import InputFileError

    with pytest.raises(InputFileError, match="no pretrained checkpoint here; run `treasure pretrain` first"):
        classify(_params(token_files, tmp_path, mode="finetune", backbone=str(tmp_path / "none.ckpt")))


def test_a_label_fraction_trains_as_many_steps_as_all_labels(token_files, tmp_path):  # noqa: F811
    """The label-efficiency curve compares labels, not training time: a quarter of the labels, four times the epochs."""
    from treasure_lib.datamodules.tasks import Task
    from treasure_lib.training import _streams, equal_steps, token_files as files_of

    p = _params(token_files, tmp_path, label_fraction=0.25)
    p["classify"]["train"].update(limit_train_batches=None, max_epochs=2, patience=1)
    files, task = files_of(p), Task.from_params(p)
    _, _, part = _streams(p, "classify", files, task, 0.25)
    _, _, full = _streams(p, "classify", files, task, 1.0)
    t = equal_steps(p, files, task, part)
    assert t["max_epochs"] * len(part) >= 2 * len(full) > (t["max_epochs"] - 1) * len(part)
    assert t["patience"] > 1
    p["classify"]["equal_steps"] = False
    assert equal_steps(p, files, task, part)["max_epochs"] == 2
