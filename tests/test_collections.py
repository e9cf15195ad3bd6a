"""Object collections are data: the shipped definitions and the checks on user ones."""

from __future__ import annotations

import pytest
import yaml

from treasure_lib.errors import ConfigError
from treasure_lib.object_collections import FLAVOUR_LABELS, load_collections, load_sets

from .conftest import OBJECTS


def test_shipped_sets_define_every_seed_collection(sets):
    assert set(sets["events"]) == {"electrons", "muons", "taus", "photons", "jets", "tracks", "met", "event"}
    assert set(sets["jets"]) == {"jets", "tracks"}
    tracks = sets["jets"]["tracks"]
    assert tracks.max_objects == 40 and tracks.layout == "compound" and tracks.order_by == "pt"
    for f in ("d0", "z0SinTheta", "lifetimeSignedD0Significance", "ptfrac", "qOverPUncertainty", "deta", "dphi"):
        assert f in tracks.features
    assert sets["events"]["met"].is_scalar and sets["events"]["met"].features == ("met", "phi", "sumet")
    assert "HadronConeExclTruthLabelID" in sets["jets"]["jets"].truth


def test_type_ids_are_unique_and_leave_zero_for_special_tokens(sets):
    for members in sets.values():
        ids = [c.type_id for c in members.values()]
        assert len(set(ids)) == len(ids) and min(ids) >= 1


def test_flavour_table_is_fixed():
    assert FLAVOUR_LABELS == {5: 0, 4: 1, 0: 2, 15: 3}


def test_adding_a_collection_needs_no_code(tmp_path):
    data = yaml.safe_load(OBJECTS.read_text())
    data["events"]["large_r_jets"] = {
        "layout": "per_feature",
        "path": "objects/ljets",
        "features": ["pt", "m"],
        "type_id": 9,
        "max_objects": 2,
        "order_by": "pt",
    }
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump(data))
    c = load_collections(path, "events", ["large_r_jets"])["large_r_jets"]
    assert c.feature_path("m") == "objects/ljets/m" and c.mask_path == "objects/ljets/mask"


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"layout": "columnar", "path": "x", "features": ["a"], "type_id": 1}, "layout must be one of"),
        (
            {"layout": "compound", "path": "x", "features": ["a"], "type_id": 0, "kind": "scalars"},
            "type_id must be an integer >= 1",
        ),
        ({"layout": "compound", "path": "x", "features": ["a"], "type_id": 1}, "objects need max_objects"),
        (
            {
                "layout": "compound",
                "path": "x",
                "features": ["a"],
                "type_id": 1,
                "kind": "scalars",
                "log_features": ["b"],
            },
            r"log_features \['b'\] are not among its features",
        ),
        (
            {"layout": "compound", "path": "x", "features": ["a"], "type_id": 1, "kind": "scalars", "colour": 1},
            "unknown key",
        ),
    ],
)
def test_bad_collection_definitions_are_explained(tmp_path, spec, message):
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump({"s": {"thing": spec}}))
    with pytest.raises(ConfigError, match=message):
        load_sets(path)


def test_unknown_set_lists_the_available_ones():
    with pytest.raises(ConfigError, match="no collection set 'leptons'; available: jets, events"):
        load_collections(OBJECTS, "leptons")
