"""Chapter 03's wording and table, decided by small functions of numbers (synthetic codebooks here)."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import diagnostics, metric_keys
from treasure_lib.study import codebook_health as cb


def _row(util, objects, k, used=None, entropy=0.9, level=1, collection="taus"):
    return {
        "collection": collection,
        "level": level,
        "objects": objects,
        "codebook_size": k,
        "used_codes": used if used is not None else round(util * k),
        "utilization": util,
        "uniform_utilization": cb.uniform_utilization(objects, k),
        "dead_codes": k - round(util * k),
        "perplexity": 10.0,
        "normalized_entropy": entropy,
        "reencode": 0.9,
    }


def test_codebook_metric_keys_are_documented():
    health = diagnostics.codebook_health(np.random.default_rng(0).integers(0, 8, (100, 2)), 8)
    keys = cb.codebook_metrics("tracks", health, 0.77, 27.0)
    metric_keys.check(keys)
    assert keys["codebook.tracks.reencode_fraction"] == 0.77 and keys["tokenizer.tracks.bits_per_object"] == 27.0
    assert keys["codebook.tracks.level_2.utilization"] == pytest.approx(1.0)
    assert cb.codebook_key("tracks", "utilization", "level_1") == "codebook.tracks.level_1.utilization"


def test_even_use_reaches_every_code_only_with_many_more_objects_than_codes():
    assert cb.uniform_utilization(0, 32) == 0.0
    assert cb.uniform_utilization(1, 32) == pytest.approx(1 / 32)
    assert cb.uniform_utilization(32, 32) == pytest.approx(1 - (31 / 32) ** 32)  # about 63%
    assert cb.uniform_utilization(22526, 512) == pytest.approx(1.0)


def test_level_rows_carry_the_health_numbers_and_the_reencode_share_per_level():
    health = diagnostics.codebook_health(np.array([[0, 1], [0, 2], [1, 3]]), 4)
    rows = cb.level_rows("jets", health, [1.0, 2 / 3])
    assert [r["level"] for r in rows] == [1, 2] and rows[0]["used_codes"] == 2 and rows[1]["dead_codes"] == 1
    assert rows[1]["reencode"] == pytest.approx(2 / 3)
    assert rows[0]["uniform_utilization"] == cb.uniform_utilization(3, 4)
    shown = cb.table(rows)
    assert shown[0]["Perplexity [codes]"] == rows[0]["perplexity"] and "Even use would reach" in shown[0]


def test_least_used_codebook_breaks_ties_by_the_least_even_use():
    rows = [
        _row(1.0, 5000, 64, entropy=0.99, collection="a"),
        _row(1.0, 5000, 64, entropy=0.8, collection="b"),
        _row(0.9, 5000, 64, entropy=0.95, collection="c"),
    ]
    assert cb.least_used_codebook(rows)["collection"] == "c"
    assert cb.least_used_codebook(rows[:2])["collection"] == "b"
    assert cb.least_used_codebook([]) is None


def test_a_fully_used_codebook_is_called_fully_used():
    text = cb.least_used_sentence(_row(1.0, 22526, 512, collection="tracks", level=3))
    assert text.startswith(
        "Every code of every codebook appears on held-out objects; the least even use is tracks "
        "level 3 (perplexity 10.0 of 512 codes"
    )


def test_unused_codes_are_blamed_on_the_sample_when_objects_are_fewer_than_codes():
    text = cb.least_used_sentence(_row(14 / 32, 20, 32))
    assert "43.8% of its 32 codes appear on 20 held-out objects, where an even use would reach 47.0%" in text
    assert "fewer held-out objects than codes" in text


def test_unused_codes_are_blamed_on_the_codebook_only_well_beyond_what_even_use_leaves():
    text = cb.least_used_sentence(_row(0.3, 5000, 64))
    assert "45 codes are unused where an even use would leave 0," in text
    assert "more codes than these objects need, or codes that collapsed" in text
    # 3000 objects on 512 codes: an even use leaves 1.5 unused; 15 is not chance, 1 is
    assert "collapsed" in cb.least_used_sentence(_row(497 / 512, 3000, 512, used=497))
    assert "about what an even use leaves" in cb.least_used_sentence(_row(511 / 512, 3000, 512, used=511))
    assert "binned quantities only" in cb.least_used_sentence(None)


def test_unused_by_chance_follows_the_even_use_expectation():
    assert cb.expected_unused(32, 32) == pytest.approx(32 * (31 / 32) ** 32)
    assert cb.unused_by_chance(18, 20, 32) and not cb.unused_by_chance(30, 2000, 32)
    assert not cb.unused_by_chance(1, 825, 8), "one dead code of 8 with 825 objects is not chance"
    assert "1 code is unused where an even use would leave 0," in cb.least_used_sentence(_row(7 / 8, 825, 8, used=7))
    assert cb.unused_by_chance(0, 825, 8) and cb.unused_by_chance(2, 3000, 512)


def test_reencode_sentence_calls_the_identity_only_above_99_percent():
    identity = cb.reencode_sentence({"tracks": 0.995})
    assert identity.endswith("decoding then encoding is the identity on held-out objects.")
    text = cb.reencode_sentence({"tracks": 0.772, "jets": 0.9})
    assert "77.2% of tracks, 90.0% of jets objects" in text and "not the exact inverse of encoding" in text
    assert cb.reencode_sentence({}) == ""


def _history(values_by_level):
    return {
        f"train/replaced_level_{q}": (np.arange(len(v)), np.asarray(v, dtype=float))
        for q, v in enumerate(values_by_level, start=1)
    }


def test_replacement_history_takes_every_level_of_every_card():
    out = cb.replacement_history(
        {"tracks": _history([[0.1, 0.0], [0.2, 0.0]]) | {"train/loss": (np.arange(2),) * 2}, "jets": {}}
    )
    assert list(out) == ["tracks level 1", "tracks level 2"]


def test_dead_code_sentence_says_whether_replacement_died_out():
    quiet = cb.dead_code_sentence(cb.replacement_history({"tracks": _history([[0.00723, 0.0], [0.001, 0.0]])}), 0.05)
    assert "below 5% of a uniform share" in quiet
    assert "No code was replaced in the last epoch (the first replaced up to 0.723% of a codebook per step)" in quiet
    assert "Last epoch" not in quiet
    never = cb.dead_code_sentence(cb.replacement_history({"tracks": _history([[0.0, 0.0]])}), 0.05)
    assert never.endswith("No code was replaced in the first or the last epoch: every code kept its share throughout.")
    busy = cb.dead_code_sentence(cb.replacement_history({"taus": _history([[0.2, 0.05]])}), 0.05)
    assert "In the last epoch up to 5.00% of a codebook was still replaced per step (first epoch: 20.0%)" in busy
    assert busy.endswith("Last epoch: taus level 1 5.00%.")
    assert cb.dead_code_sentence({}, 0.05) == ""
