"""The sequence contract (TokenizerSet) and export on toy cards: layouts, switches, round trips, exact cards."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from treasure_lib import config, splits
from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.io.h5_writer import write_batches
from treasure_lib.io.tokens import dense_features, list_column, read_metadata, tokens_array
from treasure_lib.io.toy import make_batch
from treasure_lib.object_collections import load_sets
from treasure_lib.preprocessing import CollectionScaler
from treasure_lib.sequences import Sequences, TokenizerSet
from treasure_lib.tokenizers.card import BinningTokenizer, KMeansTokenizer, save
from treasure_lib.tokenizers.export import export
from treasure_lib.tokenizers.train import _collection_info, combined_collection
from treasure_lib.vocabulary import CLS, EMPTY, PAD, SEP

from .conftest import OBJECTS, ROOT, export_sections

EVENTS = load_sets(OBJECTS)["events"]
STUDY = ["electrons", "muons", "met", "event"]


def _toy_files(folder, n=400, names=("events_a", "events_b")):
    folder.mkdir(parents=True, exist_ok=True)
    cols = {k: EVENTS[k] for k in STUDY}
    paths = []
    for i, name in enumerate(names):
        batch = make_batch(cols, n, seed=i, start=10_000 * i)
        for c in ("electrons", "muons"):
            oa = batch[c]
            oa.features[..., oa.names.index("charge")] = np.where(oa.mask, np.where(oa.features[..., 3] > 0, 1, -1), 0)
        path = folder / f"{name}.h5"
        write_batches(
            path,
            [batch],
            cols,
            metadata={
                "dsid": 700000 + i,
                "process": name,
                "n_events": n,
                "sum_of_weights": float(n),
                "cross_section_pb": 1.5,
            },
        )
        paths.append(path)
    return paths


def _kmeans_card(c, batch, levels=3, size=8, seed=0):
    oa = batch[c.name]
    scaler = CollectionScaler.for_collection(c).fit(oa.features, oa.mask)
    rng = np.random.default_rng(seed)
    width = len(scaler.continuous) + sum(scaler.n_categories)
    return KMeansTokenizer(_collection_info(c), scaler, rng.normal(size=(levels, size, width)).astype(np.float32))


def _binning_card(c, batch, bins=4):
    x = batch[c.name].features[:, 0]
    edges = np.stack(
        [np.quantile(x[:, f], np.linspace(0, 1, bins + 1)) + np.arange(bins + 1) * 1e-6 for f in range(x.shape[1])]
    )
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
    scaler = CollectionScaler.for_collection(c).fit(batch[c.name].features, batch[c.name].mask)
    return BinningTokenizer(_collection_info(c), edges, centres, scaler)


def _cards(root, files, combined=False):
    cols = {k: EVENTS[k] for k in STUDY}
    from treasure_lib.io.reader import H5Stream

    batch = H5Stream(files, cols).read_all()
    if combined:
        objects = {k: EVENTS[k] for k in ("electrons", "muons")}
        from treasure_lib.io.batch import Batch
        from treasure_lib.tokenizers.train import to_combined

        cc = combined_collection(objects)
        tok = _kmeans_card(
            cc, Batch({"objects": to_combined(batch, objects)}, batch.labels, batch.weights, batch.event_index)
        )
        tok.collection["members"] = list(objects)
        tok.collection["member_type_ids"] = {n: c.type_id for n, c in objects.items()}
        save(tok, root / "objects" / "card")
    else:
        for name in ("electrons", "muons"):
            save(_kmeans_card(EVENTS[name], batch, seed=len(name)), root / name / "card")
    for name in ("met", "event"):
        save(_binning_card(EVENTS[name], batch), root / name / "card")


def _params(tmp_path, files, *extra):
    return config.load(
        [ROOT / "params" / "studies" / "events.yaml"],
        [
            f"data.files=[{', '.join(map(str, files))}]",
            f"tokenizer.output_dir={tmp_path}/cards",
            f"export.output_dir={tmp_path}/tokens",
            f"tokenizer.collections=[{', '.join(STUDY)}]",
            "data.label={}",
            "data.weight={}",
            "data.phi_reference_collections=[electrons, muons]",
            f"data.collections=[{', '.join(STUDY)}]",
            "sequence.order=[event, electrons, muons, met]",
            *extra,
        ],
    )


@pytest.fixture()
def study(tmp_path):
    files = _toy_files(tmp_path / "data")
    _cards(tmp_path / "cards", files)
    return tmp_path, files


def _sequences(params, files, layout="grouped", **kw):
    from treasure_lib.io.reader import H5Stream

    ts = TokenizerSet.from_params(params.study, params.data, params.tokenizer, params.export, params.sequence)
    batch = next(iter(H5Stream.from_data(params.data, files=files[:1])))
    return ts, batch, ts.to_sequences(batch)


def test_grouped_layout_never_has_pad_in_a_valid_position_and_marks_missing_levels_empty(study):
    tmp_path, files = study
    ts, batch, (seq, local) = _sequences(_params(tmp_path, files), files)
    assert ts.levels == 4 and seq.tokens.shape[1:] == (1 + 1 + 4 + 1 + 4 + 1 + 1, 4)
    valid = seq.tokens[seq.mask]
    assert (valid != PAD).all(), "a valid position never holds PAD at any level"
    assert (seq.tokens[~seq.mask] == PAD).all() and (seq.type_ids[~seq.mask] == 0).all()
    objects = seq.type_ids[seq.mask]
    vq = np.isin(objects, [EVENTS["electrons"].type_id, EVENTS["muons"].type_id])
    assert (valid[vq][:, 3] == EMPTY).all() and (valid[vq][:, :3] > EMPTY).all(), "3-level objects end in EMPTY"
    assert (valid[objects == EVENTS["event"].type_id] > EMPTY).all(), "the 4 binned event quantities fill all levels"


def test_sequence_order_is_cls_event_objects_sep_and_met(study):
    tmp_path, files = study
    ts, batch, (seq, local) = _sequences(_params(tmp_path, files), files)
    n_e, n_mu = batch["electrons"].mask.sum(1), batch["muons"].mask.sum(1)
    for r in range(20):
        types = seq.type_ids[r, seq.mask[r]].tolist()
        want = [0, 8] + [1] * n_e[r] + [0] + [2] * n_mu[r] + [0, 7]
        assert types == want
        level0 = seq.tokens[r, seq.mask[r], 0]
        assert level0[0] == CLS and level0[1 + 1 + n_e[r]] == SEP and level0[-2] == SEP
    assert seq.mask.sum(1).tolist() == (1 + 1 + n_e + 1 + n_mu + 1 + 1).tolist()


def test_flat_layout_holds_exactly_each_objects_codes(study):
    tmp_path, files = study
    ts, batch, (seq, _) = _sequences(_params(tmp_path, files, "export.layout=flat"), files)
    assert seq.tokens.ndim == 2 and ts.length == 1 + 4 + 4 * 3 + 1 + 4 * 3 + 1 + 3
    valid = seq.tokens[seq.mask]
    assert (valid != PAD).all() and (valid != EMPTY).all(), "no PAD or EMPTY inside a valid object"
    n_e, n_mu = batch["electrons"].mask.sum(1), batch["muons"].mask.sum(1)
    np.testing.assert_array_equal(seq.mask.sum(1), 1 + 4 + 3 * n_e + 1 + 3 * n_mu + 1 + 3)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["export.layout=flat"],
        ["sequence.slots=fixed"],
        ["sequence.slots=fixed", "sequence.sep=false", "sequence.type_ids=false"],
        ["export.layout=flat", "sequence.sep=false"],
    ],
)
def test_split_inverts_assemble_and_decode_returns_physical_features(study, extra):
    tmp_path, files = study
    ts, batch, (seq, local) = _sequences(_params(tmp_path, files, *extra), files)
    back = ts.split(seq)
    for name in ("electrons", "muons", "met", "event"):
        np.testing.assert_array_equal(back[name], local[name], err_msg=f"{name} with {extra}")
    decoded = ts.decode(seq)
    feats, valid = decoded["electrons"]
    np.testing.assert_array_equal(valid, batch["electrons"].mask)
    assert (feats[valid][:, 0] > 0).all(), "electron pt decodes to positive MeV"
    assert set(np.unique(feats[valid][:, 3])) <= {-1.0, 1.0}, "charge decodes to a charge"


def test_fixed_slots_put_every_collection_at_the_same_positions(study):
    tmp_path, files = study
    ts, batch, (seq, _) = _sequences(
        _params(tmp_path, files, "sequence.slots=fixed", "sequence.sep=false", "sequence.type_ids=false"), files
    )
    assert (seq.type_ids == 0).all()
    assert seq.tokens.shape[1] == 1 + 1 + 4 + 4 + 1
    assert seq.mask[:, [0, 1, 10]].all(), "CLS, event and MET sit at fixed positions in every row"
    np.testing.assert_array_equal(seq.mask[:, 2:6], batch["electrons"].mask)


def test_raw_features_sit_at_the_token_positions(study):
    tmp_path, files = study
    ts, batch, (seq, _) = _sequences(_params(tmp_path, files), files)
    raw = ts.features(batch)
    np.testing.assert_array_equal(raw.mask, seq.mask)
    np.testing.assert_array_equal(raw.type_ids, seq.type_ids)
    assert raw.tokens.dtype == np.float32 and (raw.tokens[~raw.mask] == 0).all()
    assert (raw.tokens[:, 0] == 0).all(), "CLS carries no features"
    electrons = raw.type_ids == EVENTS["electrons"].type_id
    assert (np.abs(raw.tokens[electrons][:, :2]).sum(-1) > 0).all(), "every electron position has its scaled features"


def test_the_sequence_order_must_list_each_tokenized_collection_once(study):
    tmp_path, files = study
    with pytest.raises(
        ConfigError, match=r"sequence.order .* must list each tokenized collection once.*missing: \['met'\]"
    ):
        p = _params(tmp_path, files, "sequence.order=[event, electrons, muons]")
        TokenizerSet.from_params(p.study, p.data, p.tokenizer, p.export, p.sequence)


def test_export_writes_split_normalisation_and_a_set_readable_from_metadata(study):
    tmp_path, files = study
    params = _params(tmp_path, files)
    results = export(*export_sections(params), progress=False)
    out = results[0]["outputs"][0]
    assert out.endswith(".tokens.parquet") and "events_a-" in out
    table = pq.read_table(out)
    assert set(table.column("split").to_pylist()) == {"train", "val", "test"}
    assert table.column("sum_of_weights")[0].as_py() == 400.0 and table.column("n_events_generated")[0].as_py() == 400
    numbers = table.column("event_number").to_numpy()
    np.testing.assert_array_equal(
        splits.codes_from_names(table.column("split").to_pylist()),
        splits.assign("dsid:700000", numbers, splits.SplitSpec.from_data(params.data)),
    )
    ts = TokenizerSet.from_metadata(read_metadata(out), out, load_cards=True, base=tmp_path / "tokens")
    seq = Sequences(tokens_array(table), list_column(table, "type_ids"), list_column(table, "mask"))
    assert set(ts.decode(seq)) == {"electrons", "muons", "met", "event"}
    feats = pq.read_table(results[0]["outputs"][1])
    np.testing.assert_array_equal(list_column(feats, "mask"), seq.mask)
    assert dense_features(feats).shape == seq.mask.shape + (ts.feature_width(),)


def test_export_uses_exactly_the_cards_the_params_name(study):
    tmp_path, files = study
    _cards(tmp_path / "cards", files, combined=True)  # a stale combined card beside the per-collection ones
    params = _params(tmp_path, files)
    table = pq.read_table(export(*export_sections(params), progress=False)[0]["outputs"][0])
    cards = __import__("json").loads(table.schema.metadata[b"treasure.cards"])
    assert set(cards) == {"electrons", "muons", "met", "event"}, "object mode never reads the combined card"
    assert tokens_array(table).shape[1] == 13, "objects are in the sequence once"
    combined = _params(tmp_path, files, "tokenizer.mode=combined", f"export.output_dir={tmp_path}/tokens_c")
    table = pq.read_table(export(*export_sections(combined), progress=False)[0]["outputs"][0])
    assert set(__import__("json").loads(table.schema.metadata[b"treasure.cards"])) == {"objects", "met", "event"}


def test_combined_mode_keeps_each_objects_own_type_id(study):
    tmp_path, files = study
    _cards(tmp_path / "cards", files, combined=True)
    ts, batch, (seq, local) = _sequences(_params(tmp_path, files, "tokenizer.mode=combined"), files)
    n_e = batch["electrons"].mask.sum()
    assert (seq.type_ids == EVENTS["electrons"].type_id).sum() == n_e
    assert (seq.type_ids == EVENTS["muons"].type_id).sum() == batch["muons"].mask.sum()
    assert ts.vocabulary.collection_of_type(EVENTS["muons"].type_id) == "muons"
    decoded, valid = ts.decode(seq)["objects"]
    types = decoded[valid][:, list(ts.tokenizers["objects"].features).index("type")]
    assert set(np.unique(types)) <= {1.0, 2.0}


def test_export_redoes_outputs_made_with_other_cards_and_keeps_current_ones(study):
    tmp_path, files = study
    params = _params(tmp_path, files)
    first = export(*export_sections(params), progress=False)
    assert not any(r["skipped"] for r in first)
    assert all(r["skipped"] for r in export(*export_sections(params), progress=False)), (
        "unchanged cards: the export resumes"
    )
    cols = {k: EVENTS[k] for k in STUDY}
    from treasure_lib.io.reader import H5Stream

    save(
        _kmeans_card(EVENTS["muons"], H5Stream(files, cols).read_all(), seed=99), tmp_path / "cards" / "muons" / "card"
    )
    again = export(*export_sections(params), progress=False)
    assert not any(r["skipped"] for r in again), "outputs made with another muon card are redone"


def test_same_named_inputs_from_two_folders_do_not_collide(study, tmp_path):
    _, files = study
    other = _toy_files(tmp_path / "other", n=100)
    params = _params(tmp_path, [files[0], other[0]])
    outs = [r["outputs"][0] for r in export(*export_sections(params), progress=False)]
    assert len(set(outs)) == 2 and pq.read_table(outs[1]).num_rows == 100


def test_a_missing_card_is_a_clear_error(study):
    tmp_path, files = study
    import shutil

    shutil.rmtree(tmp_path / "cards" / "muons")
    with pytest.raises(
        InputFileError, match=r"no tokenizer card for \['muons'\].*run `treasure train-tokenizer` first"
    ):
        export(*export_sections(_params(tmp_path, files)), progress=False)
