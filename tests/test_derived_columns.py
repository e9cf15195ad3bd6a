"""Analysis columns beside the tokens (export.derived) and tasks that select rows on them (require)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from treasure_lib import higgs4l
from treasure_lib.config import section_from
from treasure_lib.datamodules import TokenFiles, TokenStream, read_split
from treasure_lib.datamodules.tasks import Task
from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.io.batch import Batch
from treasure_lib.io.h5_writer import write_batches
from treasure_lib.io.reader import H5Stream
from treasure_lib.io.toy import make_batch
from treasure_lib.tokenizers.export import export

from .conftest import export_sections
from .test_higgs4l import _arrays, _event
from .test_sequences import EVENTS, STUDY, _cards, _params

H4L_COLUMNS = set(higgs4l.VARIABLES) | {"pass_h4l_preselection", "pass_h4l_sr"}


def _file_with_quadruplets(folder, name, n, dsid, sigma_pb, masses_gev=None):
    """Random toy rows whose first rows hold hand-built H -> ZZ* -> 4l candidates: by default in the window, at
    150 GeV, and with three leptons (so each pass flag is exercised); else one candidate of each given m4l [GeV]."""
    cols = {k: EVENTS[k] for k in STUDY}
    batch = make_batch(cols, n, seed=dsid % 97, start=10_000 * (dsid % 10))
    if masses_gev is None:
        hand = [_event(), _event(m_x=150.0, m2=40.0), _event()[:3]] * 20
    else:
        hand = [_event(m_x=float(m), m2=20.0) for m in masses_gev]  # m1 + m2 below every m4l
    electrons, muons = _arrays(hand)
    for coll, built in (("electrons", electrons), ("muons", muons)):
        oa = batch[coll]
        oa.features[: len(hand)] = built.features
        oa.mask[: len(hand)] = built.mask
        rest, q = slice(len(hand), None), oa.names.index("charge")  # random rows: charge +-1 by the sign of eta
        oa.features[rest, :, q] = np.where(oa.mask[rest], np.where(oa.features[rest, :, 1] > 0, 1, -1), 0)
    path = folder / f"{name}.h5"
    folder.mkdir(parents=True, exist_ok=True)
    write_batches(
        path,
        [batch],
        cols,
        metadata={
            "dsid": dsid,
            "process": name,
            "n_events": n,
            "sum_of_weights": float(n),
            "cross_section_pb": sigma_pb,
        },
    )
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("derived")
    files = [
        _file_with_quadruplets(tmp / "data", "events_sig", 400, 900001, 0.003),
        _file_with_quadruplets(tmp / "data", "events_zz", 400, 900002, 0.008),
    ]
    _cards(tmp / "cards", files)
    params = _params(
        tmp,
        files,
        "export.derived=[h4l]",
        "export.decoded=true",
        "export.features=true",
        "data.split={train: 0.5, val: 0.2, test: 0.3, salt: 0}",
    )
    results = export(*export_sections(params), progress=False)
    return tmp, files, params, results


def _outputs(results, kind):
    return [o for r in results for o in r["outputs"] if o.endswith(f".{kind}.parquet")]


def test_token_features_and_decoded_files_carry_the_h4l_columns_of_the_same_rows(study):
    tmp, files, params, results = study
    for path in files:
        batch = H5Stream.from_data(params.data, files=[path]).read_all()
        want = higgs4l.derived_columns(batch, params["selection"]["h4l"])
        for kind in ("tokens", "features", "decoded"):
            out = next(o for o in _outputs(results, kind) if path.stem in o)
            table = pq.read_table(out)
            assert H4L_COLUMNS <= set(table.column_names), kind
            assert table.schema.field("pass_h4l_sr").type == "bool" and table.schema.field("m4l").type == "float"
            np.testing.assert_array_equal(np.asarray(table.column("event_index")), batch.event_index)
            for name, values in want.items():
                np.testing.assert_array_equal(table.column(name).to_numpy(zero_copy_only=False), values, err_msg=name)
        # the hand-built rows: a 125 GeV candidate passes everything, 150 GeV only the preselection, 3 leptons nothing
        assert want["pass_h4l_sr"][:3].tolist() == [True, False, False]
        assert want["pass_h4l_preselection"][:3].tolist() == [True, True, False]
        assert want["m4l"][0] == pytest.approx(125.0, rel=1e-3) and np.isnan(want["m4l"][2])


def test_derived_columns_are_never_model_inputs(study):
    _, _, params, results = study
    task = Task.from_params(
        section_from(
            "classify",
            {
                "task": "t",
                "tasks": {"t": {"classes": {"ZZ": ["events_zz"], "H": ["events_sig"]}, "require": ["pass_h4l_sr"]}},
            },
        )
    )
    batch = next(TokenStream(TokenFiles(_outputs(results, "tokens")), task, "train", 8, shuffle=False).arrays())
    assert set(batch) == {"tokens", "type_ids", "mask", "label", "weight"}


def _task(require, weights="none"):
    return Task.from_params(
        section_from(
            "classify",
            {
                "task": "sr",
                "tasks": {
                    "sr": {
                        "classes": {"ZZ": ["events_zz"], "H": ["events_sig"]},
                        "weights": weights,
                        "require": require,
                    }
                },
            },
        )
    )


def test_a_task_requiring_the_signal_region_keeps_exactly_its_rows(study):
    _, _, _, results = study
    files = TokenFiles(_outputs(results, "tokens"))
    everything = read_split(files, _task([]), "test", extra=["pass_h4l_sr", "pass_h4l_preselection", "m4l"])
    sr = read_split(files, _task(["pass_h4l_sr"]), "test", extra=["m4l", "event_number", "process"])
    assert len(sr["label"]) == int(everything["pass_h4l_sr"].sum()) > 0
    assert ((sr["m4l"] > 115.0) & (sr["m4l"] < 130.0)).all()
    both = read_split(files, _task(["pass_h4l_preselection", "pass_h4l_sr"]), "test")
    assert len(both["label"]) == len(sr["label"])  # the signal region lies inside the preselection
    pre = read_split(files, _task(["pass_h4l_preselection"]), "test")
    assert len(pre["label"]) == int(everything["pass_h4l_preselection"].sum()) > len(sr["label"])
    stream = TokenStream(files, _task(["pass_h4l_sr"]), "test", 1 << 20, shuffle=False)
    assert stream.summary["rows"] == len(sr["label"]) and sum(stream.summary["class_counts"]) == len(sr["label"])
    assert len(stream.identities()) == len(sr["label"])
    # cross-section weights keep their per-sample normalisation (sum over all generated rows, not the selected ones)
    weighted = read_split(files, _task(["pass_h4l_sr"], "cross_section"), "test", extra=["process"])
    sig = weighted["process"] == "events_sig"
    np.testing.assert_allclose(weighted["weight"][sig], 0.003 / 400.0, rtol=1e-6)


def test_a_missing_required_column_names_the_file_and_the_task(study):
    tmp, files, _, _ = study
    plain = _params(tmp / "plain", files, f"tokenizer.output_dir={tmp}/cards", "export.derived=[]")
    outputs = [r["outputs"][0] for r in export(*export_sections(plain), progress=False)]
    with pytest.raises(InputFileError, match=r"events_sig.*task 'sr' requires column 'pass_h4l_sr'.*export.derived"):
        read_split(TokenFiles(outputs), _task(["pass_h4l_sr"]), "train")
    with pytest.raises(InputFileError, match=r"task 'sr' requires column 'm4l' to be boolean"):
        read_split(TokenFiles(_outputs(study[3], "tokens")), _task(["m4l"]), "train")


def test_bad_derived_and_require_settings_are_explained(study):
    tmp, files, _, _ = study
    with pytest.raises(ConfigError, match=r"export.derived names \['z4l'\]; known derived column sets: h4l"):
        export(
            *export_sections(_params(tmp / "bad", files, f"tokenizer.output_dir={tmp}/cards", "export.derived=[z4l]")),
            progress=False,
        )
    with pytest.raises(ConfigError, match=r"classify.tasks.sr.require: expected a list of boolean column names"):
        _task("pass_h4l_sr")
    with pytest.raises(ConfigError, match=r"export.derived 'h4l' writes column 'm4l', which export.columns"):
        export(
            *export_sections(
                _params(
                    tmp / "clash",
                    files,
                    f"tokenizer.output_dir={tmp}/cards",
                    "export.derived=[h4l]",
                    "export.columns={m4l: met.met}",
                )
            ),
            progress=False,
        )


def test_outputs_made_with_other_derived_columns_are_redone(study):
    tmp, files, params, _ = study
    cards = f"tokenizer.output_dir={tmp}/cards"
    first = export(*export_sections(_params(tmp / "redo", files, cards, "export.derived=[]")), progress=False)
    reused = export(*export_sections(_params(tmp / "redo", files, cards, "export.derived=[]")), progress=False)
    redone = export(*export_sections(_params(tmp / "redo", files, cards, "export.derived=[h4l]")), progress=False)
    assert not any(r["skipped"] for r in first) and all(r["skipped"] for r in reused)
    assert not any(r["skipped"] for r in redone)
    assert "pass_h4l_sr" in pq.read_schema(redone[0]["outputs"][0]).names
    window = export(
        *export_sections(
            _params(
                tmp / "redo",
                files,
                f"tokenizer.output_dir={tmp}/cards",
                "export.derived=[h4l]",
                "selection.h4l.m4l_window_gev=[110, 135]",
            )
        ),
        progress=False,
    )
    assert not any(r["skipped"] for r in window)  # another selection: the pass flags change, so the files are redone


def test_h4l_columns_need_both_lepton_collections():
    batch = make_batch({"electrons": EVENTS["electrons"]}, 3)
    with pytest.raises(InputFileError, match=r"needs collection\(s\) \['muons'\]"):
        higgs4l.derived_columns(Batch(batch.collections, batch.labels, batch.weights, batch.event_index, "x.h5"))
