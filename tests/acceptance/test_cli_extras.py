"""The optional parts: translation needs neither the HTTP service nor PostgreSQL's driver, and
a command that needs one names the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import fixture_files

# Runs the CLI with the optional parts' packages made unimportable, as on an install without
# the extras.
WITHOUT_EXTRAS = """
import sys
for name in ("fastapi", "starlette", "uvicorn", "multipart", "psycopg"):
    sys.modules[name] = None
from fhir_bridge.cli import main
sys.argv = ["fhir-bridge", *sys.argv[1:]]
main()
"""


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "FHIR_BRIDGE_NAMESPACE": "https://bridge.test/id", **env},
        timeout=120,
        check=False,
    )


def test_map_and_load_need_no_extra(tmp_path: Path) -> None:
    fixture = str(fixture_files()[0])
    assert _run(tmp_path, "map", fixture).returncode == 0
    loaded = _run(tmp_path, "load", fixture)
    assert loaded.returncode == 0, loaded.stderr


def test_serve_without_the_server_extra_names_it(tmp_path: Path) -> None:
    done = _run(tmp_path, "serve", "--port", "0")
    assert done.returncode == 1
    assert "pip install 'fhir-bridge[server]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_postgresql_without_the_driver_names_the_extra(tmp_path: Path) -> None:
    url = "postgresql+psycopg://bridge@127.0.0.1:1/bridge"
    done = _run(tmp_path, "status", FHIR_BRIDGE_DATABASE_URL=url)
    assert done.returncode == 1
    assert "pip install 'fhir-bridge[postgres]'" in done.stderr
    assert "Traceback" not in done.stderr
