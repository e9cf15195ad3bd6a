"""Token datasets: mixing across files, the exported split, task labels and weights, selections, sharding."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from treasure_lib.config import section_from
from treasure_lib.datamodules import TokenFiles, TokenStream, read_split
from treasure_lib.datamodules.tasks import Task
from treasure_lib.diagnostics.label_proxies import check_no_label_proxy
from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.tokenizers.export import export

from .conftest import export_sections
from .test_sequences import _cards, _params, _toy_files

SAMPLES = {"events_sig": 300, "events_zz": 600, "events_top": 1200, "events_qcd": 900}


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tokens")
    files = []
    for name, n in SAMPLES.items():
        files += _toy_files(tmp / "data", n=n, names=(name,))
    import h5py

    for i, f in enumerate(files):  # distinct samples: dsid, process, cross section
        with h5py.File(f, "a") as h:
            h["metadata"].attrs["dsid"] = 800000 + i
            h["metadata"].attrs["cross_section_pb"] = [0.01, 0.05, 800.0, 1e5][i]
            h["metadata"].attrs["sum_of_weights"] = float(list(SAMPLES.values())[i]) * 2.0
    _cards(tmp / "cards", files)
    params = _params(tmp, files, "export.row_group_size=256")
    results = export(*export_sections(params), progress=False)
    tokens = [r["outputs"][0] for r in results]
    features = [r["outputs"][1] for r in results]
    return params, tokens, features


def _task(**spec):
    tasks = {"t": {"classes": {"background": ["events_zz"], "signal": ["events_sig"]}, "others": "drop", **spec}}
    return Task.from_params(section_from("classify", {"task": "t", "tasks": tasks}))


def test_batches_hold_only_model_inputs_and_targets(token_files):
    _, tokens, features = token_files
    batch = next(iter(TokenStream(TokenFiles(tokens), _task(), "train", 32, shuffle=True)))
    assert set(batch) == {"tokens", "type_ids", "mask", "label", "weight"}
    assert batch["tokens"].dtype.is_floating_point is False and batch["tokens"].ndim == 3
    check_no_label_proxy(["tokens", "type_ids", "mask"])  # what a model reads
    raw = next(iter(TokenStream(TokenFiles(features, "features"), _task(), "train", 32, shuffle=True)))
    assert set(raw) == {"features", "type_ids", "mask", "label", "weight"} and raw["features"].dtype.is_floating_point


def test_first_batches_mix_every_sample_in_proportion(token_files):
    """Each token file holds one sample: the first batches of every epoch must hold them all, in proportion."""
    _, tokens, _ = token_files
    task = _task(classes={name: [name] for name in SAMPLES})  # the label says which file a row came from
    stream = TokenStream(TokenFiles(tokens), task, "train", 64, shuffle=True, buffer_rows=600, block_rows=32, seed=3)
    expected = np.array(list(SAMPLES.values())) / sum(SAMPLES.values())
    for epoch in range(2):
        first = np.concatenate([b["label"] for _, b in zip(range(4), stream.arrays())])  # ~11% of the split
        share = np.bincount(first, minlength=4) / len(first)
        assert (share > 0).all() and np.allclose(share, expected, atol=0.08), f"epoch {epoch}: {share} vs {expected}"


def test_rows_keep_their_exported_split(token_files):
    _, tokens, _ = token_files
    rows = read_split(TokenFiles(tokens), None, "test", extra=["event_number", "source_file"])
    table = pq.read_table(tokens[0], columns=["split", "event_number", "source_file"])
    want = set(np.asarray(table.column("event_number"))[np.asarray(table.column("split")) == "test"].tolist())
    mine = set(rows["event_number"][rows["source_file"] == table.column("source_file")[0].as_py()].tolist())
    assert mine == want and len(mine) > 0


def test_class_map_labels_and_a_missing_sample_is_a_clear_error(token_files):
    _, tokens, _ = token_files
    rows = read_split(TokenFiles(tokens), _task(), "train", extra=["process"])
    assert set(rows["process"]) == {"events_zz", "events_sig"}
    np.testing.assert_array_equal(rows["label"], (rows["process"] == "events_sig").astype(int))
    strict = _task(others="error")
    with pytest.raises(InputFileError, match=r"sample 'events_top' is in no class of task 't'.*others: drop"):
        read_split(TokenFiles(tokens), strict, "train")


def test_cross_section_weights_and_class_balance(token_files):
    _, tokens, _ = token_files
    task = _task(weights="cross_section")
    rows = read_split(TokenFiles(tokens), task, "train", extra=["process"])
    sig = rows["process"] == "events_sig"
    np.testing.assert_allclose(rows["weight"][sig], 1.0 * 0.01 / 600.0)  # w * sigma * eff * k / sum of weights
    np.testing.assert_allclose(rows["weight"][~sig], 1.0 * 0.05 / 1200.0)
    balanced = TokenStream(
        TokenFiles(tokens), _task(weights="cross_section", balance=True), "train", 10_000, shuffle=False
    )
    batch = next(balanced.arrays())
    totals = np.bincount(batch["label"], weights=batch["weight"])
    assert totals[0] == pytest.approx(totals[1], rel=1e-6) and batch["weight"].mean() == pytest.approx(1.0, rel=1e-6)


def test_label_fraction_keeps_a_fixed_nested_subset(token_files):
    _, tokens, _ = token_files
    files = TokenFiles(tokens)

    def kept(fraction, seed=0):
        rows = read_split(
            files, _task(), "train", ["source_file", "event_number"], label_fraction=fraction, label_seed=seed
        )
        return set(zip(rows["source_file"].tolist(), rows["event_number"].tolist()))

    full, half, tenth = kept(1.0), kept(0.5), kept(0.1)
    assert tenth < half < full and abs(len(half) / len(full) - 0.5) < 0.1
    assert kept(0.5) == half and kept(0.5, seed=1) != half


def test_selection_on_object_multiplicity(token_files):
    _, tokens, _ = token_files
    task = _task(select=[{"types": ["electrons", "muons"], "min": 3}])
    rows = read_split(TokenFiles(tokens), task, "train")
    n_leptons = np.isin(rows["type_ids"], [1, 2]).sum(1)
    assert (n_leptons >= 3).all() and len(rows["label"]) > 0
    everything = read_split(TokenFiles(tokens), _task(), "train")
    assert (np.isin(everything["type_ids"], [1, 2]).sum(1) >= 3).sum() == len(rows["label"])


def test_ranks_get_equal_batches_and_disjoint_rows(token_files):
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    task = _task(classes={"a": ["events_zz", "events_qcd"], "b": ["events_sig", "events_top"]})
    ranks = [
        TokenStream(files, task, "train", 16, shuffle=True, rank=r, world_size=2, equal_batches=True, seed=1)
        for r in (0, 1)
    ]
    batches = [list(s.arrays()) for s in ranks]
    assert len(batches[0]) == len(batches[1]) == len(ranks[0]) > 0
    assert all(len(b["label"]) == 16 for bs in batches for b in bs)


def test_a_rank_whose_blocks_hold_no_batch_is_an_error_not_an_endless_loop(token_files):
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    task = _task(classes={"a": ["events_top"], "b": ["events_sig"]})  # the zz and qcd files' rows are dropped
    streams = [
        TokenStream(files, task, "train", 64, shuffle=False, rank=r, world_size=7, equal_batches=True) for r in range(7)
    ]
    empty = [
        s
        for s in streams
        if not any(
            files.paths[b[0]].name.startswith(("events_sig", "events_top")) for b in s._blocks(None)[s.rank :: 7]
        )
    ]
    assert empty and len(empty[0]) > 0, "a rank whose blocks are all dropped rows must still deliver batches"
    with pytest.raises(InputFileError, match=f"shard {empty[0].rank} of 7: its blocks hold fewer usable rows"):
        list(empty[0].arrays())


def test_bad_inputs_name_the_file(token_files, tmp_path):
    _, tokens, features = token_files
    with pytest.raises(InputFileError, match="holds 'features', expected 'tokens'"):
        TokenFiles(features)
    with pytest.raises(InputFileError, match="no rows of the 'val' split for task 't'"):
        TokenStream(TokenFiles(tokens), _task(classes={"a": ["nothing"], "b": ["none"]}), "val", 8, shuffle=False)
    bad = tmp_path / "bad.tokens.parquet"
    table = pq.read_table(tokens[0])
    meta = dict(table.schema.metadata)
    vocab = json.loads(meta[b"treasure.vocabulary"])
    vocab["ranges"][-1]["size"] = 1  # the file now claims a smaller vocabulary than its ids use
    meta[b"treasure.vocabulary"] = json.dumps(vocab).encode()
    pq.write_table(table.replace_schema_metadata(meta), bad)
    with pytest.raises(InputFileError, match="vocabulary differs"):
        TokenFiles([tokens[0], bad])
    with pytest.raises(InputFileError, match="token ids outside the vocabulary"):
        list(TokenStream(TokenFiles([bad]), None, "train", 8, shuffle=False).arrays())


def test_a_task_can_keep_some_samples_only(token_files):
    _, tokens, _ = token_files
    task = _task(classes={"a": ["events_zz", "events_top"], "b": ["events_sig", "events_qcd"]}, samples=["events_top"])
    rows = read_split(TokenFiles(tokens), task, "train", extra=["process"])
    assert set(rows["process"]) == {"events_top"} and len(rows["process"]) > 0


def test_a_sample_split_into_several_files_counts_its_cross_section_once(tmp_path):
    """Cross-section weights normalise per *sample* (dsid), not per file: a sample written as two files must
    carry sigma once in total, as it would as one file (the per-file sum of weights counted it twice)."""
    import h5py

    files = _toy_files(tmp_path / "data", n=300, names=("zz_part0", "zz_part1", "signal"))
    for f, dsid, process in zip(files, (900002, 900002, 900001), ("qqZZ", "qqZZ", "H")):
        with h5py.File(f, "a") as h:
            h["metadata"].attrs["dsid"] = dsid
            h["metadata"].attrs["process"] = process
            h["metadata"].attrs["cross_section_pb"] = 0.05 if process == "qqZZ" else 0.003
    _cards(tmp_path / "cards", files)
    results = export(*export_sections(_params(tmp_path, files)), progress=False)
    tokens = TokenFiles([r["outputs"][0] for r in results])
    assert tokens.sample_sum_of_weights == [600.0, 600.0, 300.0]
    task = Task.from_params(
        section_from(
            "classify",
            {"task": "t", "tasks": {"t": {"classes": {"b": ["qqZZ"], "s": ["H"]}, "weights": "cross_section"}}},
        )
    )
    total = {"qqZZ": 0.0, "H": 0.0}
    for split in ("train", "val", "test"):
        rows = read_split(tokens, task, split, extra=["process"])
        for p in total:
            total[p] += rows["weight"][rows["process"] == p].sum()
    assert total["qqZZ"] == pytest.approx(0.05, rel=1e-6) and total["H"] == pytest.approx(0.003, rel=1e-6)


def test_a_split_in_memory_is_shuffled_every_epoch_and_batched_by_length(token_files):
    """Held in memory, every epoch visits every row once, in a new order, with rows of similar length together
    (less padding), and DDP ranks get disjoint rows and the same number of batches."""
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    task = _task(classes={"a": ["events_zz", "events_qcd"], "b": ["events_sig", "events_top"]})
    streamed = TokenStream(files, task, "train", 32, shuffle=True, seed=1)
    stream = TokenStream(files, task, "train", 32, shuffle=True, seed=1, cache_rows=10**6)
    assert stream.in_memory and not streamed.in_memory
    epochs = [list(stream.arrays()) for _ in range(2)]
    firsts = [e[0]["label"] for e in epochs]
    sizes = [sum(len(b["label"]) for b in e) for e in epochs]
    assert sizes == [stream.summary["rows"]] * 2 and not np.array_equal(firsts[0], firsts[1])
    padded = lambda batches: sum(b["mask"].size - b["mask"].sum() for b in batches)  # noqa: E731
    assert padded(epochs[0]) < 0.8 * padded(list(streamed.arrays()))
    ranks = [
        TokenStream(
            files, task, "train", 16, shuffle=True, rank=r, world_size=2, equal_batches=True, seed=1, cache_rows=10**6
        )
        for r in (0, 1)
    ]
    batches = [list(s.arrays()) for s in ranks]
    assert len(batches[0]) == len(batches[1]) > 0


def test_a_sample_fraction_keeps_fixed_rows_and_scales_their_weights(token_files):
    """A task over many samples may keep a fraction of a sample generated large for another task: the same rows in
    every stage, weights scaled so the sample's weighted total stays what it was."""
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    full = _task(weights="cross_section")
    part = _task(weights="cross_section", sample_fractions={"events_zz": 0.25})
    a, b = (read_split(files, t, "train", extra=["process", "event_number"]) for t in (full, part))
    zz_a, zz_b = a["process"] == "events_zz", b["process"] == "events_zz"
    assert (
        0.15 < zz_b.sum() / zz_a.sum() < 0.35
        and (b["process"] == "events_sig").sum() == (a["process"] == "events_sig").sum()
    )
    assert set(b["event_number"][zz_b]) < set(a["event_number"][zz_a])
    assert b["weight"][zz_b].sum() == pytest.approx(a["weight"][zz_a].sum(), rel=0.25)
    np.testing.assert_allclose(b["weight"][zz_b], 4 * a["weight"][zz_a][0])
    with pytest.raises(ConfigError, match="sample_fractions"):
        _task(sample_fractions={"events_zz": 1.5})


