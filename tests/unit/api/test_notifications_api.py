"""The service's webhook end to end on the in-memory FHIR server: a forged notification body
changes nothing the EHR does not hold, and twenty notifications cause one pull of the type."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import httpx

from fhir_bridge import model as m
from fhir_bridge.api import create_app
from fhir_bridge.config import WEBHOOK_SECRET_HEADER, ConnectionConfig, Settings
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher
from tests.unit.sync.conftest import NAMESPACE, NOW, patient_records
from tests.unit.sync.fhir_server import BASE, FhirServer

GOAL = "goal-rivera-a1c"


def _goal(store: Store) -> m.Goal:
    found = store.records.get("goal", GOAL)
    assert isinstance(found, m.Goal)
    return found


def test_a_forged_body_changes_nothing_and_notifications_are_coalesced(tmp_path: Path) -> None:
    server = FhirServer()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        namespace=NAMESPACE,
        notification_window_seconds=5.0,  # wide: twenty requests fit in it on a busy machine
        connections={"ehr": ConnectionConfig(base_url=BASE, enrol="all", patient_mode="create")},
    )
    store = Store(settings.database_url)
    store.put_records(patient_records(), ["ehr"], NOW)
    secret_id, secret = store.subscription_secrets.issue(
        "ehr", "Goal", "http://bridge.test/fhir/notify/ehr/Goal", NOW
    )
    store.subscription_secrets.attach(secret_id, "sub-goal")

    async def run() -> None:
        async with server.client() as client:
            await Pusher(store, client, "ehr", MappingContext(NAMESPACE, NOW)).push()
        on_server = server.ours("Goal", GOAL)
        before = len(server.requests)
        app = create_app(settings, transport=server.transport)
        notes = app.state.notifications
        headers = {WEBHOOK_SECRET_HEADER: secret}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
        ) as bridge:
            # forged: the right secret, a body the EHR never held
            forged = copy.deepcopy(on_server)
            forged["lifecycleStatus"] = "cancelled"
            forged["achievementStatus"]["coding"][0]["code"] = "achieved"
            url = f"/fhir/notify/ehr/Goal/{on_server['id']}"
            answer = await bridge.put(url, json=forged, headers=headers)
            assert answer.status_code == 202
            await notes.drain()
            assert _goal(store).lifecycle_status is m.GoalLifecycle.active
            assert _goal(store).achievement_status != m.GoalAchievement.achieved

            # a real change on the EHR, then twenty notifications: one pull of Goal reads it
            def achieved(goal: dict[str, object]) -> None:
                goal["achievementStatus"]["coding"][0]["code"] = "achieved"  # type: ignore[index]

            server.edit("Goal", on_server["id"], achieved)
            searched = len(server.requests)
            for _ in range(20):
                sent = await bridge.post("/fhir/notify/ehr/Goal", headers=headers)
                assert sent.status_code == 202
            await notes.drain()
        assert notes.pulls == 2
        searches = [r for r in server.requests[searched:] if r.url.path == "/fhir/Goal"]
        assert len(searches) == 1  # twenty notifications, one search since the watermark
        assert _goal(store).achievement_status == m.GoalAchievement.achieved
        assert _goal(store).lifecycle_status is m.GoalLifecycle.active  # not the forged value
        # only the notified type was read, and nothing was written to the EHR
        paths = {r.url.path for r in server.requests[before:]}
        assert paths <= {"/fhir/metadata", "/fhir/Goal", "/fhir/Goal/_history"}
        assert {r.method for r in server.requests[before:]} == {"GET"}

    try:
        asyncio.run(run())
    finally:
        store.close()
