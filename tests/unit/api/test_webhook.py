"""The webhook answers at once, and only to notifications carrying the connection's secret."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_bridge.api.routes.webhook import webhook_router
from fhir_bridge.config import WEBHOOK_SECRET_HEADER, ConnectionConfig, Settings


class Client:
    """Calls the app in process (httpx's ASGI transport runs background tasks before returning)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bridge.test"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(run())

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._call("PUT", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._call("POST", url, **kwargs)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> tuple[Client, list[tuple[str, Any]]]:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    settings = Settings(
        database_url="sqlite://",
        connections={
            "ehr": ConnectionConfig(
                base_url="http://ehr.test/fhir", webhook_secret_env="HOOK_SECRET", enrol="all"
            )
        },
    )
    handled: list[tuple[str, Any]] = []

    async def handle(connection: str, resources: Any) -> None:
        handled.append((connection, resources))

    api = FastAPI()
    api.include_router(webhook_router(settings, handle))
    return Client(api), handled


def test_payload_notification_is_accepted_and_applied_after_the_answer(app: Any) -> None:
    client, handled = app
    goal = {"resourceType": "Goal", "id": "7", "lifecycleStatus": "active"}
    answer = client.put(
        "/fhir/notify/ehr/Goal/7", json=goal, headers={WEBHOOK_SECRET_HEADER: "s3cret"}
    )
    assert answer.status_code == 202
    assert answer.json()["resourceType"] == "OperationOutcome"  # servers parse the answer as FHIR
    assert handled == [("ehr", [goal])]


def test_empty_notification_triggers_an_incremental_pull(app: Any) -> None:
    client, handled = app
    assert (
        client.post("/fhir/notify/ehr", headers={WEBHOOK_SECRET_HEADER: "s3cret"}).status_code
        == 202
    )
    assert handled == [("ehr", None)]


@pytest.mark.parametrize("headers", [{}, {WEBHOOK_SECRET_HEADER: "wrong"}])
def test_without_the_secret_nothing_happens(app: Any, headers: dict[str, str]) -> None:
    client, handled = app
    assert client.post("/fhir/notify/ehr", headers=headers).status_code == 401
    assert handled == []


def test_unknown_connection_and_wrong_body(app: Any) -> None:
    client, handled = app
    unknown = client.post("/fhir/notify/other", headers={WEBHOOK_SECRET_HEADER: "s3cret"})
    known = client.post("/fhir/notify/ehr", headers={WEBHOOK_SECRET_HEADER: "wrong"})
    # an outsider cannot tell which connections exist
    assert unknown.status_code == known.status_code == 401
    assert unknown.json() == known.json()
    wrong = client.put(
        "/fhir/notify/ehr/Goal/7",
        json={"resourceType": "CarePlan"},
        headers={WEBHOOK_SECRET_HEADER: "s3cret"},
    )
    assert wrong.status_code == 400
    assert handled == []
