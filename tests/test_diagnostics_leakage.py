"""Leakage checks: event shape vs token content, sequence transforms, the report and its verdict."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.diagnostics import (
    LeakageError,
    constant_per_type,
    leakage_table,
    leakage_verdict,
    multiplicity_classifier,
    multiplicity_features,
    shuffle_within_type,
)
from treasure_lib.formatting import fmt

PAD, CLS, SEP, EMPTY = 0, 1, 2, 4
TRACK, MUON = 1, 2  # type ids
MAX_TRACKS, MAX_MUONS = 8, 3
L = 1 + MAX_TRACKS + 1 + MAX_MUONS + 1
# vocabulary: tracks level 0 / level 1, muons level 0 (one level: level 1 is EMPTY)
TRACK_L0, TRACK_L1, MUON_L0 = 5, 21, 37


def make_events(n_tracks, n_muons, track_codes):
    """Compact grouped sequences [CLS] tracks [SEP] muons [SEP]; track_codes [n, MAX_TRACKS] local codes."""
    n = len(n_tracks)
    tokens = np.zeros((n, L, 2), dtype=np.int64)
    type_ids = np.zeros((n, L), dtype=np.int64)
    mask = np.zeros((n, L), dtype=bool)
    for i in range(n):  # test data builder; the library itself is vectorised
        pos = 0
        tokens[i, pos] = [CLS, EMPTY]
        pos += 1
        for j in range(n_tracks[i]):
            tokens[i, pos] = [TRACK_L0 + track_codes[i, j], TRACK_L1 + (track_codes[i, j] * 7) % 16]
            type_ids[i, pos] = TRACK
            pos += 1
        tokens[i, pos] = [SEP, EMPTY]
        pos += 1
        for j in range(n_muons[i]):
            tokens[i, pos] = [MUON_L0 + (i + j) % 16, EMPTY]
            type_ids[i, pos] = MUON
            pos += 1
        tokens[i, pos] = [SEP, EMPTY]
        mask[i, : pos + 1] = True
    return tokens, type_ids, mask


def bag_of_codes(tokens, mask):
    """A stand-in 'full token' classifier input: per event, how often each vocabulary id occurs."""
    ids = np.where(mask[..., None], tokens, 0).reshape(len(tokens), -1)
    rows = np.repeat(np.arange(len(tokens)), ids.shape[1])
    counts = np.bincount(rows * 64 + ids.ravel(), minlength=len(tokens) * 64).reshape(len(tokens), 64)
    return np.column_stack([counts[:, 5:], multiplicity_features(np.zeros_like(mask, int), mask, 1)])


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(7)
    n = 3000
    split = rng.choice(3, size=n, p=[0.6, 0.1, 0.3])
    weight = rng.uniform(0.5, 1.5, size=n)
    return rng, n, split, weight


def test_multiplicity_features_count_objects_per_type_and_length():
    _, type_ids, mask = make_events([3, 0], [1, 2], np.zeros((2, MAX_TRACKS), int))
    feats = multiplicity_features(type_ids, mask, n_types=2)
    np.testing.assert_array_equal(feats, [[3, 1, 7], [0, 2, 5]])  # tracks, muons, CLS + objects + 2 SEP


def test_label_equal_to_multiplicity_is_explained_by_event_shape(sample):
    rng, n, split, weight = sample
    label = rng.integers(0, 2, size=n)
    n_tracks = np.where(label == 1, rng.integers(5, 9, size=n), rng.integers(1, 5, size=n))  # label is the multiplicity
    tokens, type_ids, mask = make_events(n_tracks, rng.integers(0, 4, size=n), rng.integers(0, 16, (n, MAX_TRACKS)))
    mult = multiplicity_classifier(multiplicity_features(type_ids, mask, 2), label, weight, split, seed=0)
    assert mult["summary"]["auc"] > 0.99
    assert mult["scores"].shape == (np.count_nonzero(split == 2),)
    full = multiplicity_classifier(bag_of_codes(tokens, mask), label, weight, split, seed=0)["summary"]
    verdict = leakage_verdict(leakage_table({"multiplicity": mult["summary"], "tokens": full}))
    quoted = fmt(mult["summary"]["auc"], mult["summary"]["auc_err"])  # the book's one rule
    assert "nearly all" in verdict and f"AUC {quoted}" in verdict


def test_multiplicity_without_label_information_gives_auc_near_half(sample):
    rng, n, split, weight = sample
    label = rng.integers(0, 2, size=n)
    codes = np.where(label[:, None] == 1, rng.integers(8, 16, (n, MAX_TRACKS)), rng.integers(0, 8, (n, MAX_TRACKS)))
    tokens, type_ids, mask = make_events(rng.integers(1, 9, size=n), rng.integers(0, 4, size=n), codes)
    mult = multiplicity_classifier(multiplicity_features(type_ids, mask, 2), label, weight, split, seed=0)["summary"]
    assert abs(mult["auc"] - 0.5) < 3 * mult["auc_err"] + 0.01
    full = multiplicity_classifier(bag_of_codes(tokens, mask), label, weight, split, seed=0)["summary"]
    assert full["auc"] > 0.99
    verdict = leakage_verdict(leakage_table({"multiplicity": mult, "tokens": full}))
    assert "almost none" in verdict and "token content" in verdict


def test_multiclass_labels_give_macro_auc_and_class_probabilities(sample):
    rng, n, split, weight = sample
    label = rng.integers(0, 3, size=n)
    feats = np.column_stack([label * 3 + rng.integers(0, 3, size=n), rng.normal(size=n)])
    out = multiplicity_classifier(feats, label, weight, split, seed=1, n_boot=20)
    assert out["scores"].shape == (np.count_nonzero(split == 2), 3)
    assert out["summary"]["auc"] == out["summary"]["auc_macro"] > 0.99


def test_classifier_is_deterministic_for_a_seed(sample):
    rng, n, split, weight = sample
    label = rng.integers(0, 2, size=n)
    feats = np.column_stack([label + rng.normal(size=n), rng.normal(size=n)])
    a = multiplicity_classifier(feats, label, weight, split, seed=3, n_boot=10)
    b = multiplicity_classifier(feats, label, weight, split, seed=3, n_boot=10)
    np.testing.assert_array_equal(a["scores"], b["scores"])


def test_shuffle_within_type_keeps_structure_and_code_multisets_but_moves_codes():
    rng = np.random.default_rng(0)
    n = 200
    codes = np.arange(n * MAX_TRACKS).reshape(n, MAX_TRACKS) % 2000  # every track its own code: traceable
    tokens, type_ids, mask = make_events(rng.integers(0, 9, size=n), rng.integers(0, 4, size=n), codes)
    shuffled = shuffle_within_type(tokens, type_ids, mask, rng=1)
    assert shuffled.shape == tokens.shape
    special = ~mask | (type_ids == 0)
    np.testing.assert_array_equal(shuffled[special], tokens[special])  # CLS, SEP, PAD where they were
    for t in (TRACK, MUON):
        sel = mask & (type_ids == t)
        before = np.unique(tokens[sel], axis=0, return_counts=True)
        after = np.unique(shuffled[sel], axis=0, return_counts=True)
        for x, y in zip(before, after):
            np.testing.assert_array_equal(x, y)  # same code groups (both levels together), same counts
    tracks = mask & (type_ids == TRACK)
    origin_event = {tuple(g): i for i, row in enumerate(tokens) for g in row[tracks[i]]}
    moved = np.mean([origin_event[tuple(g)] != i for i, row in enumerate(shuffled) for g in row[tracks[i]]])
    assert moved > 0.9
    np.testing.assert_array_equal(shuffle_within_type(tokens, type_ids, mask, rng=1), shuffled)  # seeded


def test_constant_per_type_leaves_specials_untouched():
    rng = np.random.default_rng(2)
    tokens, type_ids, mask = make_events([2, 5], [1, 0], rng.integers(0, 16, (2, MAX_TRACKS)))
    out = constant_per_type(tokens, type_ids, mask, {TRACK: [TRACK_L0, TRACK_L1], MUON: MUON_L0})
    specials = tokens < 5
    np.testing.assert_array_equal(out[specials], tokens[specials])  # CLS, SEP, PAD and EMPTY kept
    np.testing.assert_array_equal(out[mask & (type_ids == TRACK)], [[TRACK_L0, TRACK_L1]] * 7)
    np.testing.assert_array_equal(out[mask & (type_ids == MUON)], [[MUON_L0, EMPTY]])
    np.testing.assert_array_equal(multiplicity_features(type_ids, mask, 2), [[2, 1, 6], [5, 0, 8]])
    with pytest.raises(LeakageError, match=r"type ids \[2\]"):
        constant_per_type(tokens, type_ids, mask, {TRACK: TRACK_L0})


def test_flat_tokens_are_refused_by_the_transforms():
    with pytest.raises(LeakageError, match="grouped"):
        shuffle_within_type(np.zeros((2, 5), int), np.zeros((2, 5), int), np.ones((2, 5), bool), 0)


def test_leakage_table_keeps_six_rows_and_marks_missing_ones():
    table = leakage_table(
        {
            "multiplicity": {"auc": 0.6, "auc_err": 0.01},
            "tokens": (0.9, 0.005),
            "raw": {"auc_macro": 0.95, "auc_macro_err": 0.004},
        }
    )
    assert [r["row"] for r in table] == [1, 2, 3, 4, 5, 6]
    assert table[0]["auc_text"] == "0.600 ± 0.010" and table[0]["fraction_of_full"] == pytest.approx(0.25)
    assert table[1]["auc"] is None and table[1]["auc_text"] == "—"
    assert table[5]["auc"] == 0.95
    verdict = leakage_verdict(table)
    assert "a small part" in verdict and "0.25" in verdict and "Raw features" in verdict
    with pytest.raises(LeakageError, match="unknown"):
        leakage_table({"multiplicities": 0.6})


def test_verdict_without_full_token_separation_says_so():
    table = leakage_table({"structure": (0.52, 0.01), "tokens": (0.505, 0.01), "fixed_slots": (0.51, 0.01)})
    verdict = leakage_verdict(table)
    assert "barely separate" in verdict and "fixed slots" in verdict
    assert "cannot be judged" in leakage_verdict(leakage_table({"multiplicity": (0.7, 0.01)}))


def test_a_control_row_significantly_below_one_half_is_called_a_failed_control():
    """A structure-only model at 0.465 ± 0.008 ranks a class backwards: it bounds nothing about event shape."""
    table = leakage_table(
        {"multiplicity": (0.62, 0.006), "structure": (0.465, 0.008), "shuffled": (0.49, 0.009), "tokens": (0.72, 0.009)}
    )
    verdict = leakage_verdict(table)
    assert "Below 0.5 by more than twice its uncertainty: structure" in verdict
    assert "shuffled" not in verdict.split("Below 0.5")[1].split(".")[0], "0.49 ± 0.009 is compatible with 0.5"
    assert "0.545" in verdict or "0.55" in verdict, "the verdict still uses the multiplicity row: (0.62-0.5)/(0.72-0.5)"


def test_an_untrained_control_row_never_sets_the_shape_fraction():
    """Issue 14: structure-only and shuffled rows at AUC 0.46-0.47 were untrained, yet the shape fraction took the
    maximum over all rows. Only rows whose model finished learning may bound the event-shape share."""
    from treasure_lib.diagnostics.leakage import shape_fraction

    table = leakage_table(
        {
            "multiplicity": {"auc": 0.60, "auc_err": 0.01, "converged": True},
            "structure": {"auc": 0.85, "auc_err": 0.01, "converged": False},
            "tokens": {"auc": 0.90, "auc_err": 0.01, "converged": True},
        }
    )
    assert shape_fraction(table) == pytest.approx(0.25)
    verdict = leakage_verdict(table)
    assert "Did not finish learning, so bounding nothing: structure only" in verdict and "= 0.25" in verdict


def test_what_tokens_keep_of_raw_features_is_said_in_the_figure_of_merit():
    """Issue 14: in AUC terms tokens 'kept 81%' of the raw separation, in light rejection 23% (18 vs 78)."""
    table = leakage_table(
        {
            "tokens": {"auc_macro": 0.90, "auc_macro_err": 0.01, "fom": 18.0},
            "raw": {"auc_macro": 0.95, "auc_macro_err": 0.01, "fom": 78.0},
            "multiplicity": (0.7, 0.01),
        }
    )
    verdict = leakage_verdict(table, "light-jet rejection at 77% b-efficiency")
    assert (
        "in light-jet rejection at 77% b-efficiency the tokens keep 23% of the raw features' (18.0 against 78.0)"
        in verdict  # numbers by the book's one rule (`formatting.fmt`): three significant figures
    )


def test_the_split_check_reads_what_every_stage_recorded_and_stops_on_an_overlap(tmp_path):
    """Issue 14: the split check compared a hash with itself. It must compare the rows the stages actually read:
    one event that the tokenizer fitted on (train) and a classifier tested on is caught."""
    from types import SimpleNamespace

    from treasure_lib.splits import check_disjoint_splits
    from treasure_lib.study.leakage import row_records

    art = tmp_path / "artifacts"
    (art / "tokenizers").mkdir(parents=True)
    (art / "classify-t-tokens-100-s1" / "t" / "tokens").mkdir(parents=True)
    (art / "pretrain").mkdir()
    np.savez(art / "tokenizers" / "fit_rows.npz", train=np.array([1, 2, 3], np.uint64))
    np.savez(art / "pretrain" / "rows_read.npz", train=np.array([1, 2], np.uint64), val=np.array([7], np.uint64))
    np.savez(
        art / "classify-t-tokens-100-s1" / "t" / "tokens" / "rows_read.npz",
        train=np.array([1], np.uint64),
        val=np.array([7], np.uint64),
        test=np.array([9, 3], np.uint64),
    )
    records = row_records(SimpleNamespace(artifacts=art))
    assert set(records) == {"tokenizer fit", "pretrain", "classify-t-tokens-100-s1"}
    with pytest.raises(LeakageError, match=r"1 row identities are in more than one split.*tokenizer fit:train"):
        check_disjoint_splits(records)


def test_a_control_that_stopped_at_the_class_prior_finished_learning_and_a_headline_model_did_not():
    """Shuffled codes may carry nothing about flavour: after early stopping fired (with the extra patience a model
    above the prior gets), staying at the prior is the control's answer, not an untrained model. A model that is
    not a control (read without `control`) must leave the prior."""
    from treasure_lib.study import leakage as study_leakage

    assert set(study_leakage.CONTROLS) == {"structure", "shuffled", "fixed_slots"}
    at_prior = {
        "leakage.flavour.shuffled.auc_macro": 0.60,
        "leakage.flavour.shuffled.auc_macro_err": 0.01,
        "leakage.flavour.shuffled.converged": 0.0,
        "leakage.flavour.shuffled.early_stopped": 1.0,
        "leakage.flavour.shuffled.left_prior": 0.0,
    }
    row = study_leakage._row(at_prior, "leakage.flavour.shuffled", "auc_macro", None, control=True)
    assert row["converged"] is True and row["at_prior"] is True
    same_as_tokens = {k.replace("shuffled", "fixed_slots"): v for k, v in at_prior.items()}
    assert study_leakage._row(same_as_tokens, "leakage.flavour.fixed_slots", "auc_macro", None)["converged"] is False
    still_running = {**at_prior, "leakage.flavour.shuffled.early_stopped": 0.0}
    assert (
        study_leakage._row(still_running, "leakage.flavour.shuffled", "auc_macro", None, control=True)["converged"]
        is False
    )
    from treasure_lib.diagnostics import leakage

    table = leakage.leakage_table({"shuffled": row, "tokens": {"auc": 0.8, "auc_err": 0.01, "converged": True}})
    shown = study_leakage.table_rows({"table": table, "fom": None})
    assert [r["finished learning"] for r in shown] == ["yes (validation loss at the class prior)", "yes"]
    assert leakage.shape_fraction(table) == pytest.approx((0.60 - 0.5) / (0.8 - 0.5)), (
        "a control at the prior is a measurement: it sets the shape fraction"
    )


def test_a_shape_row_beats_the_full_tokens_only_beyond_their_uncertainties():
    """Events SR: structure only 0.688 ± 0.021 against full tokens 0.685 ± 0.020 is a tie, not 'even beats'."""
    tie = leakage_verdict(leakage_table({"structure": (0.688, 0.021), "tokens": (0.685, 0.020)}))
    assert "matches the full tokens within their uncertainties" in tie and "even beats" not in tie
    beats = leakage_verdict(leakage_table({"structure": (0.80, 0.01), "tokens": (0.72, 0.01)}))
    assert "even beats the full tokens" in beats


def test_the_split_check_says_which_stages_it_read():
    """Chapter 04 runs before pretraining: the sentence names what was there to check, not a fixed list."""
    from treasure_lib.study.leakage import checked_stages

    early = checked_stages(["tokenizer fit", "classify-h_vs_zz_sr-raw-100-s1", "classify-h_vs_zz_sr-tokens-100-s1"])
    assert early == "the tokenizer fit's rows; the train, validation and test rows of 2 classifiers"
    late = checked_stages(["tokenizer fit", "pretrain", "pretrain-next_token", "classify-flavour-tokens-100-s1"])
    assert "of 2 pretrainings" in late and "of 1 classifier" in late and "classifiers" not in late
    assert checked_stages([]) == "nothing yet"
