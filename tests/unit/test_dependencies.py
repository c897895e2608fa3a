"""What a deployment installs is pinned, with hashes, and the tests run on the same versions:
requirements.txt (pip install --require-hashes; Heroku's buildpack reads it) and
constraints-dev.txt (python3 dev.py, CI) agree, and both cover pyproject.toml's dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(name: str) -> dict[str, str]:
    return {n.lower(): v for n, v in PIN.findall((ROOT / name).read_text())}


def test_every_runtime_dependency_is_pinned_with_hashes():
    pinned = pins("requirements.txt")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in declared:
        requirement = Requirement(line)
        name = requirement.name.lower()
        assert name in pinned, f"{name} is not pinned in requirements.txt"
        assert requirement.specifier.contains(pinned[name]), (name, pinned[name])
    text = (ROOT / "requirements.txt").read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text):
        if PIN.match(block):
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_the_tests_run_on_the_versions_a_deployment_gets():
    deployed, tested = pins("requirements.txt"), pins("constraints-dev.txt")
    assert {n: tested.get(n) for n in deployed} == deployed
    assert "-e " not in (ROOT / "constraints-dev.txt").read_text()  # pip refuses it there
