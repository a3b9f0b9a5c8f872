"""Push without a server: planning, bundle/batch/single modes, fallback, conflicts, retries, leases.

Every test runs the real Pusher against the in-memory FHIR server (``fhir_server.py``) through
an ``httpx`` mock transport, and a real store on SQLite.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.errors import AccessDenied
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary, RetrySchedule, _prepare
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
PATIENT = "pat-rivera"
GOAL = "goal-rivera-a1c"
OTHER_HOLDER = "push:elsewhere:1:abcdef"  # a process on another host: never taken for dead


async def push(
    store: Store,
    server: FhirServer,
    ctx: MappingContext,
    clock: Clock,
    *,
    dry_run: bool = False,
    **options: Any,
) -> PushSummary:
    async with server.client() as client:
        pusher = Pusher(store, client, CONNECTION, ctx, clock=clock, **options)
        return await pusher.push(dry_run=dry_run)


def load(store: Store, records: list[m.Record] | None = None) -> list[m.Record]:
    records = records if records is not None else patient_records()
    store.put_records(records, [CONNECTION], NOW)
    return records


def goal(records: list[m.Record]) -> m.Goal:
    return next(r for r in records if isinstance(r, m.Goal) and r.id == GOAL)


def bundles_sent(server: FhirServer) -> list[Json]:
    return [json.loads(r.content) for r in server.sent("POST") if r.url.path.rstrip("/") == "/fhir"]


def pending(store: Store, clock: Clock) -> int:
    return len(store.outbox.due(CONNECTION, clock()))


# ------------------------------------------------------------------ planning


async def test_first_push_creates_everything_once_and_a_second_writes_nothing(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """The shared directory in one transaction, then the patient in another; references
    point at the server's ids; pushing again sends no write."""
    load(store)
    first = await push(store, server, ctx, clock)
    assert first.failed == first.dead_lettered == 0
    assert first.created == 16  # 12 records, their Task and 3 directory resources
    directory, patient = bundles_sent(server)
    assert directory["type"] == patient["type"] == "transaction"
    directory_types = {e["resource"]["resourceType"] for e in directory["entry"]}
    assert directory_types <= {"Practitioner", "PractitionerRole", "Organization"}
    assert len(directory["entry"]) == 3
    assert len(patient["entry"]) == 13
    patient_id = server.ours("Patient", PATIENT)["id"]
    plan = server.ours("CarePlan", "cp-rivera-ccm")
    assert plan["subject"]["reference"] == f"Patient/{patient_id}"
    goal_ids = {g["id"] for g in server.of_type("Goal")}
    assert {g["reference"].split("/")[1] for g in plan["goal"]} <= goal_ids
    assert pending(store, clock) == 0

    writes = len(server.requests)
    again = await push(store, server, ctx, clock)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 0)  # nothing was queued
    store.outbox.enqueue_unsynced(CONNECTION, clock())
    assert [r.method for r in server.requests[writes:]] == ["GET"]  # the CapabilityStatement


async def test_records_stored_for_no_connection_are_queued_and_pushed_in_the_same_run(
    store: Store, server: FhirServer, ctx: MappingContext
) -> None:
    """As after ``fhir-bridge load`` with no connection configured, then ``push --fhir-url``:
    on a real clock, what the push itself queues is due in that same push."""
    store.put_records(patient_records(), [], NOW)
    async with server.client() as client:
        summary = await Pusher(store, client, CONNECTION, ctx).push()
    assert summary.created == 16


