"""Interoperability with atlas-ftag-tools, the reader and writer the FTAG community uses."""

from __future__ import annotations

import numpy as np
import pytest

ftag_hdf5 = pytest.importorskip("ftag.hdf5")

from treasure_lib.io.h5_writer import batch_to_arrays, write_batches  # noqa: E402
from treasure_lib.io.reader import H5Stream  # noqa: E402
from treasure_lib.io.toy import make_batch  # noqa: E402


def _ordered(collections, n, seed=0):
    """A batch already in the reader's order (pt descending, valid first), as a dumper writes it."""
    from treasure_lib.io.objects import sort_and_truncate as _sort_and_truncate

    batch = make_batch(collections, n, seed=seed)
    for name, c in collections.items():
        batch.collections[name], _ = _sort_and_truncate(batch[name], c)
    return batch


def test_our_compound_file_reads_identically_in_ftag(tmp_path, jet_collections):
    batch = _ordered(jet_collections, 500)
    path = write_batches(tmp_path / "ours.h5", [batch], jet_collections)
    reader = ftag_hdf5.H5Reader(path, batch_size=128, shuffle=False)
    tracks_vars = list(jet_collections["tracks"].features) + ["valid"]
    data = reader.load({"jets": ["pt", "eta", "HadronConeExclTruthLabelID"], "tracks": tracks_vars})
    assert data["jets"].shape == (500,) and data["tracks"].shape == (500, 40)
    np.testing.assert_array_equal(data["jets"]["pt"], batch.scalars("jets")[:, 0])
    np.testing.assert_array_equal(
        data["jets"]["HadronConeExclTruthLabelID"], batch["jets"].truth["HadronConeExclTruthLabelID"][:, 0]
    )
    np.testing.assert_array_equal(data["tracks"]["valid"], batch["tracks"].mask)
    for i, name in enumerate(jet_collections["tracks"].features):
        np.testing.assert_array_equal(data["tracks"][name], batch["tracks"].features[..., i])


def test_ftag_written_file_reads_identically_in_ours(tmp_path, jet_collections):
    batch = _ordered(jet_collections, 300, seed=3)
    arrays = batch_to_arrays(batch, jet_collections)
    path = tmp_path / "ftag.h5"
    writer = ftag_hdf5.H5Writer(
        dst=path,
        dtypes={k: v.dtype for k, v in arrays.items()},
        shapes={k: v.shape for k, v in arrays.items()},
        compression="gzip",
        shuffle=False,
    )
    writer.write({k: v[:200] for k, v in arrays.items()})
    writer.write({k: v[200:] for k, v in arrays.items()})
    writer.close()
    read = H5Stream([path], jet_collections, chunk_size=64).read_all()
    for name in jet_collections:
        np.testing.assert_array_equal(read[name].features, batch[name].features)
        np.testing.assert_array_equal(read[name].mask, batch[name].mask)
