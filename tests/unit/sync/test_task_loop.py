"""The community Task loop without a server: the organisation moves its Task along on its
server and pull brings every step back into the referral's tracking, keeping its notes and
outputs; a tracking change made on both sides is a conflict, never a silent overwrite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher, PushSummary, resolve_conflict
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
REFERRAL = "ref-rivera-dsmes"


async def pull(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> PullSummary:
    async with server.client() as client:
        return await Puller(store, client, CONNECTION, ctx, clock=clock).pull()


async def push(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> PushSummary:
    async with server.client() as client:
        return await Pusher(store, client, CONNECTION, ctx, clock=clock).push()


@pytest.fixture
async def task_id(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> str:
    """The fixture patient pushed and pulled once; the server id of the referral's Task."""
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    await pull(store, server, ctx, clock)
    return str(server.ours("Task", REFERRAL)["id"])


def referral(store: Store) -> m.Referral:
    found = store.records.get("referral", REFERRAL)
    assert isinstance(found, m.Referral)
    return found


def tracking(store: Store) -> m.Tracking:
    found = referral(store).tracking
    assert found is not None
    return found


def task_change(**elements: Any) -> Callable[[Json], None]:
    def change(task: Json) -> None:
        task.update(elements)

    return change


@pytest.mark.parametrize(
    "case",
    [
        ({"status": "in-progress"}, m.TrackingStatus.in_progress, None),
        (
            {"status": "rejected", "statusReason": {"text": "outside our service area"}},
            m.TrackingStatus.rejected,
            "outside our service area",
        ),
        (
            {"status": "cancelled", "statusReason": {"text": "client moved"}},
            m.TrackingStatus.cancelled,
            "client moved",
        ),
    ],
)
async def test_each_status_the_organisation_sets_comes_back(
    store: Store,
    server: FhirServer,
    *,
    ctx: MappingContext,
    clock: Clock,
    task_id: str,
    case: tuple[Json, m.TrackingStatus, str | None],
) -> None:
    elements, status, reason = case
    server.edit("Task", task_id, task_change(**elements))
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts, summary.failed) == (1, 0, 0)
    assert (tracking(store).status, tracking(store).reason) == (status, reason)
    assert store.outbox.due(CONNECTION, clock()) == []  # nothing of ours to send back


async def test_completed_with_outputs_and_a_note_is_kept_and_not_pushed_away(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, task_id: str
) -> None:
    output = {
        "type": {"text": "Resulting Activity"},
        "valueReference": {"reference": "Procedure/class-attended"},
    }
    note = {"text": "attended all four sessions", "authorString": "Educator"}
    server.edit("Task", task_id, task_change(status="completed", output=[output], note=[note]))
    await pull(store, server, ctx, clock)
    kept = tracking(store)
    assert kept.status == m.TrackingStatus.completed
    assert [o.reference for o in kept.outputs] == ["Procedure/class-attended"]
    assert [(n.text, n.author) for n in kept.notes] == [("attended all four sessions", "Educator")]

    # the care manager edits the referral: the Task sent back still carries the note
    mine = referral(store).model_copy(update={"notes": [m.Note(text="called the family")]})
    store.put_records([mine], [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    task = server.resources[("Task", task_id)]
    assert task["status"] == "completed"
    assert [n["text"] for n in task.get("note", [])] == ["attended all four sessions"]
    assert task["output"][0]["valueReference"]["reference"] == "Procedure/class-attended"


async def test_a_local_cancel_racing_the_organisations_in_progress_is_a_conflict(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, task_id: str
) -> None:
    cancelled = tracking(store).model_copy(
        update={"status": m.TrackingStatus.cancelled, "reason": "patient declined"}
    )
    store.put_records([referral(store).model_copy(update={"tracking": cancelled})], [], NOW)
    server.edit("Task", task_id, task_change(status="in-progress"))

    summary = await pull(store, server, ctx, clock)

    assert summary.conflicts == 1
    (conflict,) = store.conflicts.find()
    assert conflict.record_id == REFERRAL
    assert "tracking.status" in conflict.fields
    assert conflict.local["tracking"]["status"] == "cancelled"
    assert conflict.remote["tracking"]["status"] == "in_progress"
    assert tracking(store).status == m.TrackingStatus.cancelled  # manual: the local one stays

    # the person takes the local side: the cancel reaches the organisation's Task
    resolve_conflict(store, conflict.id, "local", None, NOW)
    pushed = await push(store, server, ctx, clock)
    assert pushed.failed == pushed.dead_lettered == 0
    assert server.resources[("Task", task_id)]["status"] == "cancelled"


async def test_a_local_change_and_the_organisations_note_both_survive(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, task_id: str
) -> None:
    """Different elements changed on each side: merged, and ours is sent back."""
    mine = tracking(store).model_copy(update={"business_status": "family informed"})
    store.put_records([referral(store).model_copy(update={"tracking": mine})], [], NOW)
    server.edit("Task", task_id, task_change(note=[{"text": "first class booked"}]))

    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts) == (1, 0)
    merged = tracking(store)
    assert merged.business_status == "family informed"
    assert [n.text for n in merged.notes] == ["first class booked"]

    await push(store, server, ctx, clock)
    task = server.resources[("Task", task_id)]
    assert task["businessStatus"]["text"] == "family informed"
    assert [n["text"] for n in task["note"]] == ["first class booked"]


async def test_a_push_before_the_pull_does_not_write_the_cancel_over_the_organisation(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, task_id: str
) -> None:
    """Push runs first (``sync`` pushes, then pulls): the Task is not resent over the
    organisation's change; the pull makes the conflict; nothing is written until it is
    resolved."""
    cancelled = tracking(store).model_copy(update={"status": m.TrackingStatus.cancelled})
    store.put_records(
        [referral(store).model_copy(update={"tracking": cancelled})], [CONNECTION], NOW
    )
    server.edit("Task", task_id, task_change(status="in-progress"))

    first = await push(store, server, ctx, clock)

    assert first.failed == 1
    assert first.dead_lettered == 0
    assert server.resources[("Task", task_id)]["status"] == "in-progress"
    assert (await pull(store, server, ctx, clock)).conflicts == 1
    clock.advance(minutes=5)
    await push(store, server, ctx, clock)  # the conflict is open: nothing written
    assert server.resources[("Task", task_id)]["status"] == "in-progress"

    (conflict,) = store.conflicts.find()
    resolve_conflict(store, conflict.id, "ehr", None, NOW)
    await push(store, server, ctx, clock)
    assert server.resources[("Task", task_id)]["status"] == "in-progress"
    assert tracking(store).status == m.TrackingStatus.in_progress
