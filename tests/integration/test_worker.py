"""`fhir-bridge worker` and `fhir-bridge serve --worker`: records (loaded, or put through the
HTTP API) reach the server with no manual push; SIGTERM stops gracefully and loses nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from fhir_bridge.documents import read_records
from tests.api_client import COLLECTION_OF
from tests.helpers import FIXTURES


def _on_server(fhir: httpx.Client, system: str) -> int:
    bundle = fhir.get(
        "/Patient",
        params={"identifier": f"{system}|", "_summary": "count"},
        headers={"Cache-Control": "no-cache"},
    ).json()
    return int(bundle.get("total", 0))


def _bridge(
    tmp_path: Path, fhir_base_url: str, database_url: str | None = None
) -> tuple[dict[str, str], str, str]:
    """The environment of a bridge with one connection to the server, its CLI, its namespace."""
    ns = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    (tmp_path / "fhir-bridge.toml").write_text(
        f'[connections.hapi]\nbase_url = "{fhir_base_url}"\nenrol = "all"\n'
    )
    env = {
        **os.environ,
        "FHIR_BRIDGE_NAMESPACE": ns,
        "FHIR_BRIDGE_CONFIG": str(tmp_path / "fhir-bridge.toml"),
        "FHIR_BRIDGE_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'bridge.db'}",
    }
    return env, str(Path(sys.executable).parent / "fhir-bridge"), ns


def test_worker_pushes_in_the_background_and_stops_gracefully(
    tmp_path: Path, database_url: str, fhir_base_url: str, fhir: httpx.Client
) -> None:
    env, exe, ns = _bridge(tmp_path, fhir_base_url, database_url)

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
    patients = {
        r.id for p in FIXTURES.glob("*.json") for r in read_records(p) if r.kind == "patient"
    }
    assert _on_server(fhir, f"{ns}/patient") == len(patients)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _put_all(api: httpx.Client, fixture: Path) -> None:
    for record in read_records(fixture):
        body = record.model_dump(mode="json", exclude_none=True)
        answer = api.put(f"/v1/{COLLECTION_OF[record.kind]}/{record.id}", json=body)
        assert answer.status_code in (200, 201), answer.text


def test_api_writes_reach_the_server_and_sigterm_loses_nothing(
    tmp_path: Path, fhir_base_url: str, fhir: httpx.Client
) -> None:
    env, exe, ns = _bridge(tmp_path, fhir_base_url)
    made = subprocess.run(
        [exe, "apikey", "create", "--scope", "write", "--scope", "read"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    port = _free_port()
    service = subprocess.Popen(
        [exe, "serve", "--worker", "--port", str(port), "--push-every", "0.5"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    fixtures = sorted(FIXTURES.glob("*.json"))
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30.0,
        ) as api:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if api.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the service never came up"
                time.sleep(0.2)
            _put_all(api, fixtures[0])
            deadline = time.monotonic() + 60
            while _on_server(fhir, f"{ns}/patient") < 1:
                assert time.monotonic() < deadline, "the worker never pushed"
                time.sleep(0.5)
            assert 'direction="push",outcome="ok"' in api.get("/metrics").text
            for fixture in fixtures[1:]:  # more work, then SIGTERM while it may be under way
                _put_all(api, fixture)
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=60)
        assert service.returncode == 0, stderr
        assert "Application shutdown complete" in stderr
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    final = subprocess.run(
        [exe, "push", "--connection", "hapi"], env=env, capture_output=True, text=True, check=False
    )
    assert final.returncode == 0, final.stderr
    assert _on_server(fhir, f"{ns}/patient") == len(fixtures)
