"""Subscriptions on the in-memory server: one per type, each with a secret of its own that
only the EHR holds in plain text (the store keeps its hash); rotation and unsubscribing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fhir_bridge.config import WEBHOOK_SECRET_HEADER
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES, rotate_secrets, subscribe, unsubscribe
from tests.unit.sync.conftest import NOW
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
CALLBACK = "https://bridge.test/"
HEADER = WEBHOOK_SECRET_HEADER


def _secret(subscription: Json) -> str:
    (line,) = [h for h in subscription["channel"]["header"] if h.startswith(f"{HEADER}:")]
    return line.split(":", 1)[1].strip()


def _subscriptions(server: FhirServer) -> dict[str, Json]:
    return {s["criteria"].rstrip("?"): s for s in server.of_type("Subscription")}


async def _subscribe(server: FhirServer, store: Store) -> tuple[int, int]:
    async with server.client() as client:
        return await subscribe(client, store, "ehr", CALLBACK, header=HEADER, now=NOW)


async def test_one_subscription_per_type_each_with_its_own_secret(
    server: FhirServer, store: Store
) -> None:
    assert await _subscribe(server, store) == (len(PULLED_TYPES), 0)
    subs = _subscriptions(server)
    assert set(subs) == set(PULLED_TYPES)
    secrets = {t: _secret(s) for t, s in subs.items()}
    assert len(set(secrets.values())) == len(PULLED_TYPES)
    for resource_type, sub in subs.items():
        channel = sub["channel"]
        assert channel["endpoint"] == f"https://bridge.test/fhir/notify/ehr/{resource_type}"
        assert "payload" not in channel  # no record travels with a notification
        verify = store.subscription_secrets.verify
        assert verify("ehr", resource_type, secrets[resource_type], NOW)
        other = next(t for t in PULLED_TYPES if t != resource_type)
        assert not verify("ehr", other, secrets[resource_type], NOW)
    assert {s.subscription_id for s in store.subscription_secrets.current("ehr", NOW).values()} == {
        s["id"] for s in subs.values()
    }
    # again: nothing changes
    assert await _subscribe(server, store) == (0, len(PULLED_TYPES))
    assert {t: _secret(s) for t, s in _subscriptions(server).items()} == secrets


async def test_a_subscription_whose_secret_is_unknown_gets_a_new_one_and_the_old_endpoint_goes(
    server: FhirServer, store: Store
) -> None:
    server.add(
        {
            "resourceType": "Subscription",
            "status": "active",
            "criteria": "Goal?",
            "channel": {
                "type": "rest-hook",
                "endpoint": "https://bridge.test/fhir/notify/ehr/Goal",
                "payload": "application/fhir+json",
                "header": [f"{HEADER}: static-from-the-environment"],
            },
        }
    )
    legacy = server.add(
        {
            "resourceType": "Subscription",
            "status": "active",
            "criteria": "CarePlan?",
            "channel": {"type": "rest-hook", "endpoint": "https://bridge.test/fhir/notify/ehr"},
        }
    )
    assert await _subscribe(server, store) == (len(PULLED_TYPES) - 1, 1)
    goal = _subscriptions(server)["Goal"]
    assert _secret(goal) != "static-from-the-environment"
    assert "payload" not in goal["channel"]
    assert store.subscription_secrets.verify("ehr", "Goal", _secret(goal), NOW)
    assert not store.subscription_secrets.verify("ehr", "Goal", "static-from-the-environment", NOW)
    assert ("Subscription", legacy["id"]) in server.deleted


async def test_rotation_puts_a_new_secret_on_the_ehr_and_retires_the_old_after_a_grace(
    server: FhirServer, store: Store
) -> None:
    await _subscribe(server, store)
    before = {t: _secret(s) for t, s in _subscriptions(server).items()}
    later = NOW + timedelta(hours=1)
    async with server.client() as client:
        renewed = await rotate_secrets(client, store, "ehr", HEADER, later)
    assert sorted(renewed) == sorted(PULLED_TYPES)
    after = {t: _secret(s) for t, s in _subscriptions(server).items()}
    verify = store.subscription_secrets.verify
    for resource_type in PULLED_TYPES:
        assert after[resource_type] != before[resource_type]
        assert verify("ehr", resource_type, after[resource_type], later)
        assert verify("ehr", resource_type, before[resource_type], later + timedelta(minutes=4))
        assert not verify("ehr", resource_type, before[resource_type], later + timedelta(minutes=6))


async def test_a_failed_rotation_keeps_the_secret_in_force(
    server: FhirServer, store: Store
) -> None:
    await _subscribe(server, store)
    before = _secret(_subscriptions(server)["Goal"])
    server.refuse = lambda method, resource: (
        (500, "down") if resource.get("resourceType") == "Subscription" else None
    )
    async with server.client() as client:
        with pytest.raises(Exception, match="500"):
            await rotate_secrets(client, store, "ehr", HEADER, NOW)
    assert _secret(_subscriptions(server)["Goal"]) == before
    assert store.subscription_secrets.verify("ehr", "Goal", before, NOW + timedelta(days=1))
    # the new one was discarded
    assert len(store.subscription_secrets.valid("ehr", NOW)) == len(PULLED_TYPES)


async def test_unsubscribe_deletes_them_and_forgets_their_secrets(
    server: FhirServer, store: Store
) -> None:
    await _subscribe(server, store)
    secret = _secret(_subscriptions(server)["Task"])
    async with server.client() as client:
        assert await unsubscribe(client, store, "ehr", CALLBACK) == len(PULLED_TYPES)
    assert server.of_type("Subscription") == []
    assert not store.subscription_secrets.verify("ehr", "Task", secret, NOW)
    async with server.client() as client:
        assert await rotate_secrets(client, store, "ehr", HEADER, NOW) == []
