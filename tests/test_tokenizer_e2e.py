"""Tokenizers end to end on generated samples: train, card, export (slow: runs Pythia and training)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from treasure_lib import config
from treasure_lib.errors import InputFileError
from treasure_lib.generate import generate
from treasure_lib.io.reader import H5Stream
from treasure_lib.io.tokens import list_column, read_metadata, tokens_array
from treasure_lib.sequences import Sequences, TokenizerSet
from treasure_lib.tokenizers import card
from treasure_lib.tokenizers.export import export
from treasure_lib.tokenizers.train import train_tokenizers

from .conftest import ROOT, export_sections, generate_sections, tokenizer_sections

pytestmark = pytest.mark.slow
DEFAULT = ROOT / "params" / "default.yaml"
FAST_TRAIN = [
    "tokenizer.train.batch_objects=1024",
    "tokenizer.train.max_epochs=3",
    "tokenizer.train.limit_train_batches=12",
    "tokenizer.train.progress_bar=false",
    "tokenizer.codebook_size=64",
    "tokenizer.scaler_sample_objects=20000",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    params = config.load(
        [DEFAULT],
        [f"generate.output_dir={out}", "generate.samples={ttbar: 500, Zjets: 250, ggH_ZZ4l: 250}", "study.seed=5"],
    )
    generate(*generate_sections(params), progress=False)
    return out


def _jet_params(data_dir, tmp, *extra):
    return config.load(
        [DEFAULT],
        [
            f"data.files=[{data_dir}/jets_*.h5]",
            f"tokenizer.output_dir={tmp}/cards",
            f"export.output_dir={tmp}/tokens",
            *FAST_TRAIN,
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def jet_cards(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jets")
    params = _jet_params(data_dir, tmp)
    return params, train_tokenizers(*tokenizer_sections(params))


def test_reconstruction_improves_with_each_quantizer_level_on_generated_tracks(jet_cards):
    _, cards = jet_cards
    metrics = card.load(cards["tracks"]).card["metrics"]
    levels = [metrics[f"val/rec_level_{q}"] for q in (1, 2, 3)]
    assert levels[0] > levels[1] > levels[2], levels
    assert metrics["val/usage_level_1"] > 0.5
    pt = [metrics[f"reco.pt.level_{q}.response_iqr_over_median"] for q in (1, 2, 3)]
    assert pt[0] > pt[2] and metrics["reco.pt.response_iqr_over_median"] == pt[2], (
        "physical-unit pT resolution per level"
    )


def test_card_metrics_describe_the_saved_weights(jet_cards):
    """The card holds the best epoch's weights; its metrics must be a validation of exactly those weights."""
    from treasure_lib.tokenizers.train import revalidate

    params, cards = jet_cards
    stored = card.load(cards["tracks"]).card
    fresh = revalidate(cards["tracks"], params.data, params.tokenizer, params.study.seed)
    assert set(fresh) == set(stored["metrics"])
    for key, value in fresh.items():
        assert stored["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert stored["training"]["best_epoch"] <= stored["training"]["epochs_run"]


def test_card_records_provenance_and_reloads_to_identical_indices(jet_cards, data_dir):
    params, cards = jet_cards
    tok = card.load(cards["tracks"])
    assert tok.card["training"]["seed"] == 42 and len(tok.card["training"]["data_checksums"]) == 3
    assert tok.card["training"]["split"]["train"] == 0.8
    batch = next(iter(H5Stream([data_dir / "jets_ttbar_000.h5"], {"tracks": _tracks(params)}, chunk_size=500)))
    again = card.load(cards["tracks"])
    np.testing.assert_array_equal(
        tok.encode(batch["tracks"].features, batch["tracks"].mask),
        again.encode(batch["tracks"].features, batch["tracks"].mask),
    )
    torch_idx = card.load(cards["tracks"], backend="torch").encode(batch["tracks"].features, batch["tracks"].mask)
    faiss_idx = card.load(cards["tracks"], backend="faiss").encode(batch["tracks"].features, batch["tracks"].mask)
    assert (torch_idx == faiss_idx).mean() > 0.999


def _tracks(params):
    from treasure_lib.object_collections import from_data

    return from_data(params.data)["tracks"]


def test_same_seed_on_cpu_gives_identical_indices(data_dir, tmp_path, jet_cards):
    params, cards = jet_cards
    again = train_tokenizers(*tokenizer_sections(_jet_params(data_dir, tmp_path)))
    batch = next(iter(H5Stream([data_dir / "jets_ttbar_000.h5"], {"tracks": _tracks(params)}, chunk_size=500)))
    a = card.load(cards["tracks"]).encode(batch["tracks"].features, batch["tracks"].mask)
    b = card.load(again["tracks"]).encode(batch["tracks"].features, batch["tracks"].mask)
    np.testing.assert_array_equal(a, b)


def test_jet_export_writes_documented_parquet_and_npz(jet_cards, data_dir):
    params, cards = jet_cards
    results = export(*export_sections(params), progress=False)
    r = next(r for r in results if "jets_ttbar_000" in r["file"])
    npz_path = next(p for p in r["outputs"] if p.endswith(".npz"))
    z = np.load(npz_path)
    n = r["rows"]
    assert z["indices"].shape == (n, 40, 3) and np.issubdtype(z["indices"].dtype, np.integer)
    assert z["labels"].shape == (n,) and z["codebooks"].shape == (3, 64, 32) and z["codebooks"].dtype == np.float32
    with h5py.File(data_dir / "jets_ttbar_000.h5") as f:
        n_tracks = f["tracks"]["valid"][:].sum(1)
    np.testing.assert_array_equal((z["indices"][..., 0] >= 0).sum(1), np.minimum(n_tracks, 40))
    assert (z["indices"][z["indices"][..., 0] < 0] == -1).all()
    path = r["outputs"][0]
    table = pq.read_table(path)
    ts = TokenizerSet.from_metadata(read_metadata(path), path)
    assert [g.name for g in ts.groups] == ["jets", "tracks"] and ts.layout.tokens == "grouped"
    tokens = tokens_array(table)
    assert tokens.shape == (n, 1 + 1 + 40 + 1, 3)
    seq = Sequences(tokens, list_column(table, "type_ids"), list_column(table, "mask"))
    np.testing.assert_array_equal(ts.split(seq)["tracks"], z["indices"])
    np.testing.assert_array_equal(table.column("label").to_numpy(), z["labels"])
    assert set(np.unique(z["labels"])) <= {0, 1, 2, 3}
    assert table.column("process")[0].as_py() == "ttbar" and table.column("event_index")[5].as_py() == 5
    with h5py.File(data_dir / "jets_ttbar_000.h5") as f:
        np.testing.assert_allclose(table.column("jet_pt").to_numpy(), f["jets"]["pt"][:])
    # a second export finds the outputs and skips: an interrupted export resumes
    assert all(r2["skipped"] for r2 in export(*export_sections(params), progress=False))


def test_no_row_is_in_two_splits_across_tokenizer_training_export_and_later_readers(jet_cards):
    """Rows the tokenizer trained on are `train` in the token file; rows it validated on are `val`;
    test rows never seen."""
    from treasure_lib import splits
    from treasure_lib.tokenizers.training_data import CollectionSets

    params, cards = jet_cards
    tok = card.load(cards["tracks"])
    seen = {}
    for name, code in (("train", splits.TRAIN), ("val", splits.VAL)):
        stream = H5Stream.from_data(params.data, {"tracks": _tracks(params)}, select_split=code)
        sets = CollectionSets(stream, "tracks", tok.scaler, 1024, shuffle=name == "train", seed=1, cache_rows=0)
        seen[name] = {(stream.files[f], e) for b in sets.arrays() for f, e in zip(b["file"], b["event_number"])}
    assert seen["train"] and seen["val"] and not seen["train"] & seen["val"]
    split_of = {}
    for r in export(*export_sections(params), progress=False):
        t = pq.read_table(r["outputs"][0], columns=["split", "event_number", "source_file"])
        for s, e, f in zip(
            t.column("split").to_pylist(), t.column("event_number").to_pylist(), t.column("source_file").to_pylist()
        ):
            split_of[(f, e)] = s
    assert all(split_of[(str(f), e)] == "train" for f, e in seen["train"])
    assert all(split_of[(str(f), e)] == "val" for f, e in seen["val"])
    assert "test" in split_of.values()


def test_export_fails_cleanly_on_a_file_missing_a_feature(jet_cards, data_dir, tmp_path):
    params, _ = jet_cards
    bad = tmp_path / "nod0.h5"
    with h5py.File(data_dir / "jets_Zjets_000.h5") as src, h5py.File(bad, "w") as dst:
        dst["jets"] = src["jets"][:]
        tracks = src["tracks"][:]
        keep = [n for n in tracks.dtype.names if n != "d0"]
        dst["tracks"] = np.array(tracks[keep].tolist(), dtype=[(n, tracks.dtype[n]) for n in keep])
    out = tmp_path / "tokens"
    p = config.load(
        [DEFAULT],
        [f"export.files=[{bad}]", f"export.output_dir={out}", f"export.cards_dir={params['tokenizer']['output_dir']}"],
    )
    with pytest.raises(InputFileError, match="feature 'd0' missing"):
        export(*export_sections(p), progress=False)
    assert not out.exists() or not any(out.iterdir()), "nothing half-written"


def test_transformer_tokenizer_trains_in_context_and_exports_flat(data_dir, tmp_path):
    params = _jet_params(
        data_dir,
        tmp_path,
        "tokenizer.encoder=transformer",
        "tokenizer.width=32",
        "tokenizer.depth=1",
        "tokenizer.heads=2",
        "export.layout=flat",
        "export.npz=false",
        f"export.files=[{data_dir}/jets_Zjets_000.h5]",
    )
    cards = train_tokenizers(*tokenizer_sections(params))
    assert card.load(cards["tracks"]).model.cfg.encoder["kind"] == "transformer"
    r = export(*export_sections(params), progress=False)[0]
    assert [Path(o).name.split(".", 1)[1] for o in r["outputs"]] == [
        "tokens.parquet",
        "features.parquet",
        "decoded.parquet",
    ]  # tokens, raw features, decoded tokens
    table = pq.read_table(r["outputs"][0])
    tokens = tokens_array(table)
    assert tokens.shape == (r["rows"], 1 + 3 + 40 * 3 + 1)
    mask = list_column(table, "mask")
    assert (tokens[mask] > 4).sum() == mask.sum() - 2 * len(mask), "every valid position but CLS and SEP is a code"


def _event_params(data_dir, tmp, *extra):
    return config.load(
        [DEFAULT],
        [
            "study.kind=events",
            "data.collection_set=events",
            "data.cuts=[]",
            "data.label={}",
            f"data.files=[{data_dir}/events_*.h5]",
            f"tokenizer.output_dir={tmp}/cards",
            f"export.output_dir={tmp}/tokens",
            "tokenizer.collections=[electrons, muons, jets, met]",
            "tokenizer.binning.bins=16",
            "sequence.order=null",
            "export.columns={}",
            "tokenizer.per_collection={electrons: {codebook_size: 16}, muons: {codebook_size: 16}}",
            *FAST_TRAIN,
            *extra,
        ],
    )


def test_event_export_object_mode_concatenates_collections_with_type_ids(data_dir, tmp_path):
    params = _event_params(
        data_dir, tmp_path, "data.label={metadata: process, classes: {ggH_ZZ4l: 1, Zjets: 0, ttbar: 0}}"
    )
    cards = train_tokenizers(*tokenizer_sections(params))
    assert set(cards) == {"electrons", "muons", "jets", "met"}
    results = export(*export_sections(params), progress=False)
    path = next(r["outputs"][0] for r in results if "ggH" in r["file"])
    table = pq.read_table(path)
    ts = TokenizerSet.from_metadata(read_metadata(path), path)
    tokens = tokens_array(table)
    assert tokens.shape[1:] == (1 + 4 + 1 + 4 + 1 + 10 + 1 + 1, 3)  # CLS, objects with SEPs, one MET
    types = list_column(table, "type_ids")
    mask = list_column(table, "mask")
    assert set(np.unique(types)) <= {0, 1, 2, 5, 7}
    last = mask.sum(1) - 1
    assert (types[np.arange(len(types)), last] == 7).all(), "MET closes every sequence"
    met_start = ts.vocabulary.offsets("met")
    met = tokens[np.arange(len(tokens)), last]
    assert ((met >= met_start[0]) & (met < met_start[0] + 3 * 16)).all()
    assert (table.column("label").to_numpy() == 1).all()


def test_event_export_combined_and_separate_modes(data_dir, tmp_path):
    combined = _event_params(
        data_dir,
        tmp_path / "c",
        "tokenizer.mode=combined",
        "tokenizer.kind=kmeans",
        f"export.files=[{data_dir}/events_Zjets_000.h5]",
    )
    cards = train_tokenizers(*tokenizer_sections(combined))
    assert set(cards) == {"objects", "met"}
    tok = card.load(cards["objects"])
    assert tok.features == ("pt", "eta", "phi", "type")
    r = export(*export_sections(combined), progress=False)[0]
    types = list_column(pq.read_table(r["outputs"][0]), "type_ids")
    assert set(np.unique(types)) <= {0, 1, 2, 5, 7} and (types == 5).any(), "objects keep their own type ids"
    separate = _event_params(
        data_dir,
        tmp_path / "s",
        "tokenizer.mode=separate",
        "tokenizer.kind=kmeans",
        f"export.files=[{data_dir}/events_Zjets_000.h5]",
    )
    train_tokenizers(*tokenizer_sections(separate))
    outs = [
        o for o in export(*export_sections(separate), progress=False)[0]["outputs"] if o.endswith(".tokens.parquet")
    ]
    assert sorted(o.rsplit(".", 3)[-3] for o in outs) == ["electrons", "jets", "met", "muons"]
    jets = pq.read_table(next(o for o in outs if ".jets." in o))
    assert tokens_array(jets).shape[1:] == (1 + 10 + 1, 3)


def test_training_leaves_checkpoints_and_offline_logs(jet_cards):
    params, cards = jet_cards
    run = cards["tracks"].parent
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    metrics_csv = next(run.glob("logs/version_*/metrics.csv"))
    header = metrics_csv.read_text().splitlines()[0]
    assert "val/rec_level_3" in header and "train/loss" in header
    assert list(run.glob("tensorboard/version_*/events.out.tfevents.*")), "TensorBoard event files are written offline"


def test_dead_code_replacement_stays_small_for_rare_electrons_once_trained(data_dir, tmp_path):
    """Generated events: electrons are rare (a few hundred per epoch); the replaced fraction per step stays small."""
    import csv

    params = _event_params(
        data_dir,
        tmp_path,
        "tokenizer.collections=[electrons]",
        "tokenizer.train.max_epochs=6",
        "tokenizer.train.limit_train_batches=null",
        "tokenizer.per_collection={electrons: {codebook_size: 32, train: {batch_objects: 128}}}",
        "tokenizer.train.patience=6",
    )
    cards = train_tokenizers(*tokenizer_sections(params))
    metrics = card.load(cards["electrons"]).card["metrics"]
    assert all(f"val/usage_level_{q}" in metrics for q in (1, 2, 3)), "utilisation is reported per level"
    assert metrics["val/usage_level_1"] > 0.4  # measured on the ~70 val electrons of this small sample
    rows = list(csv.DictReader(open(next((cards["electrons"].parent / "logs").glob("version_*/metrics.csv")))))
    steps = [r for r in rows if r.get("train/replaced_level_1")]
    last_epoch = max(int(r["epoch"]) for r in steps)
    late = [r for r in steps if int(r["epoch"]) >= last_epoch - 1]
    for q in (1, 2, 3):
        fraction = np.mean([float(r[f"train/replaced_level_{q}"]) for r in late])
        assert fraction < 0.05, f"level {q}: {fraction:.3f} of the codebook replaced per step once trained"
