"""Local deletions reaching the EHR: entered-in-error with If-Match, DELETE, blocked, conflicts,
a crash between the EHR's answer and our bookkeeping, and pull never bringing one back.

The real Pusher and Puller against the in-memory FHIR server and a real store.
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.fhir import FhirClient, RetryPolicy
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, Pusher, PushSummary, resolve_conflict
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import BASE, FhirServer, Json

pytestmark = pytest.mark.anyio
PATIENT = "pat-rivera"
GOAL = "goal-rivera-a1c"
EIE = "entered-in-error"


async def push(
    store: Store,
    server: FhirServer,
    ctx: MappingContext,
    clock: Clock,
    connection: str = CONNECTION,
    **options: Any,
) -> PushSummary:
    async with server.client() as client:
        return await Pusher(store, client, connection, ctx, clock=clock, **options).push()


async def pull(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> Any:
    async with FhirClient(BASE, transport=server.transport, retry=RetryPolicy(max_attempts=1)) as c:
        return await Puller(store, c, CONNECTION, ctx, clock=clock).pull()


async def pushed(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> None:
    store.put_records(patient_records(), [CONNECTION], NOW)
    first = await push(store, server, ctx, clock)
    assert first.failed == first.dead_lettered == 0
    clock.advance(minutes=1)


def writes_since(server: FhirServer, start: int) -> list[tuple[str, str, str | None]]:
    return [
        (r.method, r.url.path.removeprefix("/fhir/"), r.headers.get("If-Match"))
        for r in server.requests[start:]
        if r.method in ("PUT", "POST", "DELETE")
    ]


def versions(server: FhirServer, resource_type: str, resource_id: str) -> list[Json]:
    return [
        h.resource
        for h in server.history
        if (h.resource_type, h.resource_id) == (resource_type, resource_id) and h.resource
    ]


async def test_a_deleted_goal_becomes_entered_in_error_with_if_match_once(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    goal = server.ours("Goal", GOAL)
    deleted = store.delete_record("goal", GOAL, clock())
    assert deleted is not None
    assert deleted.connections == (CONNECTION,)
    start = len(server.requests)

    summary = await push(store, server, ctx, clock)

    assert (summary.deleted, summary.failed, summary.conflicts) == (1, 0, 0)
    assert writes_since(server, start) == [("PUT", f"Goal/{goal['id']}", 'W/"1"')]
    now = server.ours("Goal", GOAL)
    assert now["lifecycleStatus"] == EIE
    assert now["meta"]["versionId"] == "2"
    assert {k: v for k, v in now.items() if k not in ("meta", "lifecycleStatus", "text")} == {
        k: v for k, v in goal.items() if k not in ("meta", "lifecycleStatus", "text")
    }  # only the status changed
    (link,) = store.links.of_records(CONNECTION, [("goal", GOAL)])[("goal", GOAL)]
    assert link.version_id == "2"
    assert store.outbox.due(CONNECTION, clock()) == []
    start = len(server.requests)
    again = await push(store, server, ctx, clock)
    assert (again.deleted, writes_since(server, start)) == (0, [])


async def test_a_deleted_problem_is_entered_in_error_in_its_verification_status(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    store.delete_record("problem", "prob-rivera-hf", clock())
    await push(store, server, ctx, clock)
    condition = server.ours("Condition", "prob-rivera-hf")
    assert condition["verificationStatus"]["coding"][0]["code"] == EIE
    assert "clinicalStatus" not in condition  # con-5


async def test_a_deleted_referral_takes_its_task_first_then_its_service_request(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    store.delete_record("referral", "ref-rivera-dsmes", clock())
    start = len(server.requests)
    summary = await push(store, server, ctx, clock)
    assert summary.deleted == 2
    assert [path.split("/")[0] for _, path, _ in writes_since(server, start)] == [
        "Task",
        "ServiceRequest",
    ]
    assert server.ours("Task", "ref-rivera-dsmes")["status"] == EIE
    assert server.ours("ServiceRequest", "ref-rivera-dsmes")["status"] == EIE


async def test_a_record_never_sent_sends_nothing(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    store.put_records(patient_records(), [CONNECTION], NOW)
    store.delete_record("medication", "med-rivera-furosemide", clock())
    summary = await push(store, server, ctx, clock)
    assert (summary.deleted, summary.failed) == (0, 0)
    assert not [
        s
        for s in server.of_type("MedicationRequest") + server.of_type("MedicationStatement")
        if any(i.get("value") == "med-rivera-furosemide" for i in s.get("identifier", []))
    ]
    assert not server.sent("DELETE")
    assert store.outbox.depth(CONNECTION).pending == 0


async def test_a_type_without_such_a_status_is_deleted_after_a_read_and_after_its_records(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    patient_id = server.ours("Patient", PATIENT)["id"]
    deleted = store.delete_record("patient", PATIENT, clock(), with_records=True)
    assert deleted is not None
    assert deleted.records == len(patient_records()) - 1
    start = len(server.requests)
    summary = await push(store, server, ctx, clock)
    *retracted, last = writes_since(server, start)
    assert last == ("DELETE", f"Patient/{patient_id}", None)  # its records reference it
    assert {method for method, _, _ in retracted} == {"PUT"}  # entered in error, If-Match
    assert all(if_match for _, _, if_match in retracted)
    assert summary.deleted == len(retracted) + 1
    assert ("Patient", patient_id) in server.deleted
    assert store.links.of_records(CONNECTION, [("patient", PATIENT)]) == {}


async def test_a_deletion_the_server_takes_in_no_way_waits_blocked_with_why(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    server.undeletable = frozenset({"Patient"})
    await pushed(store, server, ctx, clock)
    store.delete_record("patient", PATIENT, clock(), with_records=True)
    summary = await push(store, server, ctx, clock)
    assert summary.not_supported == 1  # the Patient; its records are entered in error
    assert not server.sent("DELETE")
    (entry,) = store.outbox.blocked_entries(CONNECTION)
    assert entry.deleting
    assert entry.record_id == PATIENT
    assert "Patient deletion blocked" in (entry.last_error or "")
    assert store.outbox.blocked(CONNECTION) == {CONNECTION: {"Patient:delete": 1}}


async def test_a_delete_refused_at_run_time_is_remembered_and_not_sent_again(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    server.refuses_deletes = frozenset({"Patient"})
    await pushed(store, server, ctx, clock)
    store.delete_record("patient", PATIENT, clock(), with_records=True)
    await push(store, server, ctx, clock)
    assert len(server.sent("DELETE")) == 1
    assert "Patient:delete" in {r.what for r in store.refusals.of(CONNECTION)}
    (entry,) = store.outbox.blocked_entries(CONNECTION)
    assert "HTTP 405" in (entry.last_error or "")
    await push(store, server, ctx, clock)
    assert len(server.sent("DELETE")) == 1  # not attempted again


async def test_a_read_only_goal_waits_blocked_on_its_type(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    server.read_only = frozenset({"Goal"})
    store.delete_record("goal", GOAL, clock())
    await push(store, server, ctx, clock)
    assert store.outbox.blocked(CONNECTION) == {CONNECTION: {"Goal": 1}}
    assert server.ours("Goal", GOAL)["lifecycleStatus"] != EIE


async def edited_then_deleted(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> Json:
    """A clinician edits the goal in the EHR; the care manager deletes it here."""
    await pushed(store, server, ctx, clock)
    goal = server.ours("Goal", GOAL)
    edited = server.edit(
        "Goal", goal["id"], lambda r: r.update(note=[{"text": "patient asked to keep it"}])
    )
    store.delete_record("goal", GOAL, clock())
    return edited


async def test_a_delete_racing_an_ehr_edit_is_a_conflict_kept_for_a_person(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    edited = await edited_then_deleted(store, server, ctx, clock)
    summary = await push(store, server, ctx, clock)
    assert (summary.conflicts, summary.deleted, summary.failed) == (1, 0, 0)
    assert server.ours("Goal", GOAL)["meta"]["versionId"] == edited["meta"]["versionId"]
    (conflict,) = store.conflicts.find()
    assert (conflict.kind, conflict.record_id, conflict.fields) == ("goal", GOAL, ["deleted"])
    assert conflict.local["deleted"] is True
    assert conflict.remote["notes"][0]["text"] == "patient asked to keep it"
    assert store.outbox.due(CONNECTION, clock()) == []
    assert store.records.is_deleted("goal", GOAL)

    # the local side taken: deleted over the edit now seen, If-Match on it
    resolve_conflict(store, conflict.id, "local", None, clock())
    start = len(server.requests)
    again = await push(store, server, ctx, clock)
    assert again.deleted == 1
    assert writes_since(server, start) == [
        ("PUT", f"Goal/{edited['id']}", f'W/"{edited["meta"]["versionId"]}"')
    ]
    final = server.ours("Goal", GOAL)
    assert final["lifecycleStatus"] == EIE
    assert final["note"] == [{"text": "patient asked to keep it"}]  # the edit is kept


async def test_taking_the_ehr_side_of_a_deletion_conflict_restores_the_record(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await edited_then_deleted(store, server, ctx, clock)
    await push(store, server, ctx, clock)
    (conflict,) = store.conflicts.find()
    resolve_conflict(store, conflict.id, "ehr", None, clock())
    restored = store.records.get("goal", GOAL)
    assert isinstance(restored, m.Goal)
    assert [n.text for n in restored.notes] == ["patient asked to keep it"]
    await push(store, server, ctx, clock)
    assert server.ours("Goal", GOAL)["lifecycleStatus"] != EIE


async def test_local_wins_deletes_over_the_edit_and_logs_what_it_dropped(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    edited = await edited_then_deleted(store, server, ctx, clock)
    summary = await push(store, server, ctx, clock, conflict_policy="local-wins")
    assert (summary.conflicts, summary.deleted) == (1, 1)
    assert store.conflicts.find() == []
    assert server.ours("Goal", GOAL)["lifecycleStatus"] == EIE
    (line,) = store.log.recent("overruled")
    assert f"dropped the EHR's version {edited['meta']['versionId']}" in (line.detail or "")


async def test_ehr_wins_withdraws_the_deletion_and_the_next_pull_brings_the_edit(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await edited_then_deleted(store, server, ctx, clock)
    summary = await push(store, server, ctx, clock, conflict_policy="ehr-wins")
    assert (summary.conflicts, summary.deleted) == (1, 0)
    assert server.ours("Goal", GOAL)["lifecycleStatus"] != EIE
    assert store.records.get("goal", GOAL) is not None
    assert [c.change for c in store.changes.since(0) if c.record_id == GOAL] == ["updated"]
    await pull(store, server, ctx, clock)
    restored = store.records.get("goal", GOAL)
    assert isinstance(restored, m.Goal)
    assert [n.text for n in restored.notes] == ["patient asked to keep it"]


async def test_a_crash_between_the_ehr_answer_and_the_bookkeeping_resends_safely(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    store.delete_record("goal", GOAL, clock())
    record_deletions = store.record_deletions

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    store.record_deletions = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await push(store, server, ctx, clock)
    store.record_deletions = record_deletions  # type: ignore[method-assign]
    goal_id = server.ours("Goal", GOAL)["id"]
    assert server.ours("Goal", GOAL)["lifecycleStatus"] == EIE
    assert len(store.outbox.due(CONNECTION, clock())) == 1  # nothing recorded

    summary = await push(store, server, ctx, clock)

    assert (summary.conflicts, summary.failed) == (0, 0)
    assert [v["lifecycleStatus"] for v in versions(server, "Goal", goal_id)].count(EIE) == 1
    (link,) = store.links.of_records(CONNECTION, [("goal", GOAL)])[("goal", GOAL)]
    assert link.version_id == server.ours("Goal", GOAL)["meta"]["versionId"]
    assert store.outbox.due(CONNECTION, clock()) == []
    assert store.conflicts.find() == []


async def test_a_record_linked_on_two_connections_is_deleted_on_each(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    one, two = FhirServer(), FhirServer()
    store.put_records(patient_records(), [CONNECTION, "other"], NOW)
    await push(store, one, ctx, clock)
    await push(store, two, ctx, clock, connection="other")
    deleted = store.delete_record("goal", GOAL, clock())
    assert deleted is not None
    assert deleted.connections == ("ehr", "other")
    await push(store, one, ctx, clock)
    await push(store, two, ctx, clock, connection="other")
    assert one.ours("Goal", GOAL)["lifecycleStatus"] == EIE
    assert two.ours("Goal", GOAL)["lifecycleStatus"] == EIE


async def test_pull_never_brings_a_deleted_record_back(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """Before the deletion is pushed (the EHR edits it meanwhile) and after (our
    entered-in-error, then the EHR's own later edit): the record stays deleted."""
    await edited_then_deleted(store, server, ctx, clock)
    await pull(store, server, ctx, clock)
    assert store.records.is_deleted("goal", GOAL)
    await push(store, server, ctx, clock, conflict_policy="local-wins")
    assert server.ours("Goal", GOAL)["lifecycleStatus"] == EIE
    server.edit(
        "Goal", server.ours("Goal", GOAL)["id"], lambda r: r.update(note=[{"text": "again"}])
    )
    await pull(store, server, ctx, clock)
    assert store.records.is_deleted("goal", GOAL)
    assert store.records.get("goal", GOAL) is None


async def test_pull_brings_in_no_record_of_a_patient_deleted_here(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """A clinician adds a goal on the EHR for a patient the care manager has deleted."""
    await pushed(store, server, ctx, clock)
    patient = server.ours("Patient", PATIENT)
    store.delete_record("patient", PATIENT, clock(), with_records=True)
    server.add(
        {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": {"text": "new goal from the clinic"},
            "subject": {"reference": f"Patient/{patient['id']}"},
        }
    )
    summary = await pull(store, server, ctx, clock)
    assert summary.new == 0
    assert summary.skipped >= 1
    assert [g for g in store.records.of_patient(PATIENT) if g.kind == "goal"] == []


async def test_a_status_set_to_entered_in_error_is_not_sent_over_an_edit_pull_merges_first(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await pushed(store, server, ctx, clock)
    goal = server.ours("Goal", GOAL)
    server.edit("Goal", goal["id"], lambda r: r.update(note=[{"text": "seen in clinic"}]))
    record = store.records.get("goal", GOAL)
    assert isinstance(record, m.Goal)
    retracted = record.model_copy(update={"lifecycle_status": m.GoalLifecycle.entered_in_error})
    store.put_records([retracted], [CONNECTION], clock())

    first = await push(store, server, ctx, clock)

    assert first.failed == 1  # refused as stale, not resent over the edit: tried again later
    assert server.ours("Goal", GOAL)["lifecycleStatus"] != EIE
    await pull(store, server, ctx, clock)  # the edit merged with the local status
    clock.advance(hours=1)
    again = await push(store, server, ctx, clock)
    assert (again.updated, again.failed) == (1, 0)
    final = server.ours("Goal", GOAL)
    assert final["lifecycleStatus"] == EIE
    assert final["note"] == [{"text": "seen in clinic"}]
