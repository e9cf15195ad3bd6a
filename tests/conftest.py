from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from treasure_lib.object_collections import load_sets

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = ROOT / "params" / "objects.yaml"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Two threads on a shared two-core machine run tiny models 20x slower; one is deterministic and fast. A module
    uses it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sets():
    return load_sets(OBJECTS)


@pytest.fixture(scope="session")
def jet_collections(sets):
    return sets["jets"]


@pytest.fixture(scope="session")
def event_collections(sets):
    return sets["events"]


@contextlib.contextmanager
def inside(folder: Path, cache: Path):
    """Work in `folder` with the stage cache in `cache` (module-scoped fixtures cannot use monkeypatch); the old
    working directory and TREASURE_CACHE_DIR come back afterwards, whatever happens."""
    old_cwd, old_cache = os.getcwd(), os.environ.get("TREASURE_CACHE_DIR")
    os.environ["TREASURE_CACHE_DIR"] = str(cache)
    try:
        yield folder
    finally:
        os.chdir(old_cwd)
        if old_cache is None:
            os.environ.pop("TREASURE_CACHE_DIR", None)
        else:
            os.environ["TREASURE_CACHE_DIR"] = old_cache


def generate_sections(params):
    """The params sections `generate.run.generate` (and plan_jobs, missing_jobs, stale_files) take, in order."""
    return params.study, params.data, params.generate


def tokenizer_sections(params):
    """The params sections `tokenizers.train.train_tokenizers` takes, in order."""
    return params.study, params.data, params.tokenizer


def export_sections(params):
    """The params sections `tokenizers.export.export` takes, in order."""
    return params.study, params.data, params.tokenizer, params.export, params.sequence, params.selection
