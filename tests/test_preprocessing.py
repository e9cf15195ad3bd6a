"""Feature scalers: exact inverses, valid-only fitting, categories, JSON state, streaming samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.io.toy import make_batch
from treasure_lib.preprocessing import CollectionScaler, FeatureScaler, reservoir_sample


def _physics_like(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "pt": np.exp(rng.normal(9.5, 1.0, n)),  # MeV, log-normal
        "d0": rng.standard_t(3, n) * 0.05,  # mm, heavy tails
        "mass": np.where(rng.random(n) < 0.1, 0.0, rng.exponential(5e3, n)),
        "charge": rng.choice([-1.0, 1.0], n),
    }


@pytest.mark.parametrize(
    "kind, feature",
    [
        ("identity", "d0"),
        ("standard", "d0"),
        ("log_standard", "pt"),
        ("log_standard", "mass"),
        ("quantile", "d0"),
        ("log_quantile", "pt"),
    ],
)
def test_scalers_invert_exactly(kind, feature):
    x = _physics_like()[feature]
    s = FeatureScaler(feature, kind).fit(x)
    y = s.forward(x)
    assert np.isfinite(y).all()
    back = s.inverse(y)
    if kind.endswith("quantile"):  # exact inside the fitted range, away from the clipped extreme tails
        inside = (x > np.quantile(x, 1e-3)) & (x < np.quantile(x, 1 - 1e-3))
        np.testing.assert_allclose(back[inside], x[inside], rtol=1e-6, atol=1e-9)
    else:
        np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-9)


def test_standard_and_quantile_outputs_are_normalised():
    x = _physics_like()["pt"]
    y = FeatureScaler("pt", "log_standard").fit(x).forward(x)
    assert abs(y.mean()) < 1e-6 and abs(y.std() - 1) < 1e-6
    z = FeatureScaler("pt", "quantile").fit(x).forward(x)
    assert abs(np.median(z)) < 0.01 and abs(np.std(z) - 1) < 0.05


def test_categorical_features_are_categories_not_floats():
    s = FeatureScaler("charge", "categorical").fit(np.array([-1.0, 1.0, 1.0, -1.0]))
    assert s.categories == [-1.0, 1.0]
    assert s.forward(np.array([1.0, -1.0])).tolist() == [1, 0]
    assert s.inverse(np.array([1, 0])).tolist() == [1.0, -1.0]
    with pytest.raises(ConfigError, match="declared categorical but has 1000 distinct values"):
        FeatureScaler("d0", "categorical").fit(np.arange(1000.0))


def test_collection_scaler_fits_on_valid_entries_only_and_round_trips(jet_collections):
    c = jet_collections["tracks"]
    batch = make_batch({"tracks": c}, 500, seed=3)
    oa = batch["tracks"]
    oa.features[~oa.mask] = 1e9  # garbage in the padding must not move the fit
    scaler = CollectionScaler.for_collection(c).fit(oa.features, oa.mask)
    clean = CollectionScaler.for_collection(c).fit(np.where(oa.mask[..., None], oa.features, 0), oa.mask)
    assert scaler.state() == clean.state()
    cont, cat = scaler.transform(oa.features, oa.mask)
    assert cont.shape == (500, 40, len(c.features) - 1) and cat.shape == (500, 40, 1)  # leptonID is categorical
    assert (cont[~oa.mask] == 0).all()
    back = scaler.inverse(cont, cat)
    np.testing.assert_allclose(back[oa.mask], oa.features[oa.mask], rtol=1e-5, atol=1e-4)


def test_scaler_state_is_plain_json(jet_collections):
    c = jet_collections["tracks"]
    batch = make_batch({"tracks": c}, 200)
    scaler = CollectionScaler.for_collection(c, {"d0": "quantile"}).fit(batch["tracks"].features, batch["tracks"].mask)
    text = scaler.to_json()
    again = CollectionScaler.from_state(json.loads(text))
    a = scaler.transform(batch["tracks"].features, batch["tracks"].mask)
    b = again.transform(batch["tracks"].features, batch["tracks"].mask)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_unknown_scaler_kind_and_feature_are_explained(jet_collections):
    with pytest.raises(ConfigError, match="unknown scaler kind"):
        CollectionScaler.for_collection(jet_collections["tracks"], {"d0": "robust"})
    with pytest.raises(ConfigError, match=r"feature\(s\) \['d00'\] that are not among"):
        CollectionScaler.for_collection(jet_collections["tracks"], {"d00": "quantile"})


def test_reservoir_sample_is_bounded_and_seeded(jet_collections):
    batches = [make_batch(jet_collections, 1000, seed=i, start=1000 * i) for i in range(10)]
    a = reservoir_sample(iter(batches), "tracks", max_objects=5000, seed=1)
    b = reservoir_sample(iter(batches), "tracks", max_objects=5000, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    first = batches[0]["tracks"].mask
    per_row = first.sum() / first.any(1).sum()  # rows without a track are never sampled
    assert len(a[0]) == int(5000 / per_row) < 10_000
    assert a.mask.any(1).all()
    # rows from late batches are represented (uniform over the stream, not just the first rows)
    late = np.concatenate([bt["tracks"].features for bt in batches[5:]]).reshape(
        -1, 40 * len(jet_collections["tracks"].features)
    )
    kept = a[0].reshape(len(a[0]), -1)
    assert np.isin(kept[:, 0], late[:, 0]).mean() > 0.3


def test_reservoir_sample_knows_every_category_of_the_stream_not_only_the_sampled_rows(jet_collections):
    batches = [make_batch(jet_collections, 500, seed=i) for i in range(4)]
    rare = batches[3]["tracks"]
    rare.features[0, :, rare.names.index("leptonID")] = 11.0  # one jet in the last batch has electron tracks
    rare.mask[0, :] = True
    sample = reservoir_sample(iter(batches), "tracks", max_objects=500, seed=0, categorical=("leptonID",))
    assert 11.0 in sample.categories["leptonID"]
    scaler = CollectionScaler.for_collection(jet_collections["tracks"]).fit(
        sample.features, sample.mask, sample.categories
    )
    assert 11.0 in scaler.scalers[jet_collections["tracks"].index("leptonID")].categories


def test_unseen_category_is_an_error_naming_the_feature_and_value(jet_collections):
    c = jet_collections["tracks"]
    batch = make_batch({"tracks": c}, 200, seed=1)
    oa = batch["tracks"]
    scaler = CollectionScaler.for_collection(c).fit(oa.features, oa.mask)
    oa.features[oa.mask, c.index("leptonID")] = 13.0
    with pytest.raises(InputFileError, match=r"f.h5: feature 'leptonID' has value\(s\) \[13.0\] never seen"):
        scaler.transform(oa.features, oa.mask, where="f.h5")


def test_asinh_scaling_resolves_the_core_and_the_tails_of_impact_parameters():
    x = _physics_like()["d0"]  # mm, Student-t(3) x 50 um
    s = FeatureScaler("d0", "asinh").fit(x)
    np.testing.assert_allclose(s.inverse(s.forward(x)), x, rtol=1e-9, atol=1e-12)
    y = s.forward(x)
    core = np.abs(x) < np.quantile(np.abs(x), 0.5)
    standard = FeatureScaler("d0", "standard").fit(x).forward(x)
    # the core half of the tracks spans a sizeable part of the scaled range, not a sliver squashed by the tails
    assert np.ptp(y[core]) / np.ptp(y) > 3 * np.ptp(standard[core]) / np.ptp(standard)
    assert abs(y.mean()) < 1e-6 and abs(y.std() - 1) < 1e-6
