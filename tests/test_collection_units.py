"""Units are data: objects.yaml gives each feature its stored unit (or none), and chapters show MeV as GeV."""

from __future__ import annotations

import pytest

from treasure_lib.errors import ConfigError
from treasure_lib.object_collections import parse_collection
from treasure_lib.study import display

SPEC = {
    "layout": "per_feature",
    "path": "objects/muons",
    "features": ["pt", "eta", "phi"],
    "truth": ["truthPt"],
    "type_id": 2,
    "max_objects": 4,
}


def test_every_energy_of_the_shipped_collections_is_in_mev_and_every_length_in_mm(sets):
    tracks, jets = sets["jets"]["tracks"], sets["jets"]["jets"]
    assert tracks.unit("pt") == "MeV" and tracks.unit("d0") == "mm" and tracks.unit("dphi") == "rad"
    assert tracks.unit("deta") is None and tracks.unit("numberOfPixelHits") is None  # dimensionless
    assert jets.unit("mass") == "MeV" and sets["events"]["met"].unit("sumet") == "MeV"
    assert sets["events"]["event"].unit("pvz") == "mm" and sets["events"]["event"].unit("mu") is None


def test_every_feature_of_objects_yaml_has_a_unit_or_is_declared_dimensionless(sets):
    """A feature added to params/objects.yaml without a unit would be labelled as if dimensionless: say which."""
    undeclared = {
        f"{set_name}.{name}": c.undeclared_units()
        for set_name, members in sets.items()
        for name, c in members.items()
        if c.undeclared_units()
    }
    assert not undeclared, f"features with neither `units` nor `dimensionless` in objects.yaml: {undeclared}"
    assert (
        sets["jets"]["jets"].dimensionless == ("eta",) and "numberOfPixelHits" in sets["jets"]["tracks"].dimensionless
    )


def test_an_axis_of_a_stored_feature_names_the_object_the_quantity_and_the_shown_unit(sets):
    """One label function for every axis of a stored feature: jets' pt is stored in MeV and shown in GeV."""
    jets, tracks = sets["jets"]["jets"], sets["jets"]["tracks"]
    assert display.feature_label(jets, "pt") == "Jet $p_{T}$ [GeV]"
    assert display.feature_label(jets, "pt", tex=False) == "Jet pT [GeV]"
    assert display.feature_label(jets, "eta") == "Jet \u03b7" and display.feature_label(tracks, "d0") == "Track d0 [mm]"
    assert display.feature_label(sets["events"]["met"], "met") == "$E_{T}^{miss}$ [GeV]"  # met names itself
    assert display.feature_label(parse_collection("muons", SPEC, "test"), "pt") == "muons $p_{T}$"  # no display_name


def test_units_are_optional_and_checked():
    assert parse_collection("muons", SPEC, "test").units == ()
    c = parse_collection("muons", {**SPEC, "units": {"pt": "MeV", "truthPt": "MeV"}}, "test")
    assert c.unit("pt") == "MeV" and c.unit("truthPt") == "MeV" and c.unit("eta") is None
    with pytest.raises(ConfigError, match="units names 'd0', which is not among its features"):
        parse_collection("muons", {**SPEC, "units": {"d0": "mm"}}, "test")
    with pytest.raises(ConfigError, match="the unit of 'pt' must be a non-empty name"):
        parse_collection("muons", {**SPEC, "units": {"pt": ""}}, "test")
    with pytest.raises(ConfigError, match="'units' must be a mapping"):
        parse_collection("muons", {**SPEC, "units": ["MeV"]}, "test")
    c = parse_collection("muons", {**SPEC, "units": {"pt": "MeV", "phi": "rad"}, "dimensionless": ["eta"]}, "test")
    assert c.dimensionless == ("eta",) and c.undeclared_units() == []
    assert parse_collection("muons", SPEC, "test").undeclared_units() == ["pt", "eta", "phi"]
    with pytest.raises(ConfigError, match="dimensionless names 'd0', which is not among its features"):
        parse_collection("muons", {**SPEC, "dimensionless": ["d0"]}, "test")
    with pytest.raises(ConfigError, match="'pt' is declared dimensionless and has the unit 'MeV'"):
        parse_collection("muons", {**SPEC, "units": {"pt": "MeV"}, "dimensionless": ["pt"]}, "test")
    with pytest.raises(ConfigError, match="display_name must be text"):
        parse_collection("muons", {**SPEC, "display_name": 3}, "test")


def test_mev_is_shown_as_gev_and_other_units_unchanged():
    assert display.shown_unit("MeV") == ("GeV", 1e-3) and display.shown_unit("1/MeV") == ("1/GeV", 1e3)
    assert display.shown_unit("mm") == ("mm", 1.0) and display.shown_unit(None) == (None, 1.0)
    assert display.label("pt", "MeV") == "pT [GeV]" and display.label("eta", None) == "η"
    assert (
        display.label("pt", "MeV", tex=True) == "$p_{T}$ [GeV]"
        and display.label("numberOfSCTHits", None) == "numberOfSCTHits"
    )


def test_a_combined_card_takes_the_units_of_all_its_collections(sets):
    units = display.units_of(sets["events"], ["electrons", "muons", "nonexistent"])
    assert units == {"pt": "MeV", "phi": "rad"}