def test_a_task_can_read_only_some_collections_of_each_sequence(token_files):
    """`collections: [electrons, muons]`: the model sees those objects (and the special positions), the rest of
    the event is masked out like padding; the rows and their order stay the same."""
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    every, leptons = (read_split(files, t, "train") for t in (_task(), _task(collections=["electrons", "muons"])))
    assert len(every["label"]) == len(leptons["label"])
    ids = [files.vocabulary.type_ids[c] for c in ("electrons", "muons")]
    seen = leptons["type_ids"][leptons["mask"]]
    assert (
        set(np.unique(seen)) <= {0, *ids}
        and np.isin(every["type_ids"][every["mask"]], ids).sum() == np.isin(seen, ids).sum()
    )
    batch = next(TokenStream(files, _task(collections=["electrons", "muons"]), "train", 32, shuffle=False).arrays())
    assert set(np.unique(batch["type_ids"][batch["mask"]])) <= {0, *ids}
    with pytest.raises(InputFileError, match=r"reads collection\(s\) \['taus'\]"):
        read_split(files, _task(collections=["taus"]), "train")
    # rows read without a task (every sample: chapter 07 scores them all) are restricted before the model scores them
    from treasure_lib.datamodules import tasks as T

    restricted = T.restrict(
        _task(collections=["electrons", "muons"]), read_split(files, None, "train"), files.set, "test"
    )
    np.testing.assert_array_equal(restricted["mask"][: len(leptons["mask"])], leptons["mask"])
    assert T.restrict(None, every, files.set, "test") is every


