"""The held-out samples beyond the standard model (params/processes.yaml, after the SM blocks) show the physics
they are there for, on generated events (slow: Pythia, about 10 s on 2 cores):

- a hidden-valley dark shower whose dark pions (c tau = 20 mm) decay to b bbar: tracks displaced far beyond what
  b-hadron decays give;
- a 2 TeV Z' -> t tbar: R = 0.4 jets of about 1 TeV that hold a whole top decay (jet mass near m_top);
- a 300 GeV scalar -> ZZ -> 4l: a four-lepton peak at 300 GeV, away from the Higgs.
None of them is read by a default study: they never enter tokenizer training or pretraining."""

from __future__ import annotations

import fnmatch

import h5py
import numpy as np
import pytest

from treasure_lib import config
from treasure_lib.generate import generate
from treasure_lib.io.reader import H5Stream
from treasure_lib.kinematics import invariant_mass

from .conftest import ROOT, generate_sections
from .test_generate_physics import _good_leptons, _peak

BSM = ("HV_darkpion_bb", "Zprime_tt", "H2_ZZ4l_300")
SAMPLES = "generate.samples={HV_darkpion_bb: 200, Zprime_tt: 200, H2_ZZ4l_300: 300, ttbar: 500, Zprime_qq: 200}"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("bsm")
    params = config.load(
        [ROOT / "params" / "default.yaml"],
        [f"generate.output_dir={out}", SAMPLES, "study.seed=11", "anomaly.signals={}"],
    )
    generate(*generate_sections(params), progress=False)
    return out


def _event_tracks_d0(sample, process) -> np.ndarray:
    """|d0| [mm] of every track of the per-event files (no flavour-tagging track selection there)."""
    with h5py.File(sample / f"events_{process}_000.h5") as f:
        tracks = f["objects/tracks"]
        return np.abs(tracks["d0"][:][tracks["mask"][:]])


def _jets(sample, process):
    with h5py.File(sample / f"jets_{process}_000.h5") as f:
        return f["jets"][:], f["tracks"][:]


@pytest.mark.slow
def test_dark_pion_tracks_are_displaced_far_beyond_b_hadron_decays(sample):
    hv, tt = _event_tracks_d0(sample, "HV_darkpion_bb"), _event_tracks_d0(sample, "ttbar")
    far_hv, far_tt = np.mean(hv > 5.0), np.mean(tt > 5.0)
    assert far_hv > 0.03 and far_hv > 10 * far_tt, f"|d0| > 5 mm: {far_hv:.3f} of dark-shower tracks vs {far_tt:.4f}"
    assert np.percentile(hv, 99) > 5 * np.percentile(tt, 99)


@pytest.mark.slow
def test_dark_pion_b_jets_keep_larger_impact_parameters_within_the_tagging_selection(sample):
    """The jet files keep GN2's track selection (|d0| < 3.5 mm): the most displaced tracks are lost there, as in a
    flavour-tagging dump, yet the dark-pion b-jets still carry about twice the largest |d0| of ttbar b-jets."""
    largest = {}
    for process in ("HV_darkpion_bb", "ttbar"):
        jets, tracks = _jets(sample, process)
        d0 = np.where(tracks["valid"], np.abs(tracks["d0"]), 0.0).max(1)
        largest[process] = np.median(d0[jets["HadronConeExclTruthLabelID"] == 5])
        assert np.abs(tracks["d0"][tracks["valid"]]).max() < 3.5
    assert largest["HV_darkpion_bb"] > 2 * largest["ttbar"], largest


@pytest.mark.slow
def test_dark_pion_b_jet_tracks_have_impact_parameter_significances_far_above_b_hadron_decays(sample):
    """The transverse impact-parameter significance |d0| / sigma(d0) of the tracks of b-labelled jets, what a
    b-tagger reads: a dark pion flies about 20 mm before its b quarks hadronise, so its jets' tracks sit many
    sigma further from the beam line than those of b-hadrons from top decays (mm-scale decay lengths)."""
    significance = {}
    for process in ("HV_darkpion_bb", "ttbar"):
        jets, tracks = _jets(sample, process)
        b = jets["HadronConeExclTruthLabelID"] == 5
        valid = tracks["valid"][b]
        significance[process] = (np.abs(tracks["d0"]) / tracks["d0Uncertainty"])[b][valid]
    hv, tt = significance["HV_darkpion_bb"], significance["ttbar"]
    assert len(hv) > 500 and len(tt) > 500
    assert np.median(hv) > 3 * np.median(tt), (np.median(hv), np.median(tt))
    assert np.mean(hv > 100) > 5 * np.mean(tt > 100), (np.mean(hv > 100), np.mean(tt > 100))


@pytest.mark.slow
def test_boosted_top_jets_hold_the_whole_top_decay(sample):
    share = {}
    for process in ("Zprime_tt", "Zprime_qq"):
        jets, _ = _jets(sample, process)
        high = jets["pt"] > 500e3
        mass = jets["mass"][high] / 1e3
        assert high.sum() > 100, f"{process}: {high.sum()} jets above 500 GeV"
        share[process] = np.mean((mass > 130) & (mass < 210))
    assert share["Zprime_tt"] > 0.15 and share["Zprime_tt"] > 5 * share["Zprime_qq"], share


@pytest.mark.slow
def test_heavy_scalar_four_leptons_peak_at_300_gev(sample, sets):
    batch = H5Stream([sample / "events_H2_ZZ4l_300_000.h5"], sets["events"]).read_all()
    pt, eta, phi, mass, _, _, good = _good_leptons(batch)
    four = good.sum(1) >= 4
    order = np.argsort(-np.where(good, pt, -1.0), axis=1)[:, :4]
    take = lambda a: np.take_along_axis(a, order, axis=1)[four]  # noqa: E731
    m4l = invariant_mass(take(pt), take(eta), take(phi), take(mass)) / 1e3
    assert len(m4l) > 80
    assert abs(_peak(m4l, 250, 350, 5.0) - 300.0) < 7.5 and abs(np.median(m4l) - 300.0) < 10.0


def test_no_default_study_reads_the_held_out_samples():
    """The BSM files are never among a default study's inputs, so they never enter tokenizer training or
    pretraining."""
    processes = config.read_yaml(ROOT / "params" / "processes.yaml")
    assert set(BSM) <= set(processes)
    for params_file in (ROOT / "params" / "default.yaml", ROOT / "params" / "studies" / "events.yaml"):
        params = config.load([params_file])
        assert not set(BSM) & set(params.generate.samples)
        for layout in ("events", "jets"):
            names = [f"{params.generate.output_dir}/{layout}_{p}_000.h5" for p in BSM]
            assert not [n for n in names for pattern in params.data.files if fnmatch.fnmatch(n, pattern)]