async def test_a_requeued_record_whose_rendering_is_unchanged_is_not_written(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    records = load(store)
    await push(store, server, ctx, clock)
    g = goal(records)
    store.put_records([g.model_copy(update={"updated_at": NOW + timedelta(days=1)})], [], NOW)
    sent = len(bundles_sent(server))
    summary = await push(store, server, ctx, clock)
    assert summary.created == summary.updated == 0
    assert summary.unchanged > 0
    assert len(bundles_sent(server)) == sent
    assert pending(store, clock) == 0


async def test_dry_run_plans_without_writing_or_touching_the_outbox(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    records = load(store)
    planned = await push(store, server, ctx, clock, dry_run=True)
    assert len(planned.planned) == 16
    assert {w.action for w in planned.planned} == {"create"}
    assert server.sent("POST") == server.sent("PUT") == []
    assert pending(store, clock) == len(records)
    assert store.runs.recent() == []

    await push(store, server, ctx, clock)
    g = goal(records)
    g.priority = m.GoalPriority.low
    store.put_records([g], [CONNECTION], NOW)
    (update,) = (await push(store, server, ctx, clock, dry_run=True)).planned
    assert (update.action, update.resource_type) == ("update", "Goal")
    assert any("priority" in change for change in update.changes)


async def test_one_changed_goal_is_one_version_aware_update(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    records = load(store)
    await push(store, server, ctx, clock)
    g = goal(records)
    g.achievement_status = m.GoalAchievement.improving
    store.put_records([g], [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.updated) == (0, 1)
    (entry,) = bundles_sent(server)[-1]["entry"]
    on_server = server.ours("Goal", GOAL)
    assert entry["request"] == {
        "method": "PUT",
        "url": f"Goal/{on_server['id']}",
        "ifMatch": 'W/"1"',
    }
    assert on_server["meta"]["versionId"] == "2"
    assert on_server["achievementStatus"]["coding"][0]["code"] == "improving"


async def test_only_a_changed_rendering_is_checked_again_and_read_with_its_copies(
    store: Store,
    server: FhirServer,
    ctx: MappingContext,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every record queued again, one goal changed: only the goal's rendering is checked
    (the others passed the checks when sent as they render now) and only its link is read
    whole (with the copies the merge needs); the rest is counted unchanged."""
    records = load(store)
    await push(store, server, ctx, clock)
    goal(records).priority = m.GoalPriority.low
    load(store, records)  # every record queued again
    checked: list[str] = []
    check = _prepare.check_resource

    def counting(resource: Json, path: str) -> list[Any]:
        checked.append(str(resource["resourceType"]))
        return check(resource, path)

    monkeypatch.setattr(_prepare, "check_resource", counting)
    read: list[tuple[str, str]] = []
    find_all = store.links.find_all

    def reading(connection: str, keys: Any) -> Any:
        keys = list(keys)
        read.extend(keys)
        return find_all(connection, keys)

    monkeypatch.setattr(store.links, "find_all", reading)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 15)
    assert checked == ["Goal"]
    assert [t for t, _ in read] == ["Goal"]
    assert server.ours("Goal", GOAL)["priority"]["coding"][0]["code"] == "low-priority"
    assert pending(store, clock) == 0


# ------------------------------------------------------------------ modes


async def test_without_transactions_batches_hold_one_dependency_level_each(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(transaction=False)
    load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed) == (16, 0)
    sent = bundles_sent(server)
    assert {b["type"] for b in sent} == {"batch"}
    assert len(sent) > 1
    patient_id = server.ours("Patient", PATIENT)["id"]
    # goals went in a later batch than the patient, so they point at its server id
    assert server.ours("Goal", GOAL)["subject"]["reference"] == f"Patient/{patient_id}"


async def test_without_bundles_one_conditional_update_per_resource(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(transaction=False, batch=False)
    load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed) == (16, 0)
    assert bundles_sent(server) == []
    puts = server.sent("PUT")
    assert len(puts) == 16
    assert all(r.url.params.get("identifier") for r in puts)


async def test_without_conditional_update_one_search_per_type_then_conditional_create(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(transaction=False, batch=False, conditional_update=False)
    load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed) == (16, 0)
    creates = server.sent("POST")
    assert len(creates) == 16
    assert all(r.headers["If-None-Exist"].startswith("identifier=") for r in creates)
    searches = [r for r in server.sent("GET") if "identifier" in r.url.params]
    types = {r.url.path for r in searches}
    assert len(searches) == len(types) < 16  # one search per type and level, not per resource
    assert any("," in r.url.params["identifier"] for r in searches)
    assert not [r for r in server.sent("PUT") if r.url.params.get("identifier")]


async def test_a_read_only_type_is_never_attempted_and_waits_blocked(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(read_only=frozenset({"CarePlan", "DocumentReference"}))
    load(store)
    summary = await push(store, server, ctx, clock)
    assert summary.not_supported == 1
    assert summary.dead_lettered == summary.failed == 0
    assert server.of_type("CarePlan") == []
    assert all(
        e["resource"]["resourceType"] != "CarePlan" for e in bundles_sent(server)[0]["entry"]
    )
    assert store.outbox.dead_letters(CONNECTION) == []
    assert store.outbox.blocked(CONNECTION) == {CONNECTION: {"CarePlan": 1}}
    assert pending(store, clock) == 0  # not due again: it waits for the server
    (refusal,) = [r for r in store.refusals.of(CONNECTION) if r.what == "CarePlan:write"]
    assert refusal.source == "capability-statement"


# ------------------------------------------------------------------ failures


def refusing(resource_type: str, value: str, status: int, said: str = "bad entry") -> Any:
    def refuse(method: str, resource: Json) -> tuple[int, str] | None:
        ours = [i.get("value") for i in resource.get("identifier", [])]
        if resource.get("resourceType") == resource_type and value in ours:
            return status, said
        return None

    return refuse


async def test_a_refused_transaction_is_resent_entry_by_entry_to_find_the_bad_one(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refuse=refusing("Goal", GOAL, 422, "target out of range"))
    load(store)
    summary = await push(store, server, ctx, clock)
    assert summary.dead_lettered == 1
    assert summary.created == 15
    # the directory (3 entries), then the patient's 13: whole, then each entry alone
    assert len(bundles_sent(server)) == 1 + 1 + 13
    (dead,) = store.outbox.dead_letters(CONNECTION)
    assert (dead.kind, dead.record_id, dead.attempts) == ("goal", GOAL, 1)
    # sent alone, the entry's transaction is refused: the error and the server's words
    assert (dead.last_error or "").startswith("FhirStatusError: HTTP 422")
    assert (dead.last_error or "").endswith("- target out of range")
    assert len(server.of_type("Goal")) == 2


async def test_a_missing_scope_stops_the_push_and_leaves_every_record_queued(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    """A 403 (the token lacks a scope) is the connection's fault, not the records': the push
    stops with AccessDenied, nothing is dead-lettered or counted as an attempt, the run is
    recorded as failed, and once the scope is granted everything goes, without copies."""
    server = FhirServer(refuse=refusing("Goal", GOAL, 403, "insufficient scope"))
    records = load(store)
    with pytest.raises(AccessDenied):
        await push(store, server, ctx, clock)
    assert pending(store, clock) == len(records)
    assert store.outbox.dead_letters(CONNECTION) == []
    assert {e.attempts for e in store.outbox.due(CONNECTION, clock())} == {0}
    assert store.runs.recent(1)[0].outcome == "failed"

    server.refuse = None
    again = await push(store, server, ctx, clock)
    assert (again.failed, again.dead_lettered) == (0, 0)
    assert pending(store, clock) == 0
    assert len(server.of_type("Goal")) == 3  # what went before the refusal got no copy


async def test_a_transient_failure_is_retried_after_the_schedule_wait(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refuse=refusing("Goal", GOAL, 503))
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert summary.failed == len(records)  # a transaction fails whole; nothing is permanent
    assert summary.dead_lettered == 0
    # the directory's, then the patient's: no entry-by-entry resend for a server error
    assert len(bundles_sent(server)) == 2
    assert pending(store, clock) == 0
    assert len(store.outbox.due(CONNECTION, NOW + timedelta(seconds=29))) == 0
    assert len(store.outbox.due(CONNECTION, NOW + timedelta(seconds=30))) == len(records)

    server.refuse = None
    clock.advance(seconds=30)
    again = await push(store, server, ctx, clock)
    assert (again.created, again.failed) == (13, 0)  # the directory went in the first run


async def test_a_version_conflict_rereads_the_server_copy_and_keeps_the_clinicians_additions(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    records = load(store)
    await push(store, server, ctx, clock)
    on_server = server.ours("Goal", GOAL)
    note = {"text": "Discussed at clinic"}
    server.edit("Goal", on_server["id"], lambda r: r.setdefault("note", []).append(note))
    g = goal(records)
    g.priority = m.GoalPriority.low
    store.put_records([g], [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock)
    assert (summary.updated, summary.failed) == (1, 0)
    assert [r.url.path for r in server.sent("GET", "Goal/")] == [f"/fhir/Goal/{on_server['id']}"]
    final = server.ours("Goal", GOAL)
    assert final["meta"]["versionId"] == "3"
    assert note in final["note"]
    assert final["priority"]["coding"][0]["code"] == "low-priority"


async def test_a_failing_record_is_dead_lettered_after_the_last_attempt(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(transaction=False, batch=False, refuse=refusing("Goal", GOAL, 500))
    load(store)
    schedule = RetrySchedule(first_wait=timedelta(seconds=10), max_attempts=3)
    waits = []
    for _ in range(3):
        before = clock()
        summary = await push(store, server, ctx, clock, retry=schedule)
        due = [
            e
            for e in store.outbox.due(CONNECTION, clock() + timedelta(days=1))
            if e.record_id == GOAL
        ]
        if due:
            waits.append(due[0].next_attempt_at - before)
        clock.advance(hours=1)
    assert waits == [timedelta(seconds=10), timedelta(seconds=20)]
    assert (summary.failed, summary.dead_lettered) == (0, 1)
    (dead,) = store.outbox.dead_letters(CONNECTION)
    assert (dead.record_id, dead.attempts) == (GOAL, 3)


# ------------------------------------------------------------------ leases


async def test_a_patient_another_process_pushes_is_left_to_it(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    records = load(store)
    other = store.leases.claim(
        CONNECTION, "push", PATIENT, holder=OTHER_HOLDER, now=NOW, seconds=600
    )
    assert other is not None
    summary = await push(store, server, ctx, clock)
    assert summary.busy == 1
    assert bundles_sent(server) == []
    assert pending(store, clock) == len(records)


DIRECTORY_TYPES = ("Practitioner", "PractitionerRole", "Organization")


async def test_a_lease_lost_mid_push_records_nothing_and_the_next_push_makes_no_copy(
    store: Store, ctx: MappingContext, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease expires while the transaction is at the server and another process takes
    it: the server holds the writes, but this push records none of them."""
    taken = []

    def take_over(method: str, resource: Json) -> None:
        if not taken and resource["resourceType"] not in DIRECTORY_TYPES:
            clock.advance(minutes=5)
            claim = store.leases.claim(
                CONNECTION, "push", PATIENT, holder=OTHER_HOLDER, now=clock(), seconds=60
            )
            assert claim is not None
            taken.append(claim)

    server = FhirServer(refuse=take_over)
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert summary.lease_lost == 1
    assert "lease lost: patient left to the worker holding it now" in caplog.text
    # only the shared directory, written before the patient under no patient's lease
    assert summary.created == 3
    assert len(store.outbox.due(CONNECTION, clock())) == len(records)
    created = {row.resource_type for row in store.log.recent() if row.action == "created"}
    assert created <= {"Practitioner", "PractitionerRole", "Organization"}

    store.leases.release(taken[0])
    server.refuse = None
    again = await push(store, server, ctx, clock)
    assert again.created == 0  # the resources were there: updated in place
    assert again.updated == 13
    assert len(server.of_type("Goal")) == 3


async def test_push_claimed_pushes_the_workers_patients_and_gives_the_leases_back(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    load(store)
    load(store, patient_records("transitional-care-copd.json"))
    claims = store.leases.claim_push(
        CONNECTION, holder="worker:a:1:x", now=NOW, seconds=60, limit=4
    )
    assert len(claims) == 2
    async with server.client() as client:
        pusher = Pusher(store, client, CONNECTION, ctx, clock=clock, holder="worker:a:1:x")
        summary = await pusher.push_claimed(claims)
    assert summary.failed == summary.dead_lettered == 0
    assert len(server.of_type("Patient")) == 2
    assert pending(store, clock) == 0
    assert store.leases.current(CONNECTION) == []
