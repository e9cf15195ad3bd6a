"""Reconstruction diagnostics on known inputs: perfect tokens cost nothing, a known smearing gives its width."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.diagnostics import reconstruction as reco
from treasure_lib.kinematics import Z_MASS_GEV
from treasure_lib.metrics.reconstruction import feature_summary


class Identity:
    """A 'tokenizer' whose decode returns the input exactly (at every level)."""

    kind, num_quantizers, codebook_size = "vqvae", 3, 256
    collection = {"features": ["pt", "eta", "charge"], "categorical": ["charge"], "log_features": ["pt"]}

    def __init__(self, features):
        self.features_ = features

    def encode(self, features, mask):
        return np.where(mask[..., None], 0, -1).repeat(3, -1)

    def decode(self, indices, levels=None):
        return self.features_


def _objects(n=500, m=4, seed=0):
    rng = np.random.default_rng(seed)
    feats = np.stack(
        [np.exp(rng.normal(10, 1, (n, m))), rng.normal(0, 1.5, (n, m)), rng.choice([-1.0, 1.0], (n, m))], -1
    )
    return feats.astype(np.float32), rng.random((n, m)) < 0.7


def test_perfect_reconstruction_has_zero_residual_and_resolution():
    feats, mask = _objects()
    report = reco.collection_report(Identity(feats), feats, mask)
    for numbers in report["levels"].values():
        assert numbers["pt"]["bias"] == 0 and numbers["pt"]["resolution"] == 0 and numbers["pt"]["mae"] == 0
        assert numbers["pt"]["response_median"] == 1 and numbers["pt"]["response_iqr_over_median"] == 0
        assert numbers["eta"]["corr"] == pytest.approx(1.0) and numbers["charge"]["accuracy"] == 1.0
    assert reco.bits_per_object(Identity(feats)) == 24.0


def test_a_known_gaussian_smearing_gives_its_width_as_resolution():
    rng = np.random.default_rng(1)
    orig = rng.normal(0, 1, 200_000)
    numbers = feature_summary(orig, orig + rng.normal(0.1, 0.05, orig.size), categorical=False, log_scaled=False)
    assert numbers["bias"] == pytest.approx(0.1, abs=1e-3) and numbers["resolution"] == pytest.approx(0.05, rel=0.02)


def test_jets_from_identical_tracks_have_unit_response_and_a_scaled_copy_its_scale():
    rng = np.random.default_rng(2)
    n, m = 400, 10
    names = ["pt", "deta", "dphi"]
    tracks = np.stack([np.exp(rng.normal(8, 1, (n, m))), rng.normal(0, 0.1, (n, m)), rng.normal(0, 0.1, (n, m))], -1)
    mask = rng.random((n, m)) < 0.8
    eta, pt_gev = rng.normal(0, 1, n), rng.uniform(20, 500, n)
    same = reco.jet_report(tracks, tracks, mask, names, eta, pt_gev)
    assert same["pt_response"]["median"] == pytest.approx(1.0) and same["pt_response"][
        "iqr_over_median"
    ] == pytest.approx(0.0)
    assert same["eta_residual"]["sigma68"] == pytest.approx(0.0, abs=1e-6)
    scaled = tracks.copy()
    scaled[..., 0] *= 1.1
    out = reco.jet_report(tracks, scaled, mask, names, eta, pt_gev)
    assert out["pt_response"]["median"] == pytest.approx(1.1, rel=1e-5)
    assert all(b["median"] == pytest.approx(1.1, rel=1e-5) for b in out["pt_response_in_bins"] if b["n"])


def test_lepton_masses_from_identical_leptons_do_not_move_the_z_peak():
    # back-to-back e+ e- pairs at the Z mass plus a soft muon pair
    n = 300
    pt = np.full((n, 2), Z_MASS_GEV * 1e3 / 2)
    e = np.stack([pt, np.zeros((n, 2)), np.tile([0.0, np.pi], (n, 1)), np.tile([1.0, -1.0], (n, 1))], -1)
    mu = np.stack(
        [np.full((n, 2), 10e3), np.zeros((n, 2)), np.tile([0.5, 2.0], (n, 1)), np.tile([1.0, -1.0], (n, 1))], -1
    )
    names = ["pt", "eta", "phi", "charge"]
    lep = reco.leptons((e, np.ones((n, 2), bool)), (mu, np.ones((n, 2), bool)), names, names)
    report = reco.lepton_mass_report(lep, lep)
    assert report["mll"]["peak_orig_gev"] == pytest.approx(Z_MASS_GEV, rel=1e-4)
    assert report["mll"]["peak_shift_gev"] == 0 and report["mll"]["residual_gev"]["sigma68"] == 0
    assert report["m4l"]["n"] == n
