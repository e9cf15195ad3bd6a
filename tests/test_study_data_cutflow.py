"""Chapter 01's H -> 4l cut flow: per sample across files, with cross-section weights in fb, and its sentences."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import config
from treasure_lib.higgs4l import STEPS, CutFlow, H4lCuts
from treasure_lib.io.h5_writer import write_batches
from treasure_lib.io.toy import make_batch
from treasure_lib.study import data

from .conftest import ROOT
from .test_higgs4l import _arrays, _event
from .test_sequences import EVENTS, STUDY

# each event fails one step later than the one before (the first passes everything), as in test_higgs4l
LADDER = [
    _event(),
    _event(m_x=150.0, m2=40.0),
    _event(m2=8.0),
    _event(m1=40.0, m2=30.0),
    _event(iso=(0.0, 0.0, 0.4, 0.0)),
    _event(scale=0.6),
    _event(charges=(-1, -1, -1, 1)),
    _event()[:3],
]


def _write(path, events, process, sigma_pb, start):
    cols = {k: EVENTS[k] for k in STUDY}
    batch = make_batch(cols, len(events), seed=start, start=start)
    electrons, muons = _arrays(events)
    for name, built in (("electrons", electrons), ("muons", muons)):
        batch[name].features[:] = built.features
        batch[name].mask[:] = built.mask
    batch["event"].truth["mcEventWeight"][:] = 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    write_batches(
        path,
        [batch],
        cols,
        metadata={
            "process": process,
            "dsid": 900000 + start // 1000,
            "cross_section_pb": sigma_pb,
            "n_events": len(events),
            "sum_of_weights": float(len(events)),
        },
    )
    return path


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """The signal in two files (24 + 8 events, cross sections 2 and 4 fb), ZZ* in one, and a sample with no
    four-lepton event."""
    tmp = tmp_path_factory.mktemp("cutflow")
    files = [
        _write(tmp / "events_ggH_ZZ4l_000.h5", LADDER * 3, "ggH_ZZ4l", 0.002, 1000),
        _write(tmp / "events_ggH_ZZ4l_001.h5", LADDER, "ggH_ZZ4l", 0.004, 2000),
        _write(
            tmp / "events_qqZZ_4l_000.h5",
            [_event(m_x=m, m2=20.0) for m in (118.0, 127.0, 140.0)] * 4,
            "qqZZ_4l",
            0.008,
            3000,
        ),
        _write(tmp / "events_Zjets_000.h5", [_event()[:2]] * 50, "Zjets", 800.0, 4000),
    ]
    params = config.load(
        [ROOT / "params" / "studies" / "events.yaml"],
        [
            f"data.files=[{', '.join(map(str, files))}]",
            f"data.collections=[{', '.join(STUDY)}]",
            "data.phi_reference_collections=[electrons, muons]",
        ],
    )
    return data.cut_flow(params.data, params.selection)


def test_every_step_counts_the_hand_built_events_of_all_files_of_a_sample(flow):
    sig = flow["flows"]["ggH_ZZ4l"]
    assert sig.events == dict(zip(STEPS, [32, 28, 24, 20, 16, 12, 8, 4]))
    assert flow["generated"] == {"ggH_ZZ4l": 32, "qqZZ_4l": 12, "Zjets": 50}
    assert flow["unit"] == "fb"


def test_a_sample_in_two_files_counts_its_cross_section_once(flow):
    # file shares of the sample's weights: 24 / 32 at 2 fb and 8 / 32 at 4 fb -> 2.5 fb in all
    sig = flow["flows"]["ggH_ZZ4l"]
    assert sig.weighted["all"] == pytest.approx(0.75 * 2.0 + 0.25 * 4.0)
    assert sig.weighted["m4l_window"] == pytest.approx(4 * 2.5 / 32)  # 4 of 32 events of a 2.5 fb sample
    assert flow["flows"]["Zjets"].weighted["all"] == pytest.approx(800e3)


def test_m4l_before_the_window_keeps_the_events_up_to_m34_with_their_weights(flow):
    m, w = flow["m4l"]["ggH_ZZ4l"]
    assert len(m) == 8 and sorted(np.round(m, 1).tolist()) == [125.0] * 4 + [150.0] * 4
    assert w.sum() == pytest.approx(8 * 2.5 / 32)
    zz, _ = flow["m4l"]["qqZZ_4l"]
    assert sorted(np.round(zz, 1).tolist()) == [118.0] * 4 + [127.0] * 4 + [140.0] * 4
    stack = data.m4l_stack(flow)
    assert list(stack) == ["qq -> ZZ* -> 4l", "gg -> H -> ZZ* -> 4l"]  # ZZ* at the bottom, the signal on top


def test_the_table_has_a_row_per_step_with_units_and_the_signal_first(flow):
    rows = data.cut_flow_rows(flow["flows"], flow["cuts"], flow["unit"])
    assert [r["Step"] for r in rows] == [s.replace("_", " ") for s in STEPS]
    columns = list(rows[0])
    assert columns[2:] == ["gg -> H -> ZZ* -> 4l: events · fb", "qq -> ZZ* -> 4l: events · fb", "Z + jets: events · fb"]
    assert rows[-1]["gg -> H -> ZZ* -> 4l: events · fb"] == "4 · 0.312"
    assert "115 < m4l < 130 GeV" in rows[-1]["Requirement"] and "20 / 15 / 10 GeV" in rows[3]["Requirement"]
    assert "pT > 7 GeV" in rows[1]["Requirement"] and "LHLoose" in rows[1]["Requirement"]


def test_sentences_quote_the_signal_region_s_over_b_and_bound_empty_samples(flow):
    text = data.cut_flow_sentence(flow["flows"], flow["generated"], flow["cuts"])
    # ZZ*: 8 of 12 events in the window (118, 127) at 8 fb -> 5.33 fb; signal 0.3125 fb
    assert "keeps 4 gg -> H -> ZZ* -> 4l events (12.5% of those generated; 0.312 fb)" in text
    assert "8 qq -> ZZ* -> 4l events (66.7%; 5.33 fb)" in text and "S/B = 0.0586" in text
    assert "Z + jets < 48000 fb" in text  # 3 / 50 of 800 pb
    peak = data.peak_sentence(flow["m4l"], flow["cuts"])
    assert "adds 0.356 fb/GeV under the Higgs peak (8 events)" in peak and "(4 events)" in peak


def test_a_study_without_the_signal_or_zz_says_so():
    flows = {"Zjets": CutFlow({s: 1 for s in STEPS}, {s: 1.0 for s in STEPS}, "fb")}
    assert "needs both ggH_ZZ4l and qqZZ_4l" in data.cut_flow_sentence(flows, {"Zjets": 1}, H4lCuts())
    assert data.peak_sentence({}, H4lCuts()) == ""


def test_chapter_01_sentences_from_numbers():
    rows = [{"rows": 80, "train": 60, "val": 10, "test": 10}, {"rows": 20, "train": 12, "val": 4, "test": 4}]
    text = data.split_sentence("events", "events", 3, rows, {"train": 0.7, "val": 0.15, "test": 0.15})
    assert "**3 files** with **100 rows** (events) from 2 samples" in text and "72 / 14 / 14 rows" in text
    assert "(72.0 / 14.0 / 14.0 %, configured 70% / 15% / 15%)" in text
    four = data.four_lepton_sentence({"ggH_ZZ4l": 0.52, "qqZZ_4l": 0.4, "ttbar": 0.001, "WZ_3lnu": 0.02})
    assert "(52% of events)" in four and "(40%)" in four and "at most 2.0%, WZ -> 3l nu" in four
    sd0 = data.displaced_tracks_sentence({"b": 6.04, "c": 2.5, "light": 0.8})
    assert "is 6.04 for b-jets, 2.50 for c-jets and 0.800 for light jets" in sd0


def test_the_stacked_m4l_figure_puts_the_signal_on_top_of_zz(tmp_path):
    from treasure_lib.plots import samples

    bins = np.arange(100.0, 151.0, 1.0)
    fig = samples.stacked(
        {"ZZ*": (np.array([120.5, 125.5]), np.array([1.0, 2.0])), "H": (np.array([125.5]), np.array([4.0]))},
        "m4l [GeV]",
        bins=bins,
        lines=(115, 130),
        save_to=tmp_path,
        name="m4l",
    )
    ax = fig.axes[0]
    assert (tmp_path / "m4l.png").is_file() and ax.get_ylabel() == "fb / 1 GeV"
    stairs = [a for a in ax.get_children() if a.__class__.__name__ == "StepPatch"]
    assert len(stairs) == 2  # ZZ* at the bottom, H stacked on it: 2 + 4 fb at 125 GeV
    assert stairs[1].get_data().values[25] == pytest.approx(6.0)
    assert stairs[0].get_data().values[20] == pytest.approx(1.0)
