"""A dry run shows what the local deletions due now would do on the server, and sends nothing:
each resource a deletion reaches, the way the server takes it (entered-in-error, DELETE) or
why it would wait; the push after it does just that."""

from __future__ import annotations

import pytest

from fhir_bridge.fhir import ServerCapabilities
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import OutboxEntry, OutboxStatus, Store
from fhir_bridge.sync import Pusher, PushSummary
from fhir_bridge.sync._deletion_plan import plan
from fhir_bridge.sync._limits import Limits
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer

pytestmark = pytest.mark.anyio
PATIENT = "pat-rivera"
GOAL = "goal-rivera-a1c"
REFERRAL = "ref-rivera-dsmes"


async def push(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, *, dry_run: bool = False
) -> PushSummary:
    async with server.client() as client:
        return await Pusher(store, client, CONNECTION, ctx, clock=clock).push(dry_run=dry_run)


def rows(summary: PushSummary) -> list[tuple[str, str, str, str]]:
    return [
        (d.action, d.resource_type, d.identifier.rsplit("|", 1)[-1], d.record)
        for d in summary.planned_deletions
    ]


async def deleted_after_a_push(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    store.put_records(patient_records(), [CONNECTION], NOW)
    assert (await push(store, server, ctx, clock)).failed == 0
    clock.advance(minutes=1)
    for kind, record_id in (("goal", GOAL), ("referral", REFERRAL)):
        assert store.delete_record(kind, record_id, clock()) is not None
    assert store.delete_record("patient", PATIENT, clock(), with_records=True) is not None


async def test_a_dry_run_lists_each_resource_a_deletion_reaches_and_sends_nothing(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    await deleted_after_a_push(store, server, ctx, clock)
    sent = len(server.requests)
    due = store.outbox.due(CONNECTION, clock())

    dry = await push(store, server, ctx, clock, dry_run=True)

    *records, patient = rows(dry)
    assert patient == ("delete", "Patient", PATIENT, f"patient/{PATIENT}")  # last: referenced
    assert {
        ("entered-in-error", "Goal", GOAL, f"goal/{GOAL}"),
        ("entered-in-error", "Task", REFERRAL, f"referral/{REFERRAL}"),
        ("entered-in-error", "ServiceRequest", REFERRAL, f"referral/{REFERRAL}"),
    } <= set(records)
    assert {action for action, *_ in records} == {"entered-in-error"}
    task = next(i for i, r in enumerate(records) if r[1] == "Task")
    request = next(i for i, r in enumerate(records) if r[1] == "ServiceRequest")
    assert task < request  # in the order the push sends them
    assert [r.method for r in server.requests[sent:]] == ["GET"]  # the CapabilityStatement
    assert store.outbox.due(CONNECTION, clock()) == due  # nothing closed or claimed
    assert dry.deleted == 0

    real = await push(store, server, ctx, clock)
    assert real.deleted == len(dry.planned_deletions)
    again = await push(store, server, ctx, clock, dry_run=True)
    assert again.planned_deletions == []


async def test_a_deletion_the_server_would_refuse_is_shown_blocked_with_why(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    server.undeletable = frozenset({"Patient"})
    await deleted_after_a_push(store, server, ctx, clock)
    server.read_only = frozenset({"Goal"})  # since the goal was sent

    dry = await push(store, server, ctx, clock, dry_run=True)

    blocked = {d.resource_type: d.reason for d in dry.planned_deletions if d.action == "blocked"}
    assert set(blocked) == {"Patient", "Goal"}
    assert all(reason for reason in blocked.values())
    assert store.outbox.blocked(CONNECTION) == {}  # a dry run blocks nothing


def test_a_deletion_disputed_by_an_unresolved_conflict_is_one_row_saying_so() -> None:
    entry = OutboxEntry(
        1, CONNECTION, "goal", GOAL, PATIENT, 2, OutboxStatus.pending, 0, NOW, None, deleting=True
    )
    nothing_declared = Limits(ServerCapabilities())
    (row,) = plan([entry], {}, nothing_declared, patient_mode="create", disputed={("goal", GOAL)})
    assert (row.action, row.record) == ("disputed", f"goal/{GOAL}")
    assert "conflict" in row.reason