def test_a_model_reading_some_collections_sees_them_as_their_own_sequence(token_files):
    """In a compact layout a task's collections are rebuilt into a sequence of their own, in order: the model reads
    what an export of only those collections would hold (one [SEP] per hidden collection aside, the same in every
    row), so no position counts the objects it does not read (MET's position after fifty masked tracks told the
    track multiplicity), and batches are only as long as what it reads."""
    _, tokens, _ = token_files
    files = TokenFiles(tokens)
    assert files.set.layout.slots == "compact"
    types = files.vocabulary.type_ids
    task = _task(collections=["electrons", "met"])
    every, read = read_split(files, None, "train"), read_split(files, task, "train")
    ids = [0, types["electrons"], types["met"]]
    for i in range(len(read["mask"])):
        seen = every["mask"][i] & np.isin(every["type_ids"][i], ids)
        n = int(seen.sum())
        assert read["mask"][i, :n].all() and not read["mask"][i, n:].any(), "the read objects come first"
        np.testing.assert_array_equal(read["tokens"][i, :n], every["tokens"][i][seen])
        np.testing.assert_array_equal(read["type_ids"][i, :n], every["type_ids"][i][seen])

    def met_after_electrons(rows):
        met = np.argmax((rows["type_ids"] == types["met"]) & rows["mask"], axis=1)
        return met - ((rows["type_ids"] == types["electrons"]) & rows["mask"]).sum(1)

    assert np.ptp(met_after_electrons(every)) > 0, "masked in place, MET's position counted the muons"
    assert np.ptp(met_after_electrons(read)) == 0, "rebuilt, it does not"
    batch = next(TokenStream(files, task, "train", 32, shuffle=False).arrays())
    assert batch["mask"].shape[1] == batch["mask"].sum(1).max() < every["mask"].shape[1]


