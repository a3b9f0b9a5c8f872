"""The supply chain: every runtime dependency bounded below its next major version, and the
lock files pinning, with hashes, a version of each that pyproject.toml allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [
    Requirement(r)
    for r in [
        *PROJECT["dependencies"],
        *PROJECT["optional-dependencies"]["server"],
        *PROJECT["optional-dependencies"]["postgres"],
    ]
]
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==([^\s;\\]+)", re.MULTILINE)


def _pins(lock: str) -> dict[str, Version]:
    text = (ROOT / lock).read_text()
    return {
        canonicalize_name(name.split("[")[0]): Version(version)
        for name, version in _PIN.findall(text)
    }


@pytest.mark.parametrize("requirement", RUNTIME, ids=str)
def test_every_runtime_dependency_has_an_upper_bound(requirement: Requirement) -> None:
    uppers = [s for s in requirement.specifier if s.operator in ("<", "<=", "~=", "==")]
    assert uppers, f"{requirement}: no upper bound"


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", RUNTIME),
        (
            "requirements-dev.lock",
            RUNTIME + [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]],
        ),
    ],
)
def test_the_lock_pins_an_allowed_version_of_each_with_hashes(
    lock: str, requirements: list[Requirement]
) -> None:
    pins = _pins(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock}: {name} is not pinned"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock}: {name}=={pins[name]} is outside {requirement.specifier}"
        )
    text = (ROOT / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in e for e in entries if "==" in e.split("\n")[0])
