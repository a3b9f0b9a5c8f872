"""`fhir-bridge demo` runs end to end as a user runs it, on the embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def test_demo_runs_end_to_end(
    fhir_base_url: str, using_local_sandbox: bool, tmp_path: Path
) -> None:
    if not using_local_sandbox:
        pytest.skip("the demo drives the local HAPI sandbox")
    port = urlsplit(fhir_base_url).port or 8080
    env = {**os.environ, "FHIR_BRIDGE_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "fhir-bridge"),
            "demo",
            "--port",
            str(port),
            "--out",
            "out",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAILED" not in done.stdout
    assert "conflicts 1" in done.stdout
    # the hospital's discharge starts one transitional-care plan, shown with its due items;
    # the pull after it starts nothing new
    assert "transitions 1" in done.stdout
    assert "pulled again: transitions 0" in done.stdout
    for what in ("Interactive contact", "Face-to-face visit", "Medication reconciliation"):
        assert what in done.stdout
    assert "Minutes" in done.stdout
    assert (tmp_path / "out" / "handoff-okafor.html").is_file()
    assert (tmp_path / "out" / "handoff-okafor.json").is_file()
