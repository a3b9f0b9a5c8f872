"""Push against servers that say no, as the EHR-like sandbox profiles do.

``oracle-like``: batch without transaction, no conditional update or create, If-Match
required. ``epic-like``: CarePlan and Goal read-only, transactions refused. Plus refusals
learnt only at run time: a declared transaction answered 405, a declared-writable type
answered 405. What is refused is remembered per connection (``store.refusals``).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary, fleet_status
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
GOAL = "goal-rivera-a1c"
PLAN = "cp-rivera-ccm"
WRITES = ("PUT", "POST")


def oracle_like() -> FhirServer:
    return FhirServer(
        transaction=False,
        conditional_update=False,
        conditional_create=False,
        if_match_required=True,
    )


async def push(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, **options: Any
) -> PushSummary:
    async with server.client() as client:
        return await Pusher(store, client, CONNECTION, ctx, clock=clock, **options).push()


def load(store: Store) -> list[m.Record]:
    records = patient_records()
    store.put_records(records, [CONNECTION], NOW)
    return records


def change_goal(store: Store, records: list[m.Record], priority: m.GoalPriority) -> None:
    goal = next(r for r in records if isinstance(r, m.Goal) and r.id == GOAL)
    goal.priority = priority
    store.put_records([goal], [CONNECTION], NOW)


def bundles_sent(server: FhirServer, since: int = 0) -> list[Json]:
    return [
        json.loads(r.content)
        for r in server.requests[since:]
        if r.method == "POST" and r.url.path.rstrip("/") == "/fhir"
    ]


def writes_of(server: FhirServer, resource_type: str, since: int = 0) -> int:
    """Writes of a type that reached the server: REST requests and Bundle entries."""
    rest = sum(
        1
        for r in server.requests[since:]
        if r.method in WRITES and r.url.path.startswith(f"/fhir/{resource_type}")
    )
    entries = sum(
        1
        for b in bundles_sent(server, since)
        for e in b["entry"]
        if e["request"]["url"].startswith(resource_type)
    )
    return rest + entries


def copies(server: FhirServer) -> dict[str, int]:
    """How many resources carry each of our identifiers (1 everywhere: no duplicates)."""
    seen: dict[str, int] = {}
    for resource in server.resources.values():
        own = resource["identifier"][-1]
        key = f"{resource['resourceType']}|{own['value']}"
        seen[key] = seen.get(key, 0) + 1
    return seen


# ------------------------------------------------------------------ oracle-like


async def test_batch_without_conditional_update_searches_then_writes_with_no_conditional_url(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = oracle_like()
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed, summary.dead_lettered) == (16, 0, 0)
    sent = bundles_sent(server)
    assert {b["type"] for b in sent} == {"batch"}
    entries = [e["request"] for b in sent for e in b["entry"]]
    assert all("?" not in r["url"] for r in entries)  # 0 conditional URLs
    assert all(r["method"] == "POST" and "ifNoneExist" not in r for r in entries)
    searches = [r for r in server.sent("GET") if "identifier" in r.url.params]
    assert len(searches) == len({r.url.path for r in searches}) < 16  # one per type
    assert set(copies(server).values()) == {1}

    mark = len(server.requests)
    change_goal(store, records, m.GoalPriority.low)
    again = await push(store, server, ctx, clock)
    assert (again.updated, again.failed) == (1, 0)
    (update,) = [e["request"] for b in bundles_sent(server, mark) for e in b["entry"]]
    goal_id = server.ours("Goal", GOAL)["id"]
    assert update == {"method": "PUT", "url": f"Goal/{goal_id}", "ifMatch": 'W/"1"'}


async def test_a_push_killed_mid_batch_then_run_again_makes_no_duplicates(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    """The server stored the first entries of a batch, but the run died before reading
    the answer: nothing of that batch was recorded. The next run finds them by identifier
    and updates."""
    stored: list[str] = []

    class KilledError(Exception):
        pass

    def die_in_the_second_conditions(method: str, resource: Json) -> None:
        stored.append(resource["resourceType"])
        if stored.count("Condition") == 2:
            raise KilledError

    server = oracle_like()
    server.refuse = die_in_the_second_conditions
    load(store)
    with pytest.raises(KilledError):
        await push(store, server, ctx, clock)
    # the directory and the Patient (batches of their own) were recorded; of the Conditions'
    # batch the server holds the first, and nothing was recorded
    assert len(server.resources) == 5
    linked = {link.resource_type for link in store.links.of_connection(CONNECTION)}
    assert "Patient" in linked
    assert "Condition" not in linked

    server.refuse = None
    summary = await push(store, server, ctx, clock)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    assert summary.created + summary.updated == 16 - 4  # the directory and Patient: unchanged
    assert summary.updated == 1  # the Condition stored: found by identifier, updated in place
    assert len(server.resources) == 16
    assert set(copies(server).values()) == {1}


# ------------------------------------------------------------------ run-time fallback


async def test_a_refused_transaction_falls_back_and_the_next_run_sends_no_transaction(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refused_modes={"transaction": 405})
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed, summary.dead_lettered) == (16, 0, 0)
    kinds = [b["type"] for b in bundles_sent(server)]
    assert kinds[0] == "transaction"
    assert set(kinds[1:]) == {"batch"}
    (refusal,) = store.refusals.of(CONNECTION)
    assert (refusal.what, refusal.source, refusal.status) == ("transaction", "run-time", 405)
    assert refusal.said == "transaction is not allowed"

    mark = len(server.requests)
    change_goal(store, records, m.GoalPriority.low)
    again = await push(store, server, ctx, clock)
    assert (again.updated, again.failed) == (1, 0)
    assert [b["type"] for b in bundles_sent(server, mark)] == ["batch"]
    status = fleet_status(store, clock())["limits"][CONNECTION]
    assert [x["mode"] for x in status["refused_modes"]] == ["transaction"]


async def test_a_transaction_refused_in_words_is_remembered_even_when_a_type_is_refused_too(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    """Epic-like, with a statement that claims too much: the transaction is refused ("is
    not allowed"), then in the batch the goals are refused too; both are remembered, so the
    next run sends neither a transaction nor a goal."""
    server = FhirServer(
        refused_modes={"transaction": 405}, refuses_writes=frozenset({"Goal", "CarePlan"})
    )
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    refused = {r.what for r in store.refusals.of(CONNECTION)}
    assert {"transaction", "Goal:write", "CarePlan:write"} <= refused

    mark = len(server.requests)
    change_goal(store, records, m.GoalPriority.low)
    await push(store, server, ctx, clock)
    assert {b["type"] for b in bundles_sent(server, mark)} == {"batch"}
    assert writes_of(server, "Goal", mark) == writes_of(server, "CarePlan", mark) == 0
    assert len(server.of_type("DocumentReference")) == 1  # the plan, as a note, from now on


async def test_refused_transaction_and_batch_fall_back_to_single_requests(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refused_modes={"transaction": 501, "batch": 403})
    load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed) == (16, 0)
    assert {r.what for r in store.refusals.of(CONNECTION)} == {"transaction", "batch"}
    assert len(server.sent("PUT")) == 16


async def test_the_memory_is_forgotten_when_the_capability_statement_changes(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refused_modes={"transaction": 405})
    records = load(store)
    await push(store, server, ctx, clock)
    assert store.refusals.of(CONNECTION) != []

    server.refused_modes = {}
    server.last_updated = False  # an upgrade: the statement now says something else
    mark = len(server.requests)
    change_goal(store, records, m.GoalPriority.low)
    await push(store, server, ctx, clock)
    assert store.refusals.of(CONNECTION) == []
    assert [b["type"] for b in bundles_sent(server, mark)] == ["transaction"]


async def test_the_memory_is_forgotten_after_the_configured_time(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refused_modes={"transaction": 405})
    records = load(store)
    await push(store, server, ctx, clock, remember_refusals=timedelta(hours=1))
    server.refused_modes = {}
    clock.advance(hours=2)
    mark = len(server.requests)
    change_goal(store, records, m.GoalPriority.low)
    await push(store, server, ctx, clock, remember_refusals=timedelta(hours=1))
    assert [b["type"] for b in bundles_sent(server, mark)] == ["transaction"]


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
async def test_a_refused_conditional_update_is_resent_searching_first_and_remembered(
    store: Store, ctx: MappingContext, clock: Clock, batch: bool
) -> None:
    server = FhirServer(transaction=False, batch=batch, refuses_conditional_update=True)
    load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.created, summary.failed, summary.not_supported) == (16, 0, 0)
    assert set(copies(server).values()) == {1}
    refused = {r.what for r in store.refusals.of(CONNECTION)}
    assert "Patient:conditional-update" in refused
    assert not any(w.endswith(":write") for w in refused)  # the types stay writable
    (item,) = [
        x
        for x in fleet_status(store, clock())["limits"][CONNECTION]["refused_interactions"]
        if x["type"] == "Patient"
    ]
    assert item["interaction"] == "conditional-update"


# ------------------------------------------------------------------ types refused


async def test_a_405_on_goal_marks_it_and_the_next_run_sends_no_goal(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(transaction=False, refuses_writes=frozenset({"Goal", "DocumentReference"}))
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    assert summary.not_supported == 3  # the patient's three goals
    assert server.of_type("Goal") == []
    assert writes_of(server, "Goal") == 3  # in one batch, each entry refused
    assert store.outbox.dead_letters(CONNECTION) == []
    assert store.outbox.blocked(CONNECTION) == {CONNECTION: {"Goal": 3}}
    refusals = {r.what: r for r in store.refusals.of(CONNECTION)}
    assert (refusals["Goal:write"].source, refusals["Goal:write"].status) == ("run-time", 405)

    mark = len(server.requests)
    change_goal(store, records, m.GoalPriority.low)
    clock.advance(days=1)
    again = await push(store, server, ctx, clock)
    assert writes_of(server, "Goal", mark) == 0
    assert (again.failed, again.dead_lettered, again.not_supported) == (0, 0, 1)

    status = fleet_status(store, clock())
    assert status["queue"][CONNECTION]["blocked"] == 3
    (goal,) = [x for x in status["limits"][CONNECTION]["not_sent"] if x["type"] == "Goal"]
    assert goal["waiting"] == 3
    assert goal["reason"] == (
        "Goal writes refused by the server with HTTP 405 on 2025-03-01 (not attempted since)"
    )
    assert store.outbox.due(CONNECTION, clock() + timedelta(days=999)) == []  # they wait


async def test_forgetting_makes_blocked_records_due_and_a_writable_type_is_sent_again(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(refuses_writes=frozenset({"Goal", "DocumentReference"}))
    load(store)
    await push(store, server, ctx, clock)
    assert store.outbox.blocked(CONNECTION) == {CONNECTION: {"Goal": 3}}
    # the transaction was refused for its goals, not as such: not remembered
    assert "transaction" not in {r.what for r in store.refusals.of(CONNECTION)}

    server.refuses_writes = frozenset({"DocumentReference"})
    assert store.refusals.forget(CONNECTION) >= 1
    mark = len(server.requests)
    summary = await push(store, server, ctx, clock)  # unblocked at the start of the run
    assert summary.created == 3
    assert [b["type"] for b in bundles_sent(server, mark)] == ["transaction"]
    assert len(server.of_type("Goal")) == 3
    assert store.outbox.blocked(CONNECTION) == {}


# ------------------------------------------------------------------ the plan-of-care note


def note_html(server: FhirServer) -> str:
    (note,) = server.of_type("DocumentReference")
    return base64.b64decode(note["content"][0]["attachment"]["data"]).decode()


async def test_the_care_plan_reaches_a_careplan_read_only_ehr_as_one_note_kept_current(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(
        read_only=frozenset({"CarePlan", "Goal"}), refused_modes={"transaction": 405}
    )
    records = load(store)
    summary = await push(store, server, ctx, clock)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    assert server.of_type("CarePlan") == server.of_type("Goal") == []
    assert writes_of(server, "CarePlan") == writes_of(server, "Goal") == 0
    (note,) = server.of_type("DocumentReference")
    assert note["type"]["coding"][0]["code"] == "18776-5"
    assert note["category"][0]["coding"][0]["code"] == "clinical-note"
    assert note["identifier"][-1]["value"] == PLAN
    patient_id = server.ours("Patient", "pat-rivera")["id"]
    assert note["subject"]["reference"] == f"Patient/{patient_id}"
    assert "improving" not in note_html(server)
    blocked = store.outbox.blocked(CONNECTION)[CONNECTION]
    assert blocked == {"CarePlan": 1, "Goal": 3}
    (plan_entry,) = [e for e in store.outbox.blocked_entries(CONNECTION) if e.record_id == PLAN]
    assert "plan-of-care note" in (plan_entry.last_error or "")

    before = note_html(server)
    goal = next(r for r in records if isinstance(r, m.Goal) and r.id == GOAL)
    goal.achievement_status = m.GoalAchievement.improving
    store.put_records([goal], [CONNECTION], NOW)
    again = await push(store, server, ctx, clock)
    assert again.updated == 1  # the note, updated in place
    (updated,) = server.of_type("DocumentReference")
    assert updated["id"] == note["id"]
    assert updated["meta"]["versionId"] == "2"
    assert note_html(server) != before
    assert "improving" in note_html(server)
    assert writes_of(server, "Goal") == 0


async def test_no_note_where_care_plans_and_goals_are_writable(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    load(store)
    await push(store, server, ctx, clock)
    assert server.of_type("DocumentReference") == []
    assert len(server.of_type("CarePlan")) == 1
