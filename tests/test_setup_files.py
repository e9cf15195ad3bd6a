"""The setup files say what is true: pixi installs this project with every extra (no second package list to drift),
constraints.txt points to a README section that exists, every `make` target the README names exists, and the
torch index is a Make variable that reaches pip."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import tomllib

from .conftest import ROOT


def test_pixi_installs_the_project_itself_with_every_extra():
    pixi = tomllib.loads((ROOT / "pixi.toml").read_text())
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(pixi["pypi-dependencies"]) == {"treasure-lib"}, "pixi lists packages of its own"
    project = pixi["pypi-dependencies"]["treasure-lib"]
    assert project["path"] == "." and project["editable"] is True and set(project["extras"]) == set(extras)


def test_the_logs_extra_installs_tensorboard():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("tensorboard>") for req in extras["logs"])


def test_constraints_point_to_a_readme_section_that_exists():
    sections = set(re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), re.M))
    pointers = re.findall(r'README, "([^"]+)"', (ROOT / "constraints.txt").read_text())
    assert pointers and all(p in sections for p in pointers), (pointers, sections)


def test_every_make_target_the_readme_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", (ROOT / "README.md").read_text()))
    assert named and named <= targets, named - targets


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_the_torch_index_reaches_pip_only_when_given():
    def dry_run(*args):  # -n: print the commands; -B: as if .venv had to be built
        return subprocess.run(
            ["make", "-n", "-B", "venv", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    cpu = "https://download.pytorch.org/whl/cpu"
    torch_line = next(ln for ln in dry_run(f"TORCH_INDEX={cpu}").splitlines() if "torch==2.13.0" in ln)
    assert f"--index-url {cpu} torch==2.13.0" in torch_line
    plain = next(ln for ln in dry_run().splitlines() if "torch==2.13.0" in ln)
    assert "--index-url" not in plain
