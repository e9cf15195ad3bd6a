"""One train / val / test assignment for every stage, and training streams that mix files."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import splits
from treasure_lib.errors import ConfigError, LeakageError
from treasure_lib.io import mixing
from treasure_lib.io.h5_writer import write_batches
from treasure_lib.io.reader import H5Stream
from treasure_lib.io.toy import make_batch

SPEC = splits.SplitSpec(0.8, 0.1, 0.1)


def _files(tmp_path, collections, sizes, prefix="jets", dsids=None):
    paths = []
    for i, n in enumerate(sizes):
        path = tmp_path / f"{prefix}_{i}.h5"
        meta = {"dsid": (dsids or [600000 + i] * len(sizes))[i], "process": f"p{i}", "n_events": n}
        write_batches(path, [make_batch(collections, n, seed=i, start=1000 * i)], collections, metadata=meta)
        paths.append(path)
    return paths


def test_split_fractions_are_met_and_the_assignment_is_a_pure_function_of_identity():
    numbers = np.arange(200_000)
    codes = splits.assign("dsid:600001", numbers, SPEC)
    assert np.allclose(np.bincount(codes) / len(codes), [0.8, 0.1, 0.1], atol=0.005)
    shuffled = np.random.default_rng(0).permutation(numbers)
    np.testing.assert_array_equal(splits.assign("dsid:600001", shuffled, SPEC), codes[shuffled])
    assert (splits.assign("dsid:600002", numbers, SPEC) != codes).mean() > 0.2, "samples get independent assignments"
    salted = splits.assign("dsid:600001", numbers, splits.SplitSpec(0.8, 0.1, 0.1, salt=1))
    assert (salted != codes).mean() > 0.2
    with pytest.raises(ConfigError, match="sum to 1"):
        splits.SplitSpec(0.8, 0.2, 0.1)


def test_assignment_is_the_same_whatever_the_chunk_size_file_order_or_collections_read(tmp_path, jet_collections):
    paths = _files(tmp_path, jet_collections, [700, 300, 500])

    def assignment(files, chunk, wanted):
        out = {}
        for b in H5Stream(files, wanted, chunk_size=chunk, split=SPEC, context=jet_collections):
            for num, code in zip(b.event_number, b.split):
                out[(b.source_file, int(num))] = int(code)
        return out

    reference = assignment(paths, 1000, jet_collections)
    assert assignment(paths[::-1], 37, jet_collections) == reference
    # a tracks-only reader still identifies rows by the jets' eventNumber, so it sees the same split
    assert assignment(paths, 64, {"tracks": jet_collections["tracks"]}) == reference
    assert set(reference.values()) == {0, 1, 2}


def test_every_jet_of_an_event_and_the_same_event_in_both_files_share_a_split(tmp_path, jet_collections):
    # two jets per event: rows 2k and 2k+1 carry the same eventNumber
    batch = make_batch(jet_collections, 2000, seed=0)
    batch["jets"].truth["eventNumber"] = np.repeat(np.arange(1000), 2)[:, None]
    write_batches(tmp_path / "jets.h5", [batch], jet_collections, metadata={"dsid": 600001})
    read = H5Stream([tmp_path / "jets.h5"], jet_collections, split=SPEC).read_all()
    assert (read.split[0::2] == read.split[1::2]).all()
    events = splits.assign("dsid:600001", np.arange(1000), SPEC)  # what the events file of the same sample gets
    np.testing.assert_array_equal(read.split[0::2], events)


def test_selecting_a_split_keeps_only_its_rows_and_the_three_partition_the_file(tmp_path, jet_collections):
    paths = _files(tmp_path, jet_collections, [900])
    seen = []
    for code in (splits.TRAIN, splits.VAL, splits.TEST):
        b = H5Stream(paths, jet_collections, split=SPEC, select_split=code, chunk_size=100).read_all()
        assert (b.split == code).all()
        seen.append(set(b.event_number.tolist()))
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert len(seen[0] | seen[1] | seen[2]) == 900


def test_interleaved_blocks_spread_every_file_over_the_pass():
    rng = np.random.default_rng(0)
    blocks = mixing.interleaved_blocks([100_000, 20_000, 5_000], 250, rng)
    assert sum(b - a for _, a, b in blocks) == 125_000
    first = [i for i, _, _ in blocks[:50]]  # the first 10% of the pass
    assert np.allclose(np.bincount(first, minlength=3) / 50, [0.8, 0.16, 0.04], atol=0.05)
    again = mixing.interleaved_blocks([100_000, 20_000, 5_000], 250, np.random.default_rng(1))
    assert again != blocks, "a new order every epoch"


def test_by_objects_batches_hold_the_requested_number_of_objects_without_splitting_rows():
    rng = np.random.default_rng(0)
    mask = rng.random((1000, 5)) < 0.3
    parts = [{"mask": mask[i : i + 70], "row": np.arange(i, min(i + 70, 1000))} for i in range(0, 1000, 70)]
    batches = list(mixing.by_objects(iter(parts), 64))
    counts = [b["mask"].sum() for b in batches]
    assert all(c >= 64 for c in counts[:-1]) and all(c < 64 + 5 for c in counts[:-1])
    np.testing.assert_array_equal(np.concatenate([b["row"] for b in batches]), np.arange(1000))


def test_first_training_batches_hold_rows_from_every_file_in_proportion(tmp_path, jet_collections):
    """Each file holds one process: the first batches of an epoch must not be one process."""
    from treasure_lib.preprocessing import CollectionScaler
    from treasure_lib.tokenizers.training_data import CollectionSets

    sizes = [2400, 1200, 600, 600]
    paths = _files(tmp_path, jet_collections, sizes)
    stream = H5Stream(paths, jet_collections, split=SPEC, select_split=splits.TRAIN, chunk_size=1000)
    first = stream.read_block(0, 0, 500)["tracks"]
    scaler = CollectionScaler.for_collection(jet_collections["tracks"]).fit(first.features, first.mask)
    sets = CollectionSets(
        stream, "tracks", scaler, objects_per_batch=2000, shuffle=True, seed=0, buffer_rows=1500, block_rows=100
    )
    expected = np.array(sizes) / sum(sizes)
    for epoch in range(2):
        batches = list(sets.arrays())
        files = np.concatenate([b["file"] for b in batches[:3]])  # the first three batches (~600 rows)
        share = np.bincount(files, minlength=4) / len(files)
        assert (share > 0).all(), f"epoch {epoch}: a file is missing from the first batches: {share}"
        assert np.allclose(share, expected, atol=0.1), f"epoch {epoch}: {share} vs {expected}"
    assert sets.epoch == 2


def test_disjoint_split_check_catches_planted_overlap():
    rng = np.random.default_rng(3)
    events = np.column_stack([np.full(1000, 410470), np.arange(1000)])  # (dsid, event number)
    split = rng.choice(3, size=1000, p=[0.7, 0.1, 0.2])
    train, test = np.flatnonzero(split == 0), np.flatnonzero(split == 2)
    stages = {
        "tokenizer_fit": (events[train], split[train]),
        "training": (events[split < 2], split[split < 2]),
        "test": (events[test], np.array(["test"] * test.size)),
    }
    report = splits.check_disjoint_splits(stages, expected={"tokenizer_fit": ["train"], "test": ["test"]})
    assert report["ok"] and report["n_identities"] == 1000 and report["stages"]["test"]["test"] == test.size
    planted = dict(stages, tokenizer_fit=(np.vstack([events[train], events[test[:1]]]), np.r_[split[train], 0]))
    with pytest.raises(LeakageError, match=r"1 row identities are in more than one split.*tokenizer_fit:train"):
        splits.check_disjoint_splits(planted)
    report = splits.check_disjoint_splits(planted, raise_error=False)
    assert not report["ok"] and report["n_overlapping"] == 1
    assert report["examples"][0]["identity"] == events[test[0]].tolist()
    wrong_stage = dict(stages, tokenizer_fit=(events, split))  # tokenizer fitted on every row
    with pytest.raises(LeakageError, match="tokenizer_fit"):
        splits.check_disjoint_splits(wrong_stage, expected={"tokenizer_fit": ["train"]})
