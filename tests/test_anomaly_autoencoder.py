"""The matched-size autoencoder baseline: its size follows the target, it learns a low-dimensional manifold of
standard-model-like objects and flags objects off it, grades each type only on its own feature columns, and says
whether early stopping fired."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from treasure_lib import metrics
from treasure_lib.anomaly import ObjectAutoencoder, autoencoder_scores, matched_hidden, train_autoencoder
from treasure_lib.anomaly.autoencoder import parameter_count
from treasure_lib.errors import InputFileError
from treasure_lib.models import count_parameters

F = 8
pytestmark = pytest.mark.usefixtures("one_torch_thread")
BASIS = np.random.default_rng(42).normal(size=(2, F))  # the 2-d plane in 8 dims the "standard model" lives on


def _rows(n, seed, on_manifold=True):
    """Rows of [CLS] + 2..5 objects; type 1 uses all 8 columns, type 2 only the first 5 (the rest are zero, as
    another collection's feature slots are)."""
    g = np.random.default_rng(seed)
    length = 6
    features = np.zeros((n, length, F), np.float32)
    types = np.zeros((n, length), np.int64)
    mask = np.zeros((n, length), bool)
    for r in range(n):
        k = int(g.integers(2, 6))
        z = g.uniform(-1, 1, (k, 2))
        x = z @ BASIS if on_manifold else g.normal(size=(k, F)) * np.abs(BASIS).mean()
        t = g.integers(1, 3, k)
        x[t == 2, 5:] = 0.0
        features[r, 1 : 1 + k], types[r, 1 : 1 + k] = x, t
        mask[r, : 1 + k] = True
    return {"features": features, "type_ids": types, "mask": mask}


@pytest.fixture(scope="module")
def trained(one_torch_thread):
    return train_autoencoder(
        _rows(600, 0),
        _rows(150, 1),
        hidden=32,
        bottleneck=2,
        seed=0,
        max_epochs=200,
        patience=4,
        min_delta=0.02,
        lr=3e-3,
        batch_size=128,
        n_types=3,
    )


@pytest.mark.parametrize("target", [5_000, 120_000, 800_000])
def test_matched_hidden_gives_the_backbones_parameter_count(target):
    h = matched_hidden(target, feature_dim=F, n_types=4, bottleneck=4)
    n = count_parameters(ObjectAutoencoder(F, 4, h, 4))
    assert n == parameter_count(F, 4, h, 4), "the closed form counts what the module holds"
    assert abs(n - target) / target < 0.03
    for other in (h - 1, h + 1):  # no neighbouring width is closer
        assert abs(parameter_count(F, 4, other, 4) - target) >= abs(n - target)


def test_off_manifold_rows_score_far_above_standard_model_rows(trained):
    model, info = trained
    held_in, off = autoencoder_scores(model, _rows(300, 2)), autoencoder_scores(model, _rows(300, 3, False))
    labels = np.r_[np.zeros(300), np.ones(300)]
    assert metrics.auc(labels, np.r_[held_in, off]) > 0.9
    assert np.median(off) > 5 * np.median(held_in)
    assert info["converged"] and info["epochs_run"] < 200, "early stopping ended it, not the epoch budget"
    assert info["parameters"] == count_parameters(model) and info["train_seconds"] > 0
    assert info["best_val_loss"] == min(info["val_losses"])


def test_best_weights_are_restored(trained):
    model, info = trained
    val = _rows(150, 1)
    from treasure_lib.anomaly.autoencoder import objects_of

    x, t, _ = objects_of(val)
    with torch.no_grad():
        loss = float(model.object_errors(x, t).mean())
    assert loss == pytest.approx(info["best_val_loss"], rel=1e-6)


def test_each_type_is_graded_on_its_own_columns_and_scores_average_its_objects(trained):
    model, _ = trained
    assert model.columns[1].all() and model.columns[2].tolist() == [True] * 5 + [False] * 3
    rows = _rows(5, 4)
    from treasure_lib.anomaly.autoencoder import objects_of

    x, t, row = objects_of(rows)
    with torch.no_grad():
        recon = model(x, t).numpy()
    squared = (recon - x.numpy()) ** 2
    per_object = np.where(t.numpy() == 2, squared[:, :5].mean(1), squared.mean(1))
    expected = [per_object[row == r].mean() for r in range(5)]
    np.testing.assert_allclose(autoencoder_scores(model, rows), expected, rtol=1e-5)


def test_training_is_seeded():
    kwargs = dict(hidden=8, bottleneck=2, max_epochs=2, patience=1, lr=1e-3, batch_size=64, n_types=3)
    a = train_autoencoder(_rows(50, 0), _rows(20, 1), seed=3, **kwargs)[1]["val_losses"]
    b = train_autoencoder(_rows(50, 0), _rows(20, 1), seed=3, **kwargs)[1]["val_losses"]
    c = train_autoencoder(_rows(50, 0), _rows(20, 1), seed=4, **kwargs)[1]["val_losses"]
    assert a == b and a != c


def test_a_run_cut_short_by_its_epoch_budget_is_not_converged():
    _, info = train_autoencoder(
        _rows(100, 0), _rows(30, 1), hidden=16, bottleneck=2, max_epochs=3, patience=5, n_types=3, lr=1e-3
    )
    assert info["epochs_run"] == 3 and not info["converged"]


def test_a_type_the_autoencoder_has_no_embedding_for_is_refused(trained):
    model, _ = trained
    rows = _rows(3, 5)
    rows["type_ids"] = np.where(rows["type_ids"] > 0, 7, 0)
    with pytest.raises(InputFileError, match="type id 7"):
        autoencoder_scores(model, rows)


def test_epoch_objects_caps_training_and_validation_with_one_fixed_validation_subset(monkeypatch):
    """An epoch costs the same whatever the sample size: it draws `epoch_objects` training objects and grades the
    same fixed `val_objects` validation objects every epoch (so epochs compare with each other)."""
    from treasure_lib.anomaly import autoencoder as ae

    graded, trained_on = [], []
    real_error, real_object_errors = ae._mean_error, ae.ObjectAutoencoder.object_errors

    def spy_error(model, features, types):
        graded.append(features.clone())
        return real_error(model, features, types)

    def spy_object_errors(self, features, types):
        if self.training:
            trained_on.append(len(features))
        return real_object_errors(self, features, types)

    monkeypatch.setattr(ae, "_mean_error", spy_error)
    monkeypatch.setattr(ae.ObjectAutoencoder, "object_errors", spy_object_errors)
    val = _rows(200, 1)
    _, info = train_autoencoder(
        _rows(300, 0),
        val,
        hidden=8,
        bottleneck=2,
        max_epochs=3,
        patience=5,
        n_types=3,
        batch_size=50,
        epoch_objects=60,
        val_objects=40,
    )
    assert info["epochs_run"] == 3 and len(graded) == 3
    assert all(len(g) == 40 for g in graded) and all(torch.equal(g, graded[0]) for g in graded)
    every = torch.from_numpy(val["features"][val["mask"] & (val["type_ids"] > 0)])
    assert len(every) > 40 and all(any(torch.equal(x, y) for y in every) for x in graded[0])  # real objects
    assert sum(trained_on) == 3 * 60 and max(trained_on) == 50
