"""The H5 data layer: both layouts round trip, streaming, ordering, cuts and every bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.io.batch import concat, join_padded
from treasure_lib.io.h5_writer import H5Writer, batch_to_arrays, write_batches
from treasure_lib.io.inspect import format_inspection, inspect_file
from treasure_lib.io.reader import H5Stream
from treasure_lib.io.toy import make_batch

META = {
    "dsid": 601229,
    "process": "ttbar",
    "cross_section_pb": 729.8,
    "filter_efficiency": 1.0,
    "k_factor": 1.0,
    "sqrt_s_tev": 13.6,
    "is_mc": True,
    "n_events": 300,
}


def _write(path, collections, n=300, seed=0, width=None, chunk=None):
    batches = (
        [make_batch(collections, n, seed=seed, width=width)]
        if chunk is None
        else [make_batch(collections, chunk, seed=seed + i, width=width, start=i * chunk) for i in range(n // chunk)]
    )
    write_batches(path, batches, collections, metadata=META)
    return concat(batches)


def _sorted_valid(oa, order_index):
    """Per row: the valid objects' feature vectors, sorted by the ordering feature (descending)."""
    out = []
    for feats, mask in zip(oa.features, oa.mask):
        valid = feats[mask]
        out.append(valid[np.argsort(-valid[:, order_index], kind="stable")])
    return out


@pytest.mark.parametrize("set_name", ["jets", "events"])
def test_round_trip_of_both_layouts_returns_identical_values(tmp_path, sets, set_name):
    collections = sets[set_name]
    written = _write(tmp_path / "sample.h5", collections)
    read = H5Stream([tmp_path / "sample.h5"], collections, chunk_size=64).read_all()
    assert len(read) == len(written) == 300
    assert read.metadata["process"] == "ttbar" and read.metadata["n_events"] == 300
    for name, c in collections.items():
        a, b = written[name], read[name]
        assert b.features.dtype == np.float32 and b.mask.dtype == bool
        assert b.features.shape == (300, c.max_objects, len(c.features))
        np.testing.assert_array_equal(a.mask.sum(1), b.mask.sum(1))
        if c.is_scalar:
            np.testing.assert_array_equal(a.features, b.features)
            for t in a.truth:
                np.testing.assert_array_equal(a.truth[t], b.truth[t])
        else:  # the reader orders by pt: same objects, in pt order
            idx = c.index(c.order_by)
            for x, y in zip(_sorted_valid(a, idx), _sorted_valid(b, idx)):
                np.testing.assert_array_equal(x, y)
            key = np.where(b.mask, b.feature(c.order_by), -1.0)
            assert (np.diff(key, axis=1) <= 0).all(), "objects must come out ordered by pt, valid first"
            assert (b.features[~b.mask] == 0).all(), "padded entries are zero"


def test_writer_then_reader_is_identical_when_already_ordered(tmp_path, jet_collections):
    batch = H5Stream([_write_path(tmp_path, jet_collections)], jet_collections).read_all()
    write_batches(tmp_path / "again.h5", [batch], jet_collections)
    again = H5Stream([tmp_path / "again.h5"], jet_collections).read_all()
    for name in jet_collections:
        np.testing.assert_array_equal(batch[name].features, again[name].features)
        np.testing.assert_array_equal(batch[name].mask, again[name].mask)


def _write_path(tmp_path, collections, name="a.h5", **kw):
    path = tmp_path / name
    _write(path, collections, **kw)
    return path


def test_streaming_several_files_equals_reading_them_at_once(tmp_path, jet_collections):
    files = [_write_path(tmp_path, jet_collections, f"f{i}.h5", n=250 + 50 * i, seed=i) for i in range(3)]
    chunks = list(H5Stream(files, jet_collections, chunk_size=70))
    assert max(len(c) for c in chunks) == 70
    assert len({c.source_file for c in chunks}) == 3, "a chunk never spans two files"
    streamed = concat(chunks)
    whole = concat([H5Stream([f], jet_collections, chunk_size=10**6).read_all() for f in files])
    for name in jet_collections:
        np.testing.assert_array_equal(streamed[name].features, whole[name].features)
        np.testing.assert_array_equal(streamed[name].mask, whole[name].mask)
    np.testing.assert_array_equal(streamed.event_index, whole.event_index)
    assert streamed.event_index[:3].tolist() == [0, 1, 2] and len(streamed) == 250 + 300 + 350


