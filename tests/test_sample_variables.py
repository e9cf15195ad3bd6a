"""The variables a generated sample is compared on, from hand-made decoded features: GeV from MeV, the tracks of a
jet kept in its row (NaN where no track), the tagger's own signed impact-parameter significance when the card has
it, and for events the multiplicity and the highest pT of each collection."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.errors import MetricInputError
from treasure_lib.metrics import sample_variables as sv

NAN = np.nan


def _jets():
    """Two jets: 50 and 120 GeV (masses 8 and 15 GeV), with 2 and 1 tracks of 3 slots."""
    jets = np.array([[[50e3, 0.1, 8e3]], [[120e3, -1.2, 15e3]]])
    pt, d0, sigma, signed = [2e3, 1.5e3, 0.0], [0.1, -0.4, 0.0], [0.05, 0.1, 0.0], [2.0, -4.0, 0.0]
    tracks = np.zeros((2, 3, 4))
    tracks[0, :, 0], tracks[0, :, 1], tracks[0, :, 2], tracks[0, :, 3] = pt, d0, sigma, signed
    tracks[1, 0] = [10e3, 0.3, 0.02, 15.0]
    valid = np.array([[True, True, False], [True, False, False]])
    return {"jets": (jets, np.ones((2, 1), bool)), "tracks": (tracks, valid)}


def test_jet_variables_in_gev_with_the_tracks_of_each_jet_in_its_row():
    names = {"jets": ["pt", "eta", "mass"], "tracks": ["pt", "d0", "d0Uncertainty", "lifetimeSignedD0Significance"]}
    out = sv.jet_variables(_jets(), names)
    np.testing.assert_allclose(out["jet_pt"], [50.0, 120.0])
    np.testing.assert_allclose(out["jet_mass"], [8.0, 15.0])
    np.testing.assert_array_equal(out["jet_n_tracks"], [2, 1])
    np.testing.assert_array_equal(out["track_pt"], [[2.0, 1.5, NAN], [10.0, NAN, NAN]])
    np.testing.assert_array_equal(out["track_signed_d0_significance"], [[2.0, -4.0, NAN], [15.0, NAN, NAN]])
    assert "track_abs_d0_significance" not in out


def test_without_the_signed_significance_the_absolute_one_is_computed_from_d0_and_its_uncertainty():
    decoded = _jets()
    decoded["tracks"] = (decoded["tracks"][0][..., :3], decoded["tracks"][1])
    decoded["tracks"][0][0, 1, 2] = 0.0  # a decoded uncertainty of 0: no significance for that track
    out = sv.jet_variables(decoded, {"jets": ["pt", "eta", "mass"], "tracks": ["pt", "d0", "d0Uncertainty"]})
    np.testing.assert_allclose(out["track_abs_d0_significance"], [[2.0, NAN, NAN], [15.0, NAN, NAN]])
    assert "track_signed_d0_significance" not in out


def test_the_jets_study_cards_give_the_signed_significance(jet_collections):
    """objects.yaml's jet tracks carry lifetimeSignedD0Significance: the comparison reads the tagger's own input."""
    names = {c: list(jet_collections[c].features) for c in ("jets", "tracks")}
    n_features = len(names["tracks"])
    decoded = {
        "jets": (np.full((3, 1, 3), 1e4), np.ones((3, 1), bool)),
        "tracks": (np.ones((3, 40, n_features)), np.ones((3, 40), bool)),
    }
    out = sv.jet_variables(decoded, names)
    assert set(out) == {"jet_pt", "jet_mass", "jet_n_tracks", "track_pt", "track_signed_d0_significance"}
    assert out["track_pt"].shape == (3, 40)


def test_bad_input_names_the_card_and_feature():
    decoded = _jets()
    with pytest.raises(MetricInputError, match="card 'tracks' has no feature 'd0'"):
        sv.jet_variables(decoded, {"jets": ["pt", "eta", "mass"], "tracks": ["pt", "x", "y", "z"]})
    with pytest.raises(MetricInputError, match=r"card 'jets': expected features \[n, M, 2\]"):
        sv.jet_variables({"jets": decoded["jets"]}, {"jets": ["pt", "mass"]})
    broken = decoded["tracks"][0].copy()
    broken[1, 2, 0] = np.nan  # an empty slot may hold anything
    sv.jet_variables({"tracks": (broken, decoded["tracks"][1])}, {"tracks": ["pt", "d0", "d0Uncertainty", "s"]})
    broken[0, 0, 0] = np.inf
    with pytest.raises(MetricInputError, match="1 non-finite values of valid objects"):
        sv.jet_variables({"tracks": (broken, decoded["tracks"][1])}, {"tracks": ["pt", "d0", "d0Uncertainty", "s"]})
    with pytest.raises(MetricInputError, match="needs card 'jets' or 'tracks'"):
        sv.jet_variables({}, {})


def test_event_variables_count_objects_and_take_the_highest_pt_whatever_the_order():
    electrons = np.zeros((3, 4, 2))
    electrons[0, :2, 0] = [20e3, 45e3]  # generated objects need not come in pT order: the leading one is the largest
    electrons[2, :1, 0] = [30e3]
    valid = np.array([[True, True, False, False], [False] * 4, [True, False, False, False]])
    met = (np.full((3, 1, 2), 5e3), np.ones((3, 1), bool))  # one slot: a scalar card, left out
    out = sv.event_variables(
        {"electrons": (electrons, valid), "met": met}, {"electrons": ["pt", "eta"], "met": ["met", "phi"]}
    )
    assert set(out) == {"n_electrons", "leading_electrons_pt"}
    np.testing.assert_array_equal(out["n_electrons"], [2, 0, 1])
    np.testing.assert_array_equal(out["leading_electrons_pt"], [45.0, NAN, 30.0])


def test_a_combined_card_is_split_by_type_and_every_named_type_gets_its_variables():
    features = np.zeros((2, 3, 2))
    features[..., 0] = [[10e3, 25e3, 5e3], [40e3, 0.0, 0.0]]
    features[..., 1] = [[1, 2, 1], [1, 0, 0]]
    valid = np.array([[True, True, True], [True, False, False]])
    out = sv.event_variables(
        {"objects": (features, valid)}, {"objects": ["pt", "type"]}, type_names={1: "electrons", 2: "muons", 3: "taus"}
    )
    np.testing.assert_array_equal(out["n_electrons"], [2, 1])
    np.testing.assert_array_equal(out["leading_electrons_pt"], [10.0, 40.0])
    np.testing.assert_array_equal(out["leading_muons_pt"], [25.0, NAN])
    np.testing.assert_array_equal(out["n_taus"], [0, 0])
    unnamed = sv.event_variables({"objects": (features, valid)}, {"objects": ["pt", "type"]})
    assert set(unnamed) == {"n_type1", "leading_type1_pt", "n_type2", "leading_type2_pt"}


def test_every_variable_describes_its_axis_with_its_unit():
    assert sv.describe("track_pt") == sv.Variable("Track $p_{T}$", "GeV", "tracks")
    assert sv.describe("jet_mass").unit == "GeV" and sv.describe("jet_n_tracks").unit is None
    assert sv.describe("track_signed_d0_significance").name == "Track signed d0 / \u03c3(d0)"
    assert sv.describe("n_muons") == sv.Variable("Number of muons per event", None, "events")
    assert sv.describe("leading_electrons_pt") == sv.Variable("Leading electron $p_{T}$", "GeV", "events")
    assert sv.describe("something") == sv.Variable("something", None, "entries")
