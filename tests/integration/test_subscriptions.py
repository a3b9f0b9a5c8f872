"""Near real time: HAPI notifies the bridge's webhook, and the change lands without a manual
pull; a forged notification carrying the stolen secret of a Subscription changes nothing."""

from __future__ import annotations

import asyncio
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
from fhir_bridge.sync import PULLED_TYPES, Pusher, rotate_secrets, subscribe, unsubscribe
from fhir_bridge.sync._subscriptions import endpoint
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GOAL = "goal-garcia-nofalls"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path, fhir_base_url: str) -> Iterator[tuple[Settings, str]]:
    """fhir-bridge's HTTP service on a free local port, over a store of one pushed patient."""
    if not fhir_base_url.startswith(("http://127.0.0.1", "http://localhost")):
        pytest.skip("the server under test cannot reach a webhook on this machine")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}",
        notification_window_seconds=0.5,
        connections={"hapi": ConnectionConfig(base_url=fhir_base_url, enrol="all")},
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


def _secret_on_the_ehr(fhir: httpx.Client, callback: str, resource_type: str) -> str:
    """What anyone allowed to read Subscriptions on the EHR can read: the header's secret."""
    url = endpoint(callback, "hapi", resource_type)
    (entry,) = fhir.get("/Subscription", params={"url": url}).json()["entry"]
    (line,) = [
        h for h in entry["resource"]["channel"]["header"] if h.startswith(WEBHOOK_SECRET_HEADER)
    ]
    return str(line.split(":", 1)[1].strip())


def _goal(settings: Settings) -> m.Goal:
    store = Store(settings.database_url, migrate=False)
    try:
        record = store.records.get("goal", GOAL)
    finally:
        store.close()
    assert isinstance(record, m.Goal)
    return record


def _pulls(settings: Settings) -> int:
    """Finished pull runs of the connection (each notification pull is one)."""
    store = Store(settings.database_url, migrate=False)
    try:
        return sum(
            1
            for r in store.runs.recent(limit=1000)
            if r.direction == "pull" and r.finished_at is not None
        )
    finally:
        store.close()


def test_notifications_are_hints_the_change_is_read_from_the_ehr(
    service: tuple[Settings, str], fhir_base_url: str, fhir: httpx.Client
) -> None:
    settings, callback = service

    async def manage(action: str) -> object:
        store = Store(settings.database_url, migrate=False)
        try:
            async with FhirClient(fhir_base_url, timeout=120.0) as client:
                now = datetime.now(UTC)
                if action == "subscribe":
                    return await subscribe(
                        client, store, "hapi", callback, header=WEBHOOK_SECRET_HEADER, now=now
                    )
                if action == "rotate":
                    return await rotate_secrets(client, store, "hapi", WEBHOOK_SECRET_HEADER, now)
                return await unsubscribe(client, store, "hapi", callback)
        finally:
            store.close()

    assert asyncio.run(manage("subscribe")) == (len(PULLED_TYPES), 0)
    try:
        assert asyncio.run(manage("subscribe")) == (0, len(PULLED_TYPES))  # idempotent
        deadline = time.monotonic() + 90
        while True:
            statuses = {
                e["resource"]["status"]
                for t in PULLED_TYPES
                for e in fhir.get("/Subscription", params={"url": endpoint(callback, "hapi", t)})
                .json()
                .get("entry", [])
            }
            if statuses == {"active"}:
                break
            assert time.monotonic() < deadline, f"subscriptions not active: {statuses}"
            time.sleep(0.5)

        system = f"{settings.namespace}/goal"
        bundle = fhir.get(
            "/Goal",
            params={"identifier": f"{system}|{GOAL}"},
            headers={"Cache-Control": "no-cache"},
        ).json()
        goal = bundle["entry"][0]["resource"]
        assert _goal(settings).lifecycle_status is m.GoalLifecycle.active

        # forged: the Goal Subscription's secret as a reader of Subscriptions sees it, and a body
        # the EHR never held
        stolen = _secret_on_the_ehr(fhir, callback, "Goal")
        forged = {**goal, "lifecycleStatus": "cancelled"}
        pulls = _pulls(settings)
        answer = httpx.put(
            f"{callback}/fhir/notify/hapi/Goal/{goal['id']}",
            json=forged,
            headers={WEBHOOK_SECRET_HEADER: stolen},
        )
        assert answer.status_code == 202
        deadline = time.monotonic() + 30
        while _pulls(settings) == pulls:  # the notification's pull of Goal, from HAPI
            assert time.monotonic() < deadline, "the notification caused no pull"
            time.sleep(0.2)
        assert _goal(settings).lifecycle_status is m.GoalLifecycle.active
        mismatch = httpx.put(
            f"{callback}/fhir/notify/hapi/Goal/other-id",
            json=forged,
            headers={WEBHOOK_SECRET_HEADER: stolen},
        )
        assert mismatch.status_code == 400
        wrong_type = httpx.post(
            f"{callback}/fhir/notify/hapi/CarePlan", headers={WEBHOOK_SECRET_HEADER: stolen}
        )
        assert wrong_type.status_code == 401  # one Subscription's secret opens only its type

        # a real change in the EHR: HAPI notifies, the bridge reads it and applies it
        goal["lifecycleStatus"] = "on-hold"
        assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200
        deadline = time.monotonic() + 60
        while _goal(settings).lifecycle_status is not m.GoalLifecycle.on_hold:
            assert time.monotonic() < deadline, "the notification never reached the record"
            time.sleep(0.5)

        # rotation: a new secret on the EHR; a made-up one still opens nothing
        renewed = asyncio.run(manage("rotate"))
        assert sorted(renewed) == sorted(PULLED_TYPES)  # type: ignore[call-overload]
        fresh = _secret_on_the_ehr(fhir, callback, "Goal")
        assert fresh != stolen
        ok = httpx.post(f"{callback}/fhir/notify/hapi/Goal", headers={WEBHOOK_SECRET_HEADER: fresh})
        assert ok.status_code == 202
        made_up = httpx.post(
            f"{callback}/fhir/notify/hapi/Goal",
            headers={WEBHOOK_SECRET_HEADER: "fbs_" + uuid.uuid4().hex},
        )
        assert made_up.status_code == 401
    finally:
        assert asyncio.run(manage("unsubscribe")) == len(PULLED_TYPES)
