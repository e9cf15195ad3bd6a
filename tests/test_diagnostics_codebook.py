"""Codebook health: utilisation, dead codes, perplexity and the decode -> encode round trip."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.diagnostics import (
    codebook_health,
    level_usage,
    reencode_agreement,
    reencode_fraction,
    scalar_summary,
)
from treasure_lib.diagnostics.codebook import CodebookInputError


def test_known_index_set_gives_known_utilisation_perplexity_and_dead_codes():
    # level 0 uses codes 0, 1 (twice each) and 3 of K = 8; level 1 uses code 5 only; -1 is absent
    indices = np.array([[0, 5], [0, 5], [1, 5], [1, -1], [3, 5], [-1, -1]])
    health = codebook_health(indices, codebook_size=8)
    lvl0, lvl1 = health["level_1"], health["level_2"]
    assert lvl0["n_objects"] == 5 and lvl0["used_codes"] == 3
    assert lvl0["utilization"] == pytest.approx(3 / 8)
    assert lvl0["dead_codes"] == 5
    p = np.array([0.4, 0.4, 0.2])
    assert lvl0["entropy"] == pytest.approx(-np.sum(p * np.log(p)))
    assert lvl0["perplexity"] == pytest.approx(np.exp(-np.sum(p * np.log(p))))
    assert lvl0["normalized_entropy"] == pytest.approx(-np.sum(p * np.log(p)) / np.log(8))
    np.testing.assert_allclose(lvl0["sorted_frequency"], [0.4, 0.4, 0.2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(lvl0["counts"], [2, 2, 0, 1, 0, 0, 0, 0])
    assert lvl1["n_objects"] == 4 and lvl1["dead_codes"] == 7


def test_single_code_has_perplexity_one_and_zero_entropy():
    usage = level_usage(np.full(100, 7), codebook_size=16)
    assert usage["perplexity"] == pytest.approx(1.0)
    assert usage["normalized_entropy"] == pytest.approx(0.0)
    assert usage["max_frequency"] == 1.0 and usage["dead_codes"] == 15


def test_uniform_usage_has_normalized_entropy_one_and_perplexity_k():
    usage = level_usage(np.tile(np.arange(32), 10), codebook_size=32)
    assert usage["normalized_entropy"] == pytest.approx(1.0)
    assert usage["perplexity"] == pytest.approx(32.0)
    assert usage["utilization"] == 1.0 and usage["dead_codes"] == 0


def test_padded_jets_layout_is_flattened_and_padding_ignored():
    indices = np.full((2, 3, 2), -1)
    indices[0, :2] = [[1, 2], [1, 3]]
    indices[1, 0] = [0, 2]
    health = codebook_health(indices, codebook_size=[4, 4])
    assert health["level_1"]["n_objects"] == 3 and health["level_1"]["used_codes"] == 2
    assert health["level_2"]["used_codes"] == 2


def test_vocabulary_ids_instead_of_local_codes_are_rejected():
    with pytest.raises(CodebookInputError, match="local indices"):
        codebook_health(np.array([[5], [600]]), codebook_size=512)


def test_empty_level_reports_every_code_dead():
    usage = level_usage(np.full(4, -1), codebook_size=4)
    assert usage["n_objects"] == 0 and usage["dead_codes"] == 4 and np.isnan(usage["perplexity"])


def test_scalar_summary_gives_flat_keys_without_arrays():
    flat = scalar_summary(codebook_health(np.array([[0, 1], [1, 1]]), 4), prefix="codebook.tracks.")
    assert flat["codebook.tracks.level_1.utilization"] == 0.5
    assert flat["codebook.tracks.level_2.dead_codes"] == 3
    assert not any(k.endswith(("counts", "sorted_frequency")) for k in flat)


class NearestCodeCard:
    """A one-level 1-d 'tokenizer': decode = code centre, encode = nearest centre."""

    def __init__(self, centres):
        self.centres = np.asarray(centres, dtype=float)

    def decode(self, indices):
        return self.centres[np.maximum(indices[..., 0], 0)][..., None]

    def encode(self, features, mask):
        idx = np.abs(features[..., 0][..., None] - self.centres).argmin(-1)
        return np.where(mask, idx, -1)[..., None]


def test_reencode_of_distinct_codes_returns_every_token():
    card = NearestCodeCard([0.0, 1.0, 2.0, 3.0])
    indices = np.array([[[0], [3], [-1]], [[1], [2], [2]]])
    assert reencode_fraction(card.encode, card.decode, indices) == 1.0


def test_reencode_catches_duplicate_codes_that_decode_to_a_neighbour():
    card = NearestCodeCard([0.0, 1.0, 1.0, 3.0])  # code 2 duplicates code 1: encode never returns it
    indices = np.array([[0], [1], [2], [3]])  # [n_objects, Q] form, batched two at a time
    report = reencode_agreement(card.encode, card.decode, indices, batch_size=2)
    assert report["n_objects"] == 4 and report["fraction"] == pytest.approx(0.75)
    np.testing.assert_allclose(report["level_fraction"], [0.75])