def test_join_padded_pads_every_chunk_to_the_widest():
    a = (np.ones((2, 3, 2), np.float32), np.ones((2, 3), bool))
    b = (np.full((1, 1, 2), 5.0, np.float32), np.ones((1, 1), bool))
    feats, mask = join_padded([a, b])
    assert feats.shape == (3, 3, 2) and feats.dtype == np.float32
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(feats[2], [[5, 5], [0, 0], [0, 0]])


def test_glob_patterns_expand_in_sorted_order(tmp_path, jet_collections):
    for i in (2, 0, 1):
        _write_path(tmp_path, jet_collections, f"s{i}.h5", n=100, seed=i)
    stream = H5Stream([str(tmp_path / "s*.h5")], jet_collections)
    assert [p.name for p in stream.files] == ["s0.h5", "s1.h5", "s2.h5"]
    with pytest.raises(InputFileError, match="no input file matches"):
        H5Stream([str(tmp_path / "zz*.h5")], jet_collections)


def test_truncation_to_max_objects_keeps_the_hardest_and_counts_the_rest(tmp_path, sets):
    from dataclasses import replace

    c = replace(sets["events"]["electrons"], max_objects=2)
    collections = {"electrons": c}
    written = _write(tmp_path / "e.h5", {"electrons": sets["events"]["electrons"]}, n=200)
    n_valid = written["electrons"].mask.sum(1)
    stream = H5Stream([tmp_path / "e.h5"], collections, chunk_size=50)
    read = stream.read_all()
    assert read["electrons"].features.shape[1] == 2
    expected = int(np.clip(n_valid - 2, 0, None).sum())
    assert expected > 0
    assert stream.stats["truncated"]["electrons"] == expected == read.truncated["electrons"]
    pts = np.where(written["electrons"].mask, written["electrons"].feature("pt"), -np.inf)
    top2 = -np.sort(-pts, axis=1)[:, :2]
    np.testing.assert_array_equal(np.where(read["electrons"].mask, read["electrons"].feature("pt"), -np.inf), top2)


def test_scalar_cut_drops_rows_and_object_cut_drops_objects(tmp_path, jet_collections):
    path = _write_path(tmp_path, jet_collections, n=400)
    everything = H5Stream([path], jet_collections).read_all()
    jet_pt = everything.scalars("jets")[:, 0]
    cut = float(np.median(jet_pt))
    passed = H5Stream([path], jet_collections, cuts=[f"jets.pt > {cut}", "tracks.pt >= 20e3"]).read_all()
    assert len(passed) == int((jet_pt > cut).sum())
    np.testing.assert_array_equal(passed.event_index, np.flatnonzero(jet_pt > cut))
    tracks = passed["tracks"]
    assert (tracks.feature("pt")[tracks.mask] >= 20e3).all()
    before = everything["tracks"]
    kept_rows = passed.event_index
    n_pass = ((before.feature("pt") >= 20e3) & before.mask)[kept_rows].sum(1)
    np.testing.assert_array_equal(tracks.mask.sum(1), n_pass)


