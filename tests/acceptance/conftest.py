"""Acceptance tests run the ``fhir-bridge`` command as a user would, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.acceptance)


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    """Run ``fhir-bridge ARGS...``; returns the finished process (text mode)."""
    exe = shutil.which("fhir-bridge", path=str(Path(sys.executable).parent)) or "fhir-bridge"

    def run(
        *args: str | Path,
        stdin: str | None = None,
        namespace: str | None = "https://bridge.test/id",
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "FHIR_BRIDGE_NAMESPACE"}
        if namespace is not None:  # None: the namespace comes from fhir-bridge.toml
            env["FHIR_BRIDGE_NAMESPACE"] = namespace
        return subprocess.run(
            [exe, *map(str, args)],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
            check=False,
        )

    return run
