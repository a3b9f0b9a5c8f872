"""Near real time: HAPI notifies the bridge's webhook, and the change lands without a pull."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from fhir_bridge import model as m
from fhir_bridge.api import create_app
from fhir_bridge.config import WEBHOOK_SECRET_HEADER, ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES, Pusher, subscribe, unsubscribe
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET_ENV = "FHIR_BRIDGE_TEST_HOOK_SECRET"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(
    tmp_path: Path, fhir_base_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, str]]:
    """fhir-bridge's HTTP service on a free local port, over a store of one pushed patient."""
    if not fhir_base_url.startswith(("http://127.0.0.1", "http://localhost")):
        pytest.skip("the server under test cannot reach a webhook on this machine")
    monkeypatch.setenv(SECRET_ENV, uuid.uuid4().hex)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}",
        connections={
            "hapi": ConnectionConfig(
                base_url=fhir_base_url, webhook_secret_env=SECRET_ENV, enrol="all"
            )
        },
    )
    store = Store(settings.database_url)
    store.put_records(read_records(FIXTURES / "older-adult-caregiver.json"), ["hapi"], NOW)

    async def push() -> None:
        async with FhirClient(fhir_base_url) as client:
            ctx = MappingContext(namespace=settings.namespace, now=NOW)
            await Pusher(store, client, "hapi", ctx).push()

    asyncio.run(push())
    store.close()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.1)
    try:
        yield settings, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_notification_applies_the_change_without_a_manual_pull(
    service: tuple[Settings, str], fhir_base_url: str, fhir: httpx.Client
) -> None:
    settings, callback = service
    secret = settings.connections["hapi"].webhook_secret_env
    assert secret is not None

    async def manage(create: bool) -> tuple[int, int] | int:
        async with FhirClient(fhir_base_url, timeout=120.0) as client:
            if create:
                return await subscribe(
                    client, "hapi", callback, os.environ[secret], WEBHOOK_SECRET_HEADER
                )
            return await unsubscribe(client, "hapi", callback)

    created = asyncio.run(manage(True))
    assert created == (len(PULLED_TYPES), 0)
    assert asyncio.run(manage(True)) == (0, len(PULLED_TYPES))  # idempotent
    try:
        deadline = time.monotonic() + 90
        while True:
            statuses = {
                e["resource"]["status"]
                for e in fhir.get("/Subscription", params={"url": f"{callback}/fhir/notify/hapi"})
                .json()
                .get("entry", [])
            }
            if statuses == {"active"}:
                break
            assert time.monotonic() < deadline, f"subscriptions not active: {statuses}"
            time.sleep(0.5)

        ctx_system = f"{settings.namespace}/goal"
        bundle = fhir.get(
            "/Goal",
            params={"identifier": f"{ctx_system}|goal-garcia-nofalls"},
            headers={"Cache-Control": "no-cache"},
        ).json()
        goal = bundle["entry"][0]["resource"]
        goal["lifecycleStatus"] = "on-hold"
        assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200

        store = Store(settings.database_url)
        try:
            deadline = time.monotonic() + 60
            while True:
                record = store.records.get("goal", "goal-garcia-nofalls")
                assert isinstance(record, m.Goal)
                if record.lifecycle_status is m.GoalLifecycle.on_hold:
                    break
                assert time.monotonic() < deadline, "the notification never reached the record"
                time.sleep(0.5)
        finally:
            store.close()
    finally:
        assert asyncio.run(manage(False)) == len(PULLED_TYPES)
