"""envs/*.yaml: the conda environments every rule names are present, parse, and pin every package."""

from __future__ import annotations

import re

import pytest
import yaml
from _pipeline import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def test_envs_exist() -> None:
    assert {p.name for p in ENVS} >= {"torch.yaml", "report.yaml"}


@pytest.mark.parametrize("env", ENVS, ids=[p.stem for p in ENVS])
def test_env_pins_every_package(env) -> None:
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"][0] == "conda-forge"
    deps = [d for d in spec["dependencies"] if isinstance(d, str)]
    unpinned = [d for d in deps if not re.match(r"^[A-Za-z0-9_.-]+=[0-9][^ ]*$", d)]
    assert not unpinned, f"{env.name}: pin these with name=version: {unpinned}"
    assert "python=3.11" in deps


def test_every_conda_directive_points_to_an_env_file() -> None:
    for rules in RULE_FILES:
        for ref in re.findall(r"conda:\s*\n\s*\"([^\"]+)\"", rules.read_text()):
            assert (rules.parent / ref).resolve().is_file(), f"{rules.name}: conda env {ref} not found"