@pytest.mark.parametrize(
    "text, message",
    [
        ("jets.pt >> 3", "expected '<collection>.<feature> <op> <number>'"),
        ("muons.pt > 3", "no collection 'muons'; available: jets, tracks"),
        ("jets.ptt > 3", "collection 'jets' has no feature 'ptt'; available: .*pt"),
    ],
)
def test_bad_cuts_are_explained(jet_collections, tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        H5Stream([tmp_path / "x.h5"], jet_collections, cuts=[text])


def test_flavour_labels_come_from_the_fixed_table(tmp_path, jet_collections):
    written = _write(tmp_path / "j.h5", jet_collections, n=200)
    label = {"collection": "jets", "field": "HadronConeExclTruthLabelID", "table": "flavour"}
    read = H5Stream(
        [tmp_path / "j.h5"], jet_collections, label=label, weight={"collection": "jets", "field": "mcEventWeight"}
    ).read_all()
    raw = written["jets"].truth["HadronConeExclTruthLabelID"][:, 0]
    expected = np.select([raw == 5, raw == 4, raw == 0, raw == 15], [0, 1, 2, 3], -1)
    np.testing.assert_array_equal(read.labels, expected)
    np.testing.assert_allclose(read.weights, written["jets"].truth["mcEventWeight"][:, 0])


def test_unknown_flavour_value_is_an_error_naming_file_and_value(tmp_path, jet_collections):
    batch = make_batch(jet_collections, 50)
    batch["jets"].truth["HadronConeExclTruthLabelID"][3] = 7
    write_batches(tmp_path / "j.h5", [batch], jet_collections)
    label = {"collection": "jets", "field": "HadronConeExclTruthLabelID", "table": "flavour"}
    with pytest.raises(
        InputFileError, match=r"j\.h5: jets\.HadronConeExclTruthLabelID: flavour label value\(s\) \[7\]"
    ):
        H5Stream([tmp_path / "j.h5"], jet_collections, label=label).read_all()


def test_metadata_labels_map_the_process_to_a_class(tmp_path, event_collections):
    path = _write_path(tmp_path, event_collections, n=100)
    read = H5Stream(
        [path], event_collections, label={"metadata": "process", "classes": {"ttbar": 1, "Zjets": 0}}
    ).read_all()
    assert (read.labels == 1).all()
    with pytest.raises(InputFileError, match=r"metadata process='ttbar' is not among the label classes"):
        H5Stream([path], event_collections, label={"metadata": "process", "classes": {"Zjets": 0}}).read_all()


# ----------------------------------------------------------------- bad input


def test_missing_file_is_named(jet_collections, tmp_path):
    with pytest.raises(InputFileError, match=r"nothere\.h5: file not found"):
        H5Stream([tmp_path / "nothere.h5"], jet_collections).read_all()


def test_not_an_hdf5_file_is_named(jet_collections, tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("these are my notes, not an HDF5 file\n" * 10)
    with pytest.raises(InputFileError, match=r"notes\.h5: not a readable HDF5 file"):
        H5Stream([bad], jet_collections).read_all()


def test_truncated_file_gives_a_clear_error(jet_collections, tmp_path):
    path = _write_path(tmp_path, jet_collections, n=2000)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"cut\.h5: (not a readable HDF5 file|.*truncated or corrupt)"):
        H5Stream([cut], jet_collections).read_all()


def test_missing_feature_lists_what_is_available(event_collections, tmp_path):
    path = _write_path(tmp_path, event_collections, n=50)
    with h5py.File(path, "a") as f:
        del f["objects/muons/trk_iso03"]
    with pytest.raises(
        InputFileError,
        match=r"collection 'muons': feature 'trk_iso03' missing: no dataset "
        r"'objects/muons/trk_iso03'; available in 'objects/muons': charge, eta",
    ):
        H5Stream([path], event_collections).read_all()


def test_missing_compound_field_lists_the_fields(jet_collections, tmp_path):
    batch = make_batch(jet_collections, 20)
    arrays = batch_to_arrays(batch, jet_collections)
    tracks = arrays["tracks"]
    names = [n for n in tracks.dtype.names if n != "d0"]
    arrays["tracks"] = tracks[names]
    with H5Writer(tmp_path / "nod0.h5") as w:
        w.append(
            {
                k: np.ascontiguousarray(v)
                if k != "tracks"
                else np.array(v.tolist(), dtype=[(n, tracks.dtype[n]) for n in names])
                for k, v in arrays.items()
            }
        )
    with pytest.raises(
        InputFileError, match=r"nod0\.h5: collection 'tracks': feature 'd0' missing from dataset 'tracks'"
    ):
        H5Stream([tmp_path / "nod0.h5"], jet_collections).read_all()


def test_missing_dataset_lists_the_file_contents(jet_collections, tmp_path):
    batch = make_batch(jet_collections, 20)
    with H5Writer(tmp_path / "jetsonly.h5") as w:
        w.append({"jets": batch_to_arrays(batch, jet_collections)["jets"]})
    with pytest.raises(InputFileError, match=r"collection 'tracks': no dataset 'tracks'; the file has: jets"):
        H5Stream([tmp_path / "jetsonly.h5"], jet_collections).read_all()


def test_wrong_shape_and_dtype_are_explained(event_collections, tmp_path):
    path = _write_path(tmp_path, event_collections, n=30)
    with h5py.File(path, "a") as f:
        del f["objects/photons/eta"]
        f["objects/photons/eta"] = np.zeros((30, 5), np.float32)  # mask is (30, 3)
        del f["met/phi"]
        f["met/phi"] = np.array(["a"] * 30, dtype="S1")
    with pytest.raises(InputFileError) as info:
        H5Stream([path], event_collections).read_all()
    text = str(info.value)
    assert "dataset 'objects/photons/eta' has shape (30, 5), but the mask has (30, 3)" in text
    assert "dataset 'met/phi' has dtype |S1, expected a number or bool" in text


def test_mask_that_disagrees_with_the_data_is_an_error(event_collections, tmp_path):
    path = _write_path(tmp_path, event_collections, n=30)
    with h5py.File(path, "a") as f:
        del f["objects/taus/mask"]
        f["objects/taus/mask"] = np.ones((30, 2), bool)
    with pytest.raises(InputFileError, match=r"collection 'taus'.*has shape \(30, 3\), but the mask has \(30, 2\)"):
        H5Stream([path], event_collections).read_all()


def test_non_bool_mask_is_an_error(event_collections, tmp_path):
    path = _write_path(tmp_path, event_collections, n=30)
    with h5py.File(path, "a") as f:
        del f["objects/taus/mask"]
        f["objects/taus/mask"] = np.ones((30, 3), np.int8)
    with pytest.raises(InputFileError, match=r"mask 'objects/taus/mask' must be bool, got int8"):
        H5Stream([path], event_collections).read_all()


def test_zero_rows_is_an_error(jet_collections, tmp_path):
    batch = make_batch(jet_collections, 0)
    write_batches(tmp_path / "empty.h5", [batch], jet_collections)
    with pytest.raises(InputFileError, match=r"empty\.h5: zero rows in jets, tracks"):
        H5Stream([tmp_path / "empty.h5"], jet_collections).read_all()


def test_collections_disagreeing_on_rows_is_an_error(event_collections, tmp_path):
    path = _write_path(tmp_path, event_collections, n=30)
    with h5py.File(path, "a") as f:
        for k in list(f["met"].keys()):
            data = f[f"met/{k}"][:20]
            del f[f"met/{k}"]
            f[f"met/{k}"] = data
    with pytest.raises(InputFileError, match="collections disagree on the number of rows"):
        H5Stream([path], event_collections).read_all()


def _with_nan(tmp_path, jet_collections):
    batch = make_batch(jet_collections, 100)
    tracks = batch["tracks"]
    rows, cols = np.nonzero(tracks.mask)
    d0 = tracks.names.index("d0")
    tracks.features[rows[:3], cols[:3], d0] = np.nan
    tracks.features[rows[3], cols[3], d0] = np.inf
    batch["jets"].features[5, 0, 1] = np.nan  # jet eta
    write_batches(tmp_path / "nan.h5", [batch], jet_collections)
    return tmp_path / "nan.h5", batch


def test_nan_is_an_error_naming_file_collection_feature_and_count(jet_collections, tmp_path):
    path, _ = _with_nan(tmp_path, jet_collections)
    with pytest.raises(
        InputFileError,
        match=r"nan\.h5: collection 'jets': NaN/inf in valid entries of feature\(s\) 'eta' \(1 entries\)",
    ):
        H5Stream([path], jet_collections).read_all()
    with pytest.raises(
        InputFileError, match=r"collection 'tracks': NaN/inf in valid entries of feature\(s\) 'd0' \(4 entries\)"
    ):
        H5Stream([path], {"tracks": jet_collections["tracks"]}).read_all()


def test_nan_policy_zero_and_drop(jet_collections, tmp_path):
    path, batch = _with_nan(tmp_path, jet_collections)
    zero = H5Stream([path], jet_collections, nan_policy="zero")
    read = zero.read_all()
    assert len(read) == 100 and np.isfinite(read["tracks"].features).all()
    assert zero.stats["nan_entries"] == {"jets.eta": 1, "tracks.d0": 4}
    assert read["tracks"].mask.sum() == batch["tracks"].mask.sum()
    dropped = H5Stream([path], jet_collections, nan_policy="drop").read_all()
    assert len(dropped) == 99 and 5 not in dropped.event_index  # the row with a NaN jet eta is dropped
    assert np.isfinite(dropped["tracks"].features).all()
    assert dropped["tracks"].mask.sum() == batch["tracks"].mask[dropped.event_index].sum() - 4


# ----------------------------------------------------------------- writer


def test_writer_failure_leaves_nothing_behind(tmp_path, jet_collections):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with H5Writer(target) as w:
            w.append(batch_to_arrays(make_batch(jet_collections, 10), jet_collections))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_writes_gzip_chunks_and_checks_blocks(tmp_path, jet_collections):
    path = tmp_path / "out.h5"
    with H5Writer(path, chunk_rows=64) as w:
        w.append(batch_to_arrays(make_batch(jet_collections, 100), jet_collections))
        w.append(batch_to_arrays(make_batch(jet_collections, 50, seed=1), jet_collections))
        with pytest.raises(ValueError, match="disagree on the number of rows"):
            w.append({"jets": np.zeros(3), "tracks": np.zeros(4)})
    with h5py.File(path) as f:
        assert f["tracks"].shape == (150, 40) and f["tracks"].compression == "gzip" and f["tracks"].chunks[0] == 64


# ----------------------------------------------------------------- inspect and CLI


def test_inspect_reports_contents_and_what_the_file_can_serve(tmp_path, sets):
    path = _write_path(tmp_path, sets["jets"], n=120)
    report = inspect_file(path, sets)
    assert report["rows"] == 120 and report["metadata"]["dsid"] == 601229
    tracks = next(d for d in report["datasets"] if d["path"] == "tracks")
    assert tracks["shape"] == [120, 40] and tracks["fields"]["valid"] == "bool" and tracks["compression"] == "gzip"
    assert report["serves"]["jets"]["tracks"]["ok"] and not report["serves"]["events"]["electrons"]["ok"]
    text = format_inspection(report)
    assert "collection set 'jets': serves 2/2 (jets, tracks)" in text
    assert "collection set 'events': serves 0/8" in text


def test_cli_inspect_and_clean_error(tmp_path, sets, capsys):
    from treasure_lib.cli import main

    path = _write_path(tmp_path, sets["events"], n=40)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "objects/electrons/pt" in out and "serves 8/8" in out
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5: file not found" in capsys.readouterr().err


def test_phi_is_relative_to_the_leading_object_whatever_collections_are_read(tmp_path, event_collections):
    """Absolute phi carries no physics: event studies see every phi (MET's too) relative to the leading object."""
    from treasure_lib.kinematics import wrap_phi

    batch = make_batch(event_collections, 200, seed=4)
    write_batches(tmp_path / "e.h5", [batch], event_collections, metadata=META)
    refs = ["electrons", "muons", "taus", "photons", "jets"]
    absolute = H5Stream([tmp_path / "e.h5"], event_collections).read_all()
    rotated = H5Stream(
        [tmp_path / "e.h5"], event_collections, phi_reference="leading", phi_reference_collections=refs
    ).read_all()
    # the leading object over the reference collections, by pt
    pts = np.concatenate([np.where(absolute[c].mask, absolute[c].feature("pt"), -np.inf) for c in refs], axis=1)
    phis = np.concatenate([absolute[c].feature("phi") for c in refs], axis=1)
    lead = phis[np.arange(200), pts.argmax(1)]
    for c in refs + ["tracks"]:
        want = np.where(absolute[c].mask, wrap_phi(absolute[c].feature("phi") - lead[:, None]), 0)
        np.testing.assert_allclose(rotated[c].feature("phi"), want, atol=1e-5, err_msg=c)
    np.testing.assert_allclose(
        rotated["met"].feature("phi")[:, 0], wrap_phi(absolute["met"].feature("phi")[:, 0] - lead), atol=1e-5
    )
    assert (np.abs(rotated["muons"].feature("phi")) <= np.pi).all()
    # a reader of muons alone still rotates by the same leading object (read along from the other collections)
    alone = H5Stream(
        [tmp_path / "e.h5"],
        {"muons": event_collections["muons"]},
        phi_reference="leading",
        context=event_collections,
        phi_reference_collections=refs,
    ).read_all()
    np.testing.assert_array_equal(alone["muons"].features, rotated["muons"].features)
