"""Tokenizers end to end on generated samples: train, card, export (slow: runs Pythia and training)."""
from __future__ import annotations

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from treasure_lib import config
from treasure_lib.errors import InputFileError
from treasure_lib.generate import generate
from treasure_lib.io.h5 import H5Stream
from treasure_lib.io.tokens import read_vocabulary, tokens_array
from treasure_lib.tokenizers import card
from treasure_lib.tokenizers.export import export
from treasure_lib.tokenizers.train import train_tokenizers

from .conftest import ROOT

pytestmark = pytest.mark.slow
DEFAULT = ROOT / "params" / "default.yaml"
FAST_TRAIN = ["tokenizer.train.batch_size=128", "tokenizer.train.max_epochs=3", "tokenizer.train.limit_train_batches=12",
              "tokenizer.train.progress_bar=false", "tokenizer.codebook_size=64", "tokenizer.scaler_sample_objects=20000"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    params = config.load([DEFAULT], [f"generate.output_dir={out}", "generate.samples={ttbar: 500, Zjets: 250, ggH_ZZ4l: 250}",
                                     "study.seed=5"])
    generate(params, progress=False)
    return out


def _jet_params(data_dir, tmp, *extra):
    return config.load([DEFAULT], [f"data.files=[{data_dir}/jets_*.h5]", f"tokenizer.output_dir={tmp}/cards",
                                   f"export.output_dir={tmp}/tokens", *FAST_TRAIN, *extra])


@pytest.fixture(scope="module")
def jet_cards(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jets")
    params = _jet_params(data_dir, tmp)
    return params, train_tokenizers(params)


def test_reconstruction_improves_with_each_quantizer_level_on_generated_tracks(jet_cards):
    _, cards = jet_cards
    metrics = card.load(cards["tracks"]).card["metrics"]
    levels = [metrics[f"val/rec_level_{q}"] for q in (1, 2, 3)]
    assert levels[0] > levels[1] > levels[2], levels
    assert metrics["val/usage_level_1"] > 0.5


def test_card_records_provenance_and_reloads_to_identical_indices(jet_cards, data_dir):
    params, cards = jet_cards
    tok = card.load(cards["tracks"])
    assert tok.card["training"]["seed"] == 42 and len(tok.card["training"]["data_checksums"]) == 3
    batch = next(iter(H5Stream([data_dir / "jets_ttbar_000.h5"], {"tracks": _tracks(params)}, chunk_size=500)))
    again = card.load(cards["tracks"])
    np.testing.assert_array_equal(tok.encode(batch["tracks"].features, batch["tracks"].mask),
                                  again.encode(batch["tracks"].features, batch["tracks"].mask))
    torch_idx = card.load(cards["tracks"], backend="torch").encode(batch["tracks"].features, batch["tracks"].mask)
    faiss_idx = card.load(cards["tracks"], backend="faiss").encode(batch["tracks"].features, batch["tracks"].mask)
    assert (torch_idx == faiss_idx).mean() > 0.999


def _tracks(params):
    from treasure_lib.collections import from_params

    return from_params(params)["tracks"]


def test_same_seed_on_cpu_gives_identical_indices(data_dir, tmp_path, jet_cards):
    params, cards = jet_cards
    again = train_tokenizers(_jet_params(data_dir, tmp_path))
    batch = next(iter(H5Stream([data_dir / "jets_ttbar_000.h5"], {"tracks": _tracks(params)}, chunk_size=500)))
    a = card.load(cards["tracks"]).encode(batch["tracks"].features, batch["tracks"].mask)
    b = card.load(again["tracks"]).encode(batch["tracks"].features, batch["tracks"].mask)
    np.testing.assert_array_equal(a, b)


def test_jet_export_writes_documented_parquet_and_npz(jet_cards, data_dir):
    params, cards = jet_cards
    results = export(params, progress=False)
    out = {r["file"].rsplit("/", 1)[-1]: r for r in results}
    r = out["jets_ttbar_000.h5"]
    npz_path = next(p for p in r["outputs"] if p.endswith(".npz"))
    z = np.load(npz_path)
    n = r["rows"]
    assert z["indices"].shape == (n, 40, 3) and np.issubdtype(z["indices"].dtype, np.integer)
    assert z["labels"].shape == (n,) and z["codebooks"].shape == (3, 64, 32) and z["codebooks"].dtype == np.float32
    with h5py.File(data_dir / "jets_ttbar_000.h5") as f:
        n_tracks = f["tracks"]["valid"][:].sum(1)
    np.testing.assert_array_equal((z["indices"][..., 0] >= 0).sum(1), np.minimum(n_tracks, 40))
    assert (z["indices"][z["indices"][..., 0] < 0] == -1).all()
    table = pq.read_table(r["outputs"][0])
    vocab, layout, hashes = read_vocabulary(r["outputs"][0])
    assert layout == "grouped" and set(hashes) == {"tracks"} and vocab.offsets("tracks").tolist() == [4, 68, 132]
    tokens = tokens_array(table)
    assert tokens.shape == (n, 40, 3)
    expected = np.where(z["indices"] >= 0, z["indices"] + np.array([4, 68, 132]), 0)
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_array_equal(table.column("label").to_numpy(), z["labels"])
    assert set(np.unique(z["labels"])) <= {0, 1, 2, 3}
    assert table.column("process")[0].as_py() == "ttbar" and table.column("event_index")[5].as_py() == 5
    # a second export finds the outputs and skips: an interrupted export resumes
    assert all(r2["skipped"] for r2 in export(params, progress=False))


def test_export_fails_cleanly_on_a_file_missing_a_feature(jet_cards, data_dir, tmp_path):
    params, _ = jet_cards
    bad = tmp_path / "nod0.h5"
    with h5py.File(data_dir / "jets_Zjets_000.h5") as src, h5py.File(bad, "w") as dst:
        dst["jets"] = src["jets"][:]
        tracks = src["tracks"][:]
        keep = [n for n in tracks.dtype.names if n != "d0"]
        dst["tracks"] = np.array(tracks[keep].tolist(), dtype=[(n, tracks.dtype[n]) for n in keep])
    out = tmp_path / "tokens"
    p = config.load([DEFAULT], [f"export.files=[{bad}]", f"export.output_dir={out}",
                                f"export.cards_dir={params['tokenizer']['output_dir']}"])
    with pytest.raises(InputFileError, match="feature 'd0' missing"):
        export(p, progress=False)
    assert not out.exists() or not any(out.iterdir()), "nothing half-written"


def test_transformer_tokenizer_trains_in_context_and_exports_flat(data_dir, tmp_path):
    params = _jet_params(data_dir, tmp_path, "tokenizer.encoder=transformer", "tokenizer.width=32", "tokenizer.depth=1",
                         "tokenizer.heads=2", "export.layout=flat", "export.npz=false",
                         f"export.files=[{data_dir}/jets_Zjets_000.h5]")
    cards = train_tokenizers(params)
    assert card.load(cards["tracks"]).model.cfg.encoder["kind"] == "transformer"
    r = export(params, progress=False)[0]
    assert len(r["outputs"]) == 1
    tokens = tokens_array(pq.read_table(r["outputs"][0]))
    assert tokens.shape == (r["rows"], 40 * 3)


def _event_params(data_dir, tmp, *extra):
    return config.load([DEFAULT], ["study.kind=events", "data.collection_set=events", "data.cuts=[]", "data.label={}",
                                   f"data.files=[{data_dir}/events_*.h5]", f"tokenizer.output_dir={tmp}/cards",
                                   f"export.output_dir={tmp}/tokens", "tokenizer.collections=[electrons, muons, jets, met]",
                                   "tokenizer.binning.bins=16", *FAST_TRAIN, *extra])


def test_event_export_object_mode_concatenates_collections_with_type_ids(data_dir, tmp_path):
    params = _event_params(data_dir, tmp_path, "data.label={metadata: process, classes: {ggH_ZZ4l: 1, Zjets: 0, ttbar: 0}}")
    cards = train_tokenizers(params)
    assert set(cards) == {"electrons", "muons", "jets", "met"}
    results = export(params, progress=False)
    path = next(r["outputs"][0] for r in results if "ggH" in r["file"])
    table = pq.read_table(path)
    vocab, _, _ = read_vocabulary(path)
    tokens = tokens_array(table)
    assert tokens.shape[1:] == (4 + 4 + 10 + 1, 3)  # max electrons + muons + jets + one MET object
    types = np.array(table.column("type_ids").to_pylist())
    assert set(np.unique(types)) <= {0, 1, 2, 5, 7}
    assert (types[:, -1] == 7).all(), "MET is always present"
    met_start = vocab.offsets("met")
    assert ((tokens[:, -1, :] >= met_start[0]) & (tokens[:, -1, :] < met_start[0] + 3 * 16)).all()
    assert (table.column("label").to_numpy() == 1).all()


def test_event_export_combined_and_separate_modes(data_dir, tmp_path):
    combined = _event_params(data_dir, tmp_path / "c", "tokenizer.mode=combined", "tokenizer.kind=kmeans",
                             f"export.files=[{data_dir}/events_Zjets_000.h5]")
    cards = train_tokenizers(combined)
    assert set(cards) == {"objects", "met"}
    tok = card.load(cards["objects"])
    assert tok.features == ("pt", "eta", "phi", "type")
    r = export(combined, progress=False)[0]
    types = np.array(pq.read_table(r["outputs"][0]).column("type_ids").to_pylist())
    assert set(np.unique(types)) <= {0, 1, 2, 5, 7} and (types == 5).any()
    separate = _event_params(data_dir, tmp_path / "s", "tokenizer.mode=separate", "tokenizer.kind=kmeans",
                             f"export.files=[{data_dir}/events_Zjets_000.h5]")
    train_tokenizers(separate)
    outs = export(separate, progress=False)[0]["outputs"]
    assert sorted(o.rsplit(".", 2)[-2] for o in outs) == ["electrons", "jets", "met", "muons"]
    jets = pq.read_table(next(o for o in outs if ".jets." in o))
    assert tokens_array(jets).shape[1:] == (10, 3)


def test_training_leaves_checkpoints_and_offline_logs(jet_cards):
    params, cards = jet_cards
    run = cards["tracks"].parent
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    metrics_csv = next(run.glob("logs/version_*/metrics.csv"))
    header = metrics_csv.read_text().splitlines()[0]
    assert "val/rec_level_3" in header and "train/loss" in header
    assert list(run.glob("tensorboard/version_*/events.out.tfevents.*")), "TensorBoard event files are written offline"
