"""Per-feature binning of object collections (`tokenizer.kind: binning`), the no-network row of the tokenizer
comparison: the bits it spends, what the features it leaves out decode to, and its card round trip."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.diagnostics.reconstruction import bits_per_object, levels_report
from treasure_lib.errors import ConfigError
from treasure_lib.io.batch import Batch, ObjectArrays
from treasure_lib.preprocessing import CollectionScaler, reservoir_sample
from treasure_lib.tokenizers.card import load, save
from treasure_lib.tokenizers.train import binned_features, train_binning

from .test_tokenizers import TRACKS, _physical


def _sample(n=3000, seed=0):
    features, mask = _physical(n, seed)  # the tokenizer tests' toy tracks, charge as +-1
    rows = Batch(
        {"tracks": ObjectArrays(features, mask, TRACKS.features)},
        np.zeros(n, int),
        np.ones(n, np.float32),
        np.arange(n),
    )
    return features, mask, reservoir_sample(iter([rows]), "tracks", 100_000, 0, categorical=("charge",))


def _params(bins, features=None):
    return {"tokenizer": {"per_collection": {}, "binning": {"bins": bins, "features": features, "method": "quantile"}}}


def test_object_binning_spends_log2_bins_bits_on_each_binned_feature_only():
    feats, mask, sample = _sample()
    scaler = CollectionScaler.for_collection(TRACKS).fit(feats, mask)
    tok, _ = train_binning(_params(8, ["pt", "d0", "eta"])["tokenizer"], TRACKS, sample, scaler)
    assert (tok.num_quantizers, tok.codebook_size) == (3, 8)
    assert bits_per_object(tok) == 9.0, "3 features x log2(8) bits: the budget the comparison matches"
    assert tok.level_features == ["pt", "d0", "eta"]
    idx = tok.encode(feats, mask)
    assert idx.shape == mask.shape + (3,) and (idx[~mask] == -1).all() and idx[mask].max() == 7
    counts = np.bincount(idx[mask][:, 0], minlength=8) / mask.sum()
    assert counts.min() > 0.08, "quantile edges: every pT bin holds about 1/8 of the training tracks"
    decoded = tok.decode(idx)
    z0 = feats[mask][:, 2]
    assert np.allclose(decoded[mask][:, 2], np.median(z0)), "a feature left out decodes to its training median"
    values, n = np.unique(feats[mask][:, 4], return_counts=True)
    assert (decoded[mask][:, 4] == values[n.argmax()]).all(), "a left-out category decodes to its most frequent value"
    report = levels_report(tok, feats, mask, idx)
    assert report[3]["d0"]["corr"] > 0.9, "a binned feature keeps most of its information in 3 bits"
    assert np.isnan(report[3]["z0"]["corr"]), "a left-out one keeps none (a constant has no correlation)"


def test_more_bins_resolve_track_pt_better_and_the_card_round_trips(tmp_path):
    feats, mask, sample = _sample()
    scaler = CollectionScaler.for_collection(TRACKS).fit(feats, mask)
    coarse, _ = train_binning(_params(4, ["pt"])["tokenizer"], TRACKS, sample, scaler)
    fine, _ = train_binning(_params(64, ["pt"])["tokenizer"], TRACKS, sample, scaler)
    res = [levels_report(t, feats, mask)[1]["pt"]["response_iqr_over_median"] for t in (coarse, fine)]
    assert res[1] < 0.5 * res[0]
    again = load(save(fine, tmp_path / "card"))
    assert again.level_features == ["pt"] and again.scaler is not None
    np.testing.assert_array_equal(again.encode(feats, mask), fine.encode(feats, mask))
    np.testing.assert_array_equal(again.decode(fine.encode(feats, mask)), fine.decode(fine.encode(feats, mask)))


def test_default_object_binning_bins_every_continuous_feature_and_names_unknown_ones():
    assert binned_features(TRACKS, {"features": None}) == ["pt", "d0", "z0", "eta"]
    with pytest.raises(ConfigError, match="d0Significance.*pt, d0, z0, eta, charge"):
        binned_features(TRACKS, {"features": ["pt", "d0Significance"]})
