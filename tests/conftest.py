from __future__ import annotations

from pathlib import Path

import pytest

from treasure_lib.collections import load_sets

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = ROOT / "params" / "objects.yaml"


@pytest.fixture(scope="session")
def sets():
    return load_sets(OBJECTS)


@pytest.fixture(scope="session")
def jet_collections(sets):
    return sets["jets"]


@pytest.fixture(scope="session")
def event_collections(sets):
    return sets["events"]
