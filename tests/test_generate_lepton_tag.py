"""The tracks' soft-lepton tag (`leptonID`) is a reconstruction: turn-on, plateau, acceptance and fakes."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib import config
from treasure_lib.generate.detector import DetectorConfig, detector_config
from treasure_lib.generate.tracks import LEPTON_TAG, lepton_tags

from .conftest import ROOT

DEFAULT = ROOT / "params" / "default.yaml"
HADRON, ELECTRON, MUON = 0, LEPTON_TAG["electron"], LEPTON_TAG["muon"]


def _within_binomial(k: int, n: int, p: float, n_sigma: float = 4.0) -> bool:
    return abs(k - n * p) <= n_sigma * np.sqrt(n * p * (1 - p)) + 1


def _tags(kind: int, pt_mev: float, cfg: DetectorConfig, n: int = 200_000, eta=None, seed: int = 0):
    rng = np.random.default_rng(seed)
    eta = rng.uniform(-2.4, 2.4, n) if eta is None else np.full(n, eta)
    return lepton_tags(rng, np.full(n, pt_mev), eta, np.full(n, kind), cfg)


def test_lepton_tag_efficiencies_and_fake_rates_come_out_as_configured():
    cfg = DetectorConfig()
    n = 200_000
    muons, electrons, hadrons = (_tags(kind, 20e3, cfg, n) for kind in (MUON, ELECTRON, HADRON))
    assert _within_binomial((muons == MUON).sum(), n, cfg.track_muon_tag_efficiency)
    assert _within_binomial((electrons == ELECTRON).sum(), n, cfg.track_electron_tag_efficiency)
    assert (muons == ELECTRON).sum() == 0 and (electrons == MUON).sum() == 0, "a true lepton is never the other one"
    assert _within_binomial((hadrons == MUON).sum(), n, cfg.track_muon_tag_fake_rate)
    assert _within_binomial((hadrons == ELECTRON).sum(), n, cfg.track_electron_tag_fake_rate)
    assert 0.002 <= cfg.track_muon_tag_fake_rate <= 0.005 and 0.005 <= cfg.track_electron_tag_fake_rate <= 0.01


def test_nothing_is_tagged_below_threshold_or_outside_acceptance():
    cfg = DetectorConfig()
    for kind in (MUON, ELECTRON, HADRON):
        assert (_tags(kind, 2.9e3, cfg, 50_000) == 0).all(), "below the 3 GeV thresholds"
    assert (_tags(MUON, 20e3, cfg, 50_000, eta=2.55) != MUON).all(), "beyond the muon tag's |eta| < 2.5"
    assert (_tags(ELECTRON, 20e3, cfg, 50_000, eta=-2.49) != ELECTRON).all(), "beyond the electron tag's 2.47"


def test_lepton_tag_turns_on_above_threshold_and_follows_overrides():
    cfg = DetectorConfig()
    n = 200_000
    at_width = cfg.track_muon_tag_pt_min_mev + cfg.track_muon_tag_turn_on_mev
    expected = cfg.track_muon_tag_efficiency * (1 - np.exp(-1.0))
    assert _within_binomial((_tags(MUON, at_width, cfg, n) == MUON).sum(), n, expected)
    loose = detector_config({"track_muon_tag_efficiency": 0.5, "track_muon_tag_pt_min_mev": 2000.0})
    assert _within_binomial((_tags(MUON, 20e3, loose, n) == MUON).sum(), n, 0.5)
    assert (_tags(MUON, 2.5e3, loose, 1000) == MUON).any(), "the threshold follows its parameter"


def test_same_seed_gives_the_same_tags():
    cfg = DetectorConfig()
    a, b = (_tags(HADRON, 10e3, cfg, 10_000, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- on generated ttbar


@pytest.fixture(scope="module")
def ttbar():
    """~800 ttbar events through the whole emulation, kept in memory with their truth record."""
    from treasure_lib.generate.run import charge_lookup, load_processes, make_pythia
    from treasure_lib.generate.simulate import simulate_batch
    from treasure_lib.generate.truth import ParticleTable, truth_from_events
    from treasure_lib.object_collections import load_sets

    params = config.load([DEFAULT])
    processes = load_processes(ROOT / "params" / "processes.yaml")
    settings = params["generate"]["pythia_common"] + processes["ttbar"]["settings"]
    pythia = make_pythia(settings, 12345)
    table = ParticleTable(charge_lookup(pythia))
    jets_set = load_sets(ROOT / "params" / "objects.yaml")["jets"]
    cfg = DetectorConfig()
    rng = np.random.default_rng(7)
    parts = []
    for _ in range(4):
        truth = truth_from_events(pythia.nextBatch(200), table)
        out = simulate_batch(
            rng, truth, np.ones(truth.n_events, np.float32), np.arange(truth.n_events), cfg, None, jets_set
        )
        tracks = out["tracks"]
        true_pid = np.where(tracks.truth_row >= 0, np.abs(truth.pid[np.maximum(tracks.truth_row, 0)]), 0)
        parts.append((tracks, true_pid, out["jets"]))
    return parts, cfg


@pytest.mark.slow
def test_truth_muons_are_tagged_at_the_plateau_and_hadrons_fake_at_the_configured_rates(ttbar):
    parts, cfg = ttbar
    tag = np.concatenate([t.lepton_id for t, _, _ in parts])
    pid = np.concatenate([p for _, p, _ in parts])
    pt = np.concatenate([t.pt for t, _, _ in parts])
    eta = np.abs(np.concatenate([t.eta for t, _, _ in parts]))
    plateau = (pt > cfg.track_muon_tag_pt_min_mev + 5 * cfg.track_muon_tag_turn_on_mev) & (eta < 2.4)
    muons = plateau & (pid == 13)
    assert muons.sum() > 150
    assert _within_binomial((tag[muons] == MUON).sum(), muons.sum(), cfg.track_muon_tag_efficiency * (1 - np.exp(-5)))
    hadron = ~np.isin(pid, (11, 13)) & (eta < 2.4)
    above = hadron & (pt > max(cfg.track_muon_tag_pt_min_mev, cfg.track_electron_tag_pt_min_mev))
    assert above.sum() > 5000
    assert _within_binomial((tag[above] == MUON).sum(), above.sum(), cfg.track_muon_tag_fake_rate)
    assert _within_binomial((tag[above] == ELECTRON).sum(), above.sum(), cfg.track_electron_tag_fake_rate)
    assert (tag[hadron & (pt < 2.9e3)] == 0).all()


@pytest.mark.slow
def test_soft_muon_tags_are_frequent_on_b_jet_tracks_and_rare_but_not_absent_on_light_jets(ttbar):
    parts, _ = ttbar
    rate = {}
    for flavour in (5, 0):
        tagged = valid = 0
        for _, _, jets in parts:
            sel = jets["jets"]["HadronConeExclTruthLabelID"] == flavour
            trk = jets["tracks"][sel]
            tagged += int((trk["leptonID"][trk["valid"]] == MUON).sum())
            valid += int(trk["valid"].sum())
        rate[flavour] = (tagged, valid)
    b_rate, light_rate = (t / v for t, v in (rate[5], rate[0]))
    assert rate[0][0] > 0, "light jets: fakes from charged hadrons, no longer exactly zero"
    assert b_rate > 4 * light_rate, f"b {b_rate:.4f} vs light {light_rate:.4f} muon-tagged tracks"
