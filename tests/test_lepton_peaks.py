"""Chapter 02's lepton requirement: the H and Z peaks rebuilt from decoded leptons of the signal region."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from treasure_lib.higgs4l import quadruplets
from treasure_lib.io.batch import Batch
from treasure_lib.kinematics import Z_MASS_GEV
from treasure_lib.study import lepton_peaks as lp

from .test_higgs4l import _arrays, _event


def test_the_chosen_slots_rebuild_the_selected_quadruplet():
    extra = dict(_event()[0], pt=3e3)  # a soft extra muon the selection must not pick
    electrons, muons = _arrays([_event(), _event()[:3], _event() + [extra]])
    quads = quadruplets(electrons, muons)
    slots = lp.chosen_slots(quads, electrons, muons)
    assert slots[1].tolist() == [-1, -1, -1, -1]
    assert sorted(slots[0].tolist()) == [0, 1, 4, 5]  # two electrons (slots 0-1) and two muons (slots 4-5)
    m = lp.pair_masses(electrons, muons, slots)
    assert m["m12"][0] == pytest.approx(Z_MASS_GEV, rel=1e-4) and m["m4l"][0] == pytest.approx(125.0, rel=1e-4)
    assert m["m4l"][2] == pytest.approx(125.0, rel=1e-4) and np.isnan(m["m4l"][1])


class _ScaledPt:
    """A stand-in card: 'decoding' q levels returns the leptons with pT scaled by (1 + 0.1 / q)."""

    def __init__(self, names):
        self.features, self.num_quantizers = tuple(names), 3

    def encode(self, feats, mask):
        return feats

    def decode(self, indices, levels=None):
        out = indices.copy()
        out[..., 0] *= 1 + 0.1 / (levels or self.num_quantizers)
        return out


def _tokens(batch):
    cards = {c: _ScaledPt(batch[c].names) for c in ("electrons", "muons")}
    return SimpleNamespace(
        tokenizers=cards,
        groups_of=lambda c: [SimpleNamespace(name=c)],
        card_inputs=lambda b, c: (b[c].features, b[c].mask),
    )


def _batch(events, process):
    electrons, muons = _arrays(events)
    n = len(events)
    return Batch(
        {"electrons": electrons, "muons": muons},
        np.zeros(n, np.int64),
        np.ones(n, np.float32),
        np.arange(n),
        f"{process}.h5",
        {"process": process},
    )


def test_signal_region_masses_follow_the_decoded_leptons_level_by_level():
    signal = _batch([_event(), _event(m_x=150.0, m2=40.0)], "ggH_ZZ4l")  # the second is outside the window
    zz = _batch([_event(m_x=120.0, m2=20.0)], "qqZZ_4l")
    out = lp.signal_region_masses(_tokens(signal), [signal, zz], levels=[1, 3])
    assert out[1]["events"] == 2  # one signal and one ZZ* event in the region
    orig, dec = out[1]["m4l"]
    assert orig.tolist() == pytest.approx([125.0], rel=1e-4) and dec.tolist() == pytest.approx([137.5], rel=1e-3)
    assert out[3]["m4l"][1].tolist() == pytest.approx([125.0 * (1 + 0.1 / 3)], rel=1e-3)
    z_orig, z_dec = out[1]["mll"]  # both events' Z1 lie in the Z window
    assert len(z_orig) == 2 and z_dec == pytest.approx(z_orig * 1.1, rel=1e-3)


def test_peak_widths_add_the_decoding_smearing_in_quadrature():
    rng = np.random.default_rng(1)
    orig = rng.normal(125.0, 2.0, 20_000)
    fine = lp.peak_widths(orig, orig + rng.normal(0.0, 0.5, orig.size), n_boot=20)
    coarse = lp.peak_widths(orig, orig + rng.normal(0.0, 3.0, orig.size), n_boot=20)
    assert fine["orig_gev"] == pytest.approx(2.0, rel=0.03) and fine["residual_gev"] == pytest.approx(0.5, rel=0.05)
    assert fine["ratio"] == pytest.approx(np.hypot(2.0, 0.5) / 2.0, rel=0.03) and lp.meets_requirement(fine)
    assert coarse["ratio"] == pytest.approx(np.hypot(2.0, 3.0) / 2.0, rel=0.03) and not lp.meets_requirement(coarse)
    assert 0 < fine["ratio_err"] < 0.02 and fine["n"] == orig.size
    assert np.isnan(lp.peak_widths([125.0], [126.0])["ratio"])


W_OK = {"n": 340, "orig_gev": 1.91, "decoded_gev": 1.88, "ratio": 0.985, "ratio_err": 0.07, "residual_gev": 0.27}
W_BAD = {"n": 340, "orig_gev": 1.91, "decoded_gev": 7.48, "ratio": 3.91, "ratio_err": 0.58, "residual_gev": 7.42}


def test_the_requirement_sentence_says_whether_both_peaks_stay_at_detector_width():
    ok = lp.requirement_sentence({"m4l": W_OK, "mll": W_OK})
    assert "σ68 = 1.88 GeV from decoded leptons against 1.91 GeV" in ok and "(0.985 ± 0.070 times as wide" in ok
    assert ok.endswith("the tokens keep the leptons at detector resolution.")
    bad = lp.requirement_sentence({"m4l": W_BAD, "mll": W_OK})
    assert "Not within 1.2 times the detector's width: m4l;" in bad
    assert "too few test events" in lp.requirement_sentence({"m4l": {"n": 0}, "mll": W_OK})


def test_the_level_table_starts_with_the_recorded_design_and_marks_the_cards():
    reference = {
        "design": "VQ-VAE, 3 levels × 64 codes",
        "recorded_by": "a run",
        "data": "the default samples",
        "widths": {"m4l": W_BAD, "mll": W_BAD},
    }
    rows = lp.level_rows({1: {"m4l": W_BAD, "mll": W_BAD}, 6: {"m4l": W_OK, "mll": W_OK}}, reference)
    assert [r["Decoded with"] for r in rows] == [
        "VQ-VAE, 3 levels × 64 codes (recorded)",
        "1 level",
        "6 levels (the cards)",
    ]
    assert rows[2]["m4l (H) σ68 [GeV]: original → decoded"] == "1.91 → 1.88"
    assert rows[2]["m4l (H) width ratio"] == "0.985 ± 0.070"
    text = lp.reference_sentence(reference, {"m4l": W_OK, "mll": W_OK})
    assert text.startswith("Before: VQ-VAE, 3 levels × 64 codes gave m4l (H) 3.91 ± 0.58 times as wide")
    assert "not recomputed in this run" in text and lp.reference_sentence(None, {}) == ""


def test_the_recorded_reference_is_complete():
    ref = lp.load_reference()
    assert ref is not None and {"design", "recorded_by", "data", "widths"} <= set(ref)
    assert {"n", "orig_gev", "decoded_gev", "ratio", "ratio_err", "residual_gev"} <= set(ref["widths"]["m4l"])
