"""Physics sanity of generated samples (slow: generates ~3k events with Pythia on all cores)."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

from treasure_lib import config
from treasure_lib.generate import generate
from treasure_lib.io.inspect import inspect_file
from treasure_lib.io.reader import H5Stream
from treasure_lib.kinematics import ELECTRON_MASS_MEV, MUON_MASS_MEV, invariant_mass, z_candidate_mass
from treasure_lib.metrics import discriminant_b

from .conftest import ROOT, generate_sections

pytestmark = pytest.mark.slow
DEFAULT = ROOT / "params" / "default.yaml"
SAMPLES = "generate.samples={ttbar: 1500, qqZZ_4l: 500, ggH_ZZ4l: 500, Wjets: 400}"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    params = config.load([DEFAULT], [f"generate.output_dir={out}", SAMPLES, "study.seed=11"])
    results = generate(*generate_sections(params), progress=False)
    return out, results


def _events(sample, process, sets):
    out, _ = sample
    return H5Stream([out / f"events_{process}_000.h5"], sets["events"]).read_all()


def _good_leptons(batch):
    """Electrons (LHMedium) and muons (Medium or better), isolated: arrays [n, 8] over both."""
    el, mu = batch["electrons"], batch["muons"]
    good = np.concatenate(
        [
            el.mask & (el.feature("LHMedium") > 0) & (el.feature("trk_iso03") < 0.15),
            mu.mask & (mu.feature("quality") <= 1) & (mu.feature("trk_iso03") < 0.15),
        ],
        axis=1,
    )
    cat = lambda f: np.concatenate([el.feature(f), mu.feature(f)], axis=1)  # noqa: E731
    mass = np.concatenate([np.full(el.mask.shape, ELECTRON_MASS_MEV), np.full(mu.mask.shape, MUON_MASS_MEV)], axis=1)
    flavour = np.concatenate([np.zeros(el.mask.shape), np.ones(mu.mask.shape)], axis=1)
    return cat("pt"), cat("eta"), cat("phi"), mass, cat("charge"), flavour, good


def _peak(values, lo, hi, width):
    h, edges = np.histogram(values, bins=np.arange(lo, hi + width, width))
    return edges[h.argmax()] + width / 2


def test_dilepton_mass_in_zz_peaks_at_the_z(sample, sets):
    mz = z_candidate_mass(*_good_leptons(_events(sample, "qqZZ_4l", sets))) / 1e3
    mz = mz[np.isfinite(mz)]
    assert len(mz) > 300
    assert abs(_peak(mz, 70, 110, 1.0) - 91.2) < 1.5


def test_four_lepton_mass_in_the_signal_peaks_near_125_gev(sample, sets):
    pt, eta, phi, mass, charge, flavour, good = _good_leptons(_events(sample, "ggH_ZZ4l", sets))
    four = good.sum(1) >= 4
    order = np.argsort(-np.where(good, pt, -1.0), axis=1)[:, :4]
    take = lambda a: np.take_along_axis(a, order, axis=1)[four]  # noqa: E731
    m4l = invariant_mass(take(pt), take(eta), take(phi), take(mass)) / 1e3
    assert len(m4l) > 50
    assert abs(_peak(m4l, 100, 150, 2.5) - 125.0) < 2.5
    assert abs(np.median(m4l) - 125.0) < 3.0


def test_met_is_larger_with_neutrinos(sample, sets):
    met = {p: _events(sample, p, sets).scalars("met")[:, 0].mean() / 1e3 for p in ("qqZZ_4l", "Wjets", "ttbar")}
    assert met["Wjets"] > met["qqZZ_4l"] + 10 and met["ttbar"] > met["qqZZ_4l"] + 20


def _jets(sample):
    out, _ = sample
    with h5py.File(out / "jets_ttbar_000.h5") as f:
        return f["jets"][:], f["tracks"][:]


def test_ttbar_has_about_two_b_jets_per_event_in_acceptance(sample):
    jets, _ = _jets(sample)
    n_events = 1500
    per_event = (jets["HadronConeExclTruthLabelID"] == 5).sum() / n_events
    assert 1.4 < per_event < 2.1
    assert (np.abs(jets["eta"]) < 2.5).all() and jets["pt"].min() > 20e3


def test_b_jets_carry_displaced_tracks_c_in_between(sample):
    jets, tracks = _jets(sample)
    mean_sig = {}
    for flavour in (5, 4, 0):
        sel = jets["HadronConeExclTruthLabelID"] == flavour
        t = tracks[sel]
        mean_sig[flavour] = t["lifetimeSignedD0Significance"][t["valid"]].mean()
    assert mean_sig[5] > 3.0 > mean_sig[4] > mean_sig[0] + 0.3 > 0.0
    lxy = jets["HadronConeExclTruthLabelLxy"][jets["HadronConeExclTruthLabelID"] == 5]
    assert 1.0 < np.median(lxy) < 8.0  # mm: B hadrons fly a few mm at these momenta


def test_emulated_b_tagging_meets_rejection_targets_on_ttbar(sample):
    jets, _ = _jets(sample)
    label = jets["HadronConeExclTruthLabelID"]
    for tagger, lo, hi in (("GN2v01", 100, 600), ("DL1dv01", 70, 400)):
        d = discriminant_b(np.stack([jets[f"{tagger}_{p}"] for p in ("pb", "pc", "pu")], 1), f_c=0.2)
        cut = np.quantile(d[label == 5], 0.23)
        assert lo < 1 / np.mean(d[label == 0] > cut) < hi
        assert 4 < 1 / np.mean(d[label == 4] > cut) < 30


def test_units_are_mev_and_mm(sample, sets):
    jets, tracks = _jets(sample)
    assert 30e3 < np.median(jets["pt"]) < 120e3  # jets of tens of GeV, in MeV
    d0 = np.abs(tracks["d0"][tracks["valid"]])
    assert 0.005 < np.median(d0) < 0.2  # tens of microns, in mm
    ev = _events(sample, "ttbar", sets)
    assert 20 < ev.scalars("event")[:, 3].std() < 50  # beam spot sigma_z ~ 35 mm
    assert 20 < ev.scalars("event")[:, 0].mean() < 80  # Run-3-like mu


def test_files_read_back_through_inspect_ftag_and_our_reader(sample, sets):
    out, results = sample
    assert {r["process"] for r in results} == {"ttbar", "qqZZ_4l", "ggH_ZZ4l", "Wjets"}
    report = inspect_file(out / "events_ttbar_000.h5", sets)
    assert all(r["ok"] for r in report["serves"]["events"].values())
    assert report["metadata"]["process"] == "ttbar" and report["metadata"]["cross_section_pb"] > 100
    assert report["metadata"]["n_events"] == 1500
    ftag_hdf5 = pytest.importorskip("ftag.hdf5")
    data = ftag_hdf5.H5Reader(out / "jets_ttbar_000.h5", batch_size=1000, shuffle=False).load(
        {"jets": ["pt", "HadronConeExclTruthLabelID"], "tracks": ["d0", "valid"]}
    )
    ours = H5Stream([out / "jets_ttbar_000.h5"], sets["jets"]).read_all()
    np.testing.assert_array_equal(data["jets"]["pt"], ours.scalars("jets")[:, 0])
    np.testing.assert_array_equal(data["tracks"]["valid"], ours["tracks"].mask)


def test_same_seed_gives_byte_identical_files(tmp_path):
    digests = []
    for run in ("a", "b"):
        params = config.load(
            [DEFAULT],
            [f"generate.output_dir={tmp_path / run}", "generate.samples={Zjets: 120}", "generate.batch_size=50"],
        )
        generate(*generate_sections(params), progress=False)
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / run).glob("*.h5"))}
        )
    assert digests[0] == digests[1] and len(digests[0]) == 2
    params = config.load(
        [DEFAULT],
        [
            f"generate.output_dir={tmp_path / 'c'}",
            "generate.samples={Zjets: 120}",
            "generate.batch_size=50",
            "study.seed=1",
        ],
    )
    generate(*generate_sections(params), progress=False)
    other = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "c").glob("*.h5"))}
    assert other != digests[0]


def test_missing_samples_are_generated_and_existing_ones_never_rewritten(tmp_path, capsys):
    """make book and chapter 01 generate what is missing, keep what exists (it may be a bigger sample made on
    purpose) and say which files were made with other settings."""
    from treasure_lib.generate.run import missing_jobs, stale_files
    from treasure_lib.study.stages import ensure_samples

    def params(**samples):
        return config.load(
            [DEFAULT],
            [
                f"generate.output_dir={tmp_path}",
                "generate.layouts=[events]",
                "generate.workers=1",
                f"data.files=[{tmp_path}/events_*.h5]",
                "data.collection_set=events",
                "generate.samples={" + ", ".join(f"{k}: {v}" for k, v in samples.items()) + "}",
            ],
        )

    first = params(Zjets=40, Wjets=40)
    assert len(ensure_samples(*generate_sections(first), log=lambda _: None)) == 2
    assert missing_jobs(*generate_sections(first)) == [] and stale_files(*generate_sections(first)) == []
    kept = (tmp_path / "events_Wjets_000.h5").stat().st_mtime_ns
    bigger = params(Zjets=40, Wjets=60)
    assert stale_files(*generate_sections(bigger)) == ["events_Wjets_000.h5"], "made with other settings: reported"
    notes = []
    ensure_samples(*generate_sections(bigger), log=notes.append)
    assert (tmp_path / "events_Wjets_000.h5").stat().st_mtime_ns == kept, "an existing file is never rewritten"
    assert any("events_Wjets_000.h5" in n and "treasure generate" in n for n in notes)
    (tmp_path / "events_Zjets_000.h5").unlink()
    assert [j.process for j in missing_jobs(*generate_sections(bigger))] == ["Zjets"]
    ensure_samples(*generate_sections(bigger), log=lambda _: None)
    assert (
        stale_files(*generate_sections(bigger)) == ["events_Wjets_000.h5"]
        and missing_jobs(*generate_sections(bigger)) == []
    )
    with h5py.File(tmp_path / "events_Wjets_000.h5") as f:
        assert f["metadata"].attrs["n_events"] == 40, "still the file that was there"
