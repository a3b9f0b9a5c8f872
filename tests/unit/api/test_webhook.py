"""The webhook answers at once, only to a notification carrying a valid secret of that
connection's Subscription of that type, and hands on a hint (connection, type), never a body."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_bridge.api.routes.webhook import webhook_router
from fhir_bridge.config import WEBHOOK_SECRET_HEADER, ConnectionConfig, Settings
from fhir_bridge.store.testing import MemoryStore

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
URL = "http://bridge.test/fhir/notify/ehr/Goal"


class Client:
    """Calls the app in process."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bridge.test"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(run())


@pytest.fixture
def hook(memory_store: MemoryStore) -> tuple[Client, list[tuple[str, str | None]], str]:
    """The webhook of one connection with a Goal Subscription; returns its secret too."""
    settings = Settings(
        database_url="sqlite://",
        connections={"ehr": ConnectionConfig(base_url="http://ehr.test/fhir", enrol="all")},
    )
    secret_id, secret = memory_store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    memory_store.subscription_secrets.attach(secret_id, "sub-goal")
    hints: list[tuple[str, str | None]] = []

    def hint(connection: str, resource_type: str | None) -> bool:
        hints.append((connection, resource_type))
        return len(hints) == 1

    api = FastAPI()
    api.include_router(webhook_router(settings, memory_store, hint, clock=lambda: NOW))
    return Client(api), hints, secret


def test_a_bare_notification_of_a_type_is_a_hint_of_that_type(hook: Any) -> None:
    call, hints, secret = hook
    answer = call("POST", "/fhir/notify/ehr/Goal", headers={WEBHOOK_SECRET_HEADER: secret})
    assert answer.status_code == 202
    assert answer.json()["resourceType"] == "OperationOutcome"  # servers parse the answer as FHIR
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert hints == [("ehr", "Goal")]


def test_a_payload_is_never_handed_on_only_its_type(hook: Any) -> None:
    call, hints, secret = hook
    goal = {"resourceType": "Goal", "id": "7", "lifecycleStatus": "cancelled"}
    answer = call(
        "PUT", "/fhir/notify/ehr/Goal/7", json=goal, headers={WEBHOOK_SECRET_HEADER: secret}
    )
    assert answer.status_code == 202
    assert hints == [("ehr", "Goal")]


def test_a_notification_that_names_no_type_is_a_hint_of_every_type(hook: Any) -> None:
    call, hints, secret = hook
    assert (
        call("POST", "/fhir/notify/ehr", headers={WEBHOOK_SECRET_HEADER: secret}).status_code == 202
    )
    assert hints == [("ehr", None)]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/fhir/notify/ehr/Goal", {}),
        ("POST", "/fhir/notify/ehr/Goal", {WEBHOOK_SECRET_HEADER: "wrong"}),
        ("POST", "/fhir/notify/ehr", {WEBHOOK_SECRET_HEADER: "fbs_wrong"}),
        # the Goal Subscription's secret does not open another type's endpoint
        ("POST", "/fhir/notify/ehr/CarePlan", "goal-secret"),
        # an unknown connection answers as a wrong secret does: nothing to tell them apart
        ("POST", "/fhir/notify/other/Goal", "goal-secret"),
        ("POST", "/fhir/notify/other", "goal-secret"),
    ],
)
def test_without_a_valid_secret_nothing_happens(
    hook: Any, method: str, path: str, headers: Any
) -> None:
    call, hints, secret = hook
    if headers == "goal-secret":
        headers = {WEBHOOK_SECRET_HEADER: secret}
    answer = call(method, path, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"detail": "missing or wrong notification secret"}
    assert hints == []


def test_the_secret_is_checked_before_the_body_is_read(hook: Any) -> None:
    call, hints, _ = hook
    answer = call("PUT", "/fhir/notify/ehr/Goal/7", content=b"\xff" * 2_000_000)
    assert answer.status_code == 401
    assert hints == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"resourceType": "CarePlan", "id": "7"}, "expected a Goal resource"),
        ({"resourceType": "Goal", "id": "8"}, "the body's id is not the id in the path"),
        ({"resourceType": "Goal"}, "the body's id is not the id in the path"),
        ([{"resourceType": "Goal", "id": "7"}], "expected a Goal resource"),
        (b"\xff\xfe not json", "the body is not JSON"),
        (b"[" * 5000 + b"]" * 5000, "the body is not JSON"),
    ],
)
def test_a_body_that_is_not_the_resource_of_the_path_is_refused(
    hook: Any, body: Any, reason: str
) -> None:
    call, hints, secret = hook
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = call("PUT", "/fhir/notify/ehr/Goal/7", headers={WEBHOOK_SECRET_HEADER: secret}, **sent)
    assert answer.status_code == 400
    assert answer.json()["detail"] == reason
    assert hints == []


def test_a_huge_notification_is_refused_unread(hook: Any) -> None:
    call, hints, secret = hook
    answer = call(
        "PUT",
        "/fhir/notify/ehr/Goal/7",
        content=b" " * 1_100_000,
        headers={WEBHOOK_SECRET_HEADER: secret},
    )
    assert answer.status_code == 413
    assert hints == []


def test_an_expired_secret_is_refused(hook: Any, memory_store: MemoryStore) -> None:
    call, hints, secret = hook
    (current,) = memory_store.subscription_secrets.current("ehr", NOW).values()
    new_id, new = memory_store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    memory_store.subscription_secrets.attach(new_id, "sub-goal")
    memory_store.subscription_secrets.retire(new_id, NOW - timedelta(minutes=10), timedelta(0))
    assert current.id != new_id
    assert (
        call("POST", "/fhir/notify/ehr/Goal", headers={WEBHOOK_SECRET_HEADER: secret}).status_code
        == 401
    )
    assert (
        call("POST", "/fhir/notify/ehr/Goal", headers={WEBHOOK_SECRET_HEADER: new}).status_code
        == 202
    )
    assert hints == [("ehr", "Goal")]