def test_a_fixed_slot_layout_keeps_only_the_slots_of_the_collections_a_task_reads(token_files):
    """Fixed slots without type ids (the leakage chapter's control): the positions are the slots, so a task's model
    keeps its collections' slots (the same columns in every row) and nothing else. Masking by type id read every
    collection there, since every position has type id 0."""
    from treasure_lib.datamodules import tasks as T
    from treasure_lib.sequences import Layout, TokenizerSet

    _, tokens, _ = token_files
    ts = TokenFiles(tokens).set
    fixed = TokenizerSet(ts.vocabulary, ts.groups, Layout(ts.layout.tokens, "fixed", sep=False, type_ids=False))
    n, width = 6, fixed.object_length
    rng = np.random.default_rng(0)
    rows = {
        "tokens": rng.integers(5, 50, (n, width, ts.levels)),
        "type_ids": np.zeros((n, width), np.int32),
        "mask": rng.random((n, width)) < 0.5,
        "label": np.arange(n),
    }
    out = T.restrict(_task(collections=["electrons", "met"]), rows, fixed, "test")
    owner = fixed.position_collections()
    kept = (owner == "") | np.isin(owner, ["electrons", "met"])
    assert out["mask"].shape[1] == kept.sum() == 1 + sum(g.slots for g in ts.groups if g.name in ("electrons", "met"))
    for key in ("tokens", "type_ids", "mask"):
        np.testing.assert_array_equal(out[key], rows[key][:, kept])
    np.testing.assert_array_equal(out["label"], rows["label"])
    with pytest.raises(InputFileError, match=r"reads collection\(s\) \['taus'\]"):
        T.restrict(_task(collections=["taus"]), rows, fixed, "test")
