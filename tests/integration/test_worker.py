"""`fhir-bridge worker`: records reach the server with no manual push; SIGTERM loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.helpers import FIXTURES


def _on_server(fhir: httpx.Client, system: str) -> int:
    bundle = fhir.get(
        "/Patient",
        params={"identifier": f"{system}|", "_summary": "count"},
        headers={"Cache-Control": "no-cache"},
    ).json()
    return int(bundle.get("total", 0))


def test_worker_pushes_in_the_background_and_stops_gracefully(
    tmp_path: Path, fhir_base_url: str, fhir: httpx.Client
) -> None:
    ns = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    (tmp_path / "fhir-bridge.toml").write_text(
        f'[connections.hapi]\nbase_url = "{fhir_base_url}"\n'
    )
    env = {
        **os.environ,
        "FHIR_BRIDGE_NAMESPACE": ns,
        "FHIR_BRIDGE_CONFIG": str(tmp_path / "fhir-bridge.toml"),
        "FHIR_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
    }
    exe = str(Path(sys.executable).parent / "fhir-bridge")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=False)

    # the store's schema first: two processes creating a fresh SQLite schema at once can clash
    assert run("dead-letters").returncode == 0
    worker = subprocess.Popen(
        [exe, "worker", "--push-every", "0.5"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert run("load", str(FIXTURES / "older-adult-caregiver.json")).returncode == 0
        deadline = time.monotonic() + 60
        while _on_server(fhir, f"{ns}/patient") < 1:
            assert time.monotonic() < deadline, "the worker never pushed"
            time.sleep(0.5)
        # more work, then SIGTERM while it may be under way
        assert run("load", *(str(p) for p in sorted(FIXTURES.glob("*.json")))).returncode == 0
        time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr
        assert "worker stopped" in stderr
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    # whatever the stop left queued goes with the next run: nothing lost
    final = run("push", "--connection", "hapi")
    assert final.returncode == 0, final.stderr
    assert _on_server(fhir, f"{ns}/patient") == 6
