"""Bulk initial load: the linked patients' resources by $export, merged as pull merges them."""

from __future__ import annotations

import json

import pytest

from fhir_bridge import model as m
from fhir_bridge.errors import NotSupportedByServer
from fhir_bridge.fhir import FhirClient, RetryPolicy
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import EXPORTED_TYPES, BulkPuller, Pusher
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import BASE, FhirServer, Json, patient_of

pytestmark = pytest.mark.anyio
GOAL = "goal-rivera-a1c"


async def no_wait(seconds: float) -> None:
    return None


async def push_patient(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> str:
    store.put_records(patient_records(), [CONNECTION], NOW)
    async with server.client() as client:
        await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    return str(server.ours("Patient", "pat-rivera")["id"])


def new_goal(server: FhirServer, subject: str) -> Json:
    template = server.ours("Goal", GOAL)
    fresh = {k: v for k, v in template.items() if k not in ("id", "meta", "identifier")}
    return server.add({**fresh, "subject": {"reference": subject}})


class Quick(FhirClient):
    """The FHIR client, polling without pauses."""

    async def export_wait(self, status_url: str, **options: object) -> object:  # type: ignore[override]
        return await super().export_wait(status_url, sleep=no_wait)


async def test_an_export_brings_in_the_linked_patients_resources_and_sets_the_watermarks(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    server.bulk_export = True
    patient = await push_patient(store, server, ctx, clock)
    edited = server.ours("Goal", GOAL)["id"]
    server.edit(
        "Goal", edited, lambda g: g["achievementStatus"]["coding"][0].update(code="achieved")
    )
    created = new_goal(server, f"Patient/{patient}")
    new_goal(server, "Patient/somebody-else")
    clock.advance(minutes=5)
    async with Quick(BASE, transport=server.transport, retry=RetryPolicy(max_attempts=1)) as fhir:
        puller = BulkPuller(store, fhir, CONNECTION, ctx, clock=clock, page_size=2)
        summary, exported = await puller.pull_bulk()

    (kick_off,) = server.sent("POST", "Patient/$export")
    asked = json.loads(kick_off.content)["parameter"]
    assert [p["valueReference"]["reference"] for p in asked if p["name"] == "patient"] == [
        f"Patient/{patient}"
    ]
    theirs = [
        r
        for t in EXPORTED_TYPES
        for r in server.of_type(t)
        if patient_of(r) == f"Patient/{patient}"
    ]
    assert exported == len(theirs) > 3  # the patient's, not the stranger's goal
    assert (summary.new, summary.updated, summary.failed) == (1, 1, 0)
    record = store.records.get("goal", created["id"])
    assert record is not None
    assert record.source == f"ehr:{CONNECTION}"
    goal = store.records.get("goal", GOAL)
    assert isinstance(goal, m.Goal)
    assert goal.achievement_status == m.GoalAchievement.achieved
    assert store.records.get("goal", "somebody-else") is None
    for resource_type in EXPORTED_TYPES:
        assert store.watermarks.get(CONNECTION, resource_type) is not None
    assert server.exports == {}  # the job was deleted
    # Task is not in an export: the ordinary pull read it per patient
    assert [r.url.params.get("patient") for r in server.sent("GET", "Task")] == [
        f"Patient/{patient}"
    ]


async def test_a_server_without_export_is_told_apart_before_anything_is_asked(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await push_patient(store, server, ctx, clock)
    before = len(server.requests)
    async with server.client() as fhir:
        with pytest.raises(NotSupportedByServer):
            await BulkPuller(store, fhir, CONNECTION, ctx, clock=clock).pull_bulk()
    assert [r.url.path for r in server.requests[before:]] == ["/fhir/metadata"]
