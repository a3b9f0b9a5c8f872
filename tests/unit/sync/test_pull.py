"""Pull without a server: echoes, remote changes, merges and conflicts, paging, deletions,
leases, types side by side.

The patient is pushed first (so links and the server copies exist), then the in-memory FHIR
server plays the EHR: clinicians edit, add and delete resources, and the real Puller reads
them back into the store on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.fhir import FhirClient, RetryPolicy
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES, Puller, PullSummary, Pusher, resolve_conflict
from fhir_bridge.sync._pull import PULL_LEVELS
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import BASE, FhirServer, Json

pytestmark = pytest.mark.anyio
GOAL = "goal-rivera-a1c"
OTHER_HOLDER = "pull:elsewhere:1:abcdef"


async def pull(
    store: Store,
    server: FhirServer,
    ctx: MappingContext,
    clock: Clock,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> PullSummary:
    transport = transport or server.transport
    async with FhirClient(BASE, transport=transport, retry=RetryPolicy(max_attempts=1)) as client:
        return await Puller(store, client, CONNECTION, ctx, clock=clock, **options).pull()


@pytest.fixture
async def pushed(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> str:
    """The fixture patient stored and pushed; returns the server id of its goal."""
    store.put_records(patient_records(), [CONNECTION], NOW)
    async with server.client() as client:
        summary = await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    assert summary.created == 16
    return str(server.ours("Goal", GOAL)["id"])


def set_code(element: str, code: str) -> Callable[[Json], None]:
    def change(resource: Json) -> None:
        resource[element]["coding"][0]["code"] = code

    return change


def local_goal(store: Store) -> m.Goal:
    found = store.records.get("goal", GOAL)
    assert isinstance(found, m.Goal)
    return found


async def test_what_the_bridge_wrote_is_not_read_back_as_a_change(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    summary = await pull(store, server, ctx, clock)
    assert (summary.new, summary.updated, summary.conflicts, summary.failed) == (0, 0, 0, 0)
    # the patient, 2 problems, 3 medications, the care team, the care plan, 3 goals, the
    # referral and its Task
    assert summary.unchanged == 13
    assert store.watermarks.get(CONNECTION, "Goal") is not None
    assert store.conflicts.find() == []


async def test_a_clinicians_change_reaches_the_record_through_an_incremental_search(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    await pull(store, server, ctx, clock)
    watermark = store.watermarks.get(CONNECTION, "Goal")
    server.edit("Goal", pushed, set_code("achievementStatus", "achieved"))
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts) == (1, 0)
    assert local_goal(store).achievement_status == m.GoalAchievement.achieved
    (search,) = [r for r in server.sent("GET", "Goal") if "_lastUpdated" in r.url.params][-1:]
    assert search.url.params["_lastUpdated"].startswith("gt2025-03-01T11:5")  # minus 2 min
    assert store.watermarks.get(CONNECTION, "Goal") != watermark
    assert len(store.outbox.due(CONNECTION, clock())) == 0  # nothing local to push back


async def test_the_same_field_changed_on_both_sides_is_a_conflict_kept_for_a_person(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    mine = local_goal(store)
    mine.priority = m.GoalPriority.low
    store.put_records([mine], [], NOW)
    server.edit("Goal", pushed, set_code("priority", "medium-priority"))
    summary = await pull(store, server, ctx, clock)
    assert summary.conflicts == 1
    (conflict,) = store.conflicts.find()
    assert (conflict.record_id, conflict.fields) == (GOAL, ["priority"])
    assert local_goal(store).priority == m.GoalPriority.low  # manual: the local value stays


@pytest.mark.parametrize(
    "resolution", [("local", 1, "low-priority"), ("ehr", 0, "medium-priority")], ids=str
)
@pytest.mark.usefixtures("pushed")
async def test_a_resolved_conflict_sends_the_local_value_only_when_it_was_taken(
    store: Store,
    server: FhirServer,
    ctx: MappingContext,
    clock: Clock,
    resolution: tuple[str, int, str],
) -> None:
    """The link of a conflicted resource remembers what the server holds (the EHR's value),
    so once a person takes the local value the next push writes it; taking the EHR's sends
    nothing."""
    mine = local_goal(store)
    mine.priority = m.GoalPriority.low
    store.put_records([mine], [], NOW)
    server.edit("Goal", server.ours("Goal", GOAL)["id"], set_code("priority", "medium-priority"))
    await pull(store, server, ctx, clock)
    take, sent, on_server = resolution
    (conflict,) = store.conflicts.find()
    resolve_conflict(store, conflict.id, take, None, clock())
    async with server.client() as client:
        summary = await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    assert summary.updated == sent
    assert server.ours("Goal", GOAL)["priority"]["coding"][0]["code"] == on_server


async def test_ehr_wins_takes_the_remote_value_and_logs_the_dropped_one(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    mine = local_goal(store)
    mine.priority = m.GoalPriority.low
    store.put_records([mine], [], NOW)
    server.edit("Goal", pushed, set_code("priority", "medium-priority"))
    summary = await pull(store, server, ctx, clock, policy="ehr-wins")
    assert (summary.conflicts, summary.updated) == (0, 1)  # decided, not kept for a person
    assert store.conflicts.find() == []
    assert local_goal(store).priority == m.GoalPriority.medium
    (overruled,) = store.log.recent("overruled")
    assert "priority: ehr-wins; dropped" in (overruled.detail or "")


async def test_changes_to_different_fields_merge_and_the_local_one_is_queued_for_push(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    mine = local_goal(store)
    mine.priority = m.GoalPriority.low
    store.put_records([mine], [], NOW)
    server.edit("Goal", pushed, set_code("achievementStatus", "achieved"))
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts) == (1, 0)
    merged = local_goal(store)
    assert merged.priority == m.GoalPriority.low
    assert merged.achievement_status == m.GoalAchievement.achieved
    assert [e.record_id for e in store.outbox.due(CONNECTION, clock())] == [GOAL]


async def test_a_goal_created_in_the_ehr_becomes_a_record_and_one_of_a_stranger_is_skipped(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    await pull(store, server, ctx, clock)  # from now on, one search for all patients
    patient = server.ours("Patient", "pat-rivera")["id"]
    template = server.ours("Goal", GOAL)

    def new_goal(subject: str) -> Json:
        fresh = {k: v for k, v in template.items() if k not in ("id", "meta", "identifier")}
        return {**fresh, "subject": {"reference": subject}}

    created = server.add(new_goal(f"Patient/{patient}"))
    server.add(new_goal("Patient/somebody-else"))
    summary = await pull(store, server, ctx, clock)
    assert (summary.new, summary.skipped) == (1, 1)
    record = store.records.get("goal", created["id"])
    assert record is not None
    assert record.source == f"ehr:{CONNECTION}"


async def test_search_pages_are_followed_to_the_end(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    for goal in server.of_type("Goal"):
        server.edit("Goal", goal["id"], set_code("achievementStatus", "achieved"))
    summary = await pull(store, server, ctx, clock, page_size=2)
    assert summary.updated == 3
    goal_pages = [r for r in server.sent("GET", "Goal") if r.url.path == "/fhir/Goal"]
    assert [r.url.params.get("_offset") for r in goal_pages] == [None, "2"]
    assert all(
        isinstance(r, m.Goal) and r.achievement_status == m.GoalAchievement.achieved
        for r in store.records.of_patient("pat-rivera")
        if r.kind == "goal"
    )


async def test_a_care_plan_deleted_in_the_ehr_marks_the_record_deleted(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    await pull(store, server, ctx, clock)
    server.remove("CarePlan", server.ours("CarePlan", "cp-rivera-ccm")["id"])
    summary = await pull(store, server, ctx, clock)
    assert summary.deleted == 1
    assert store.records.is_deleted("careplan", "cp-rivera-ccm")
    assert server.sent("GET", "CarePlan/_history")


async def test_without_last_updated_each_patient_is_reread_and_compared(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(last_updated=False)
    store.put_records(patient_records(), [CONNECTION], NOW)
    async with server.client() as client:
        await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    await pull(store, server, ctx, clock)
    server.edit("Goal", server.ours("Goal", GOAL)["id"], set_code("achievementStatus", "achieved"))
    summary = await pull(store, server, ctx, clock)
    assert summary.updated == 1
    assert not [r for r in server.sent("GET") if "_lastUpdated" in r.url.params]
    searches = [r for r in server.sent("GET", "Goal") if r.url.path == "/fhir/Goal"]
    assert len(searches) == 2
    assert all("patient" in r.url.params for r in searches)


async def test_a_refused_last_updated_search_falls_back_per_patient_and_is_remembered(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    """Declared, yet refused (as Epic does on some searches): the edit is still found, and
    the next pull asks no ``_lastUpdated`` search of that type."""
    server = FhirServer(refuses_last_updated=True)
    store.put_records(patient_records(), [CONNECTION], NOW)
    async with server.client() as client:
        await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    await pull(store, server, ctx, clock)  # the first pull sets watermarks (per patient)
    server.edit("Goal", server.ours("Goal", GOAL)["id"], set_code("achievementStatus", "achieved"))
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.failed) == (1, 0)
    assert local_goal(store).achievement_status == m.GoalAchievement.achieved
    refused = {r.what: r for r in store.refusals.of(CONNECTION)}
    assert refused["Goal:search-_lastUpdated"].status == 400

    mark = len(server.requests)
    await pull(store, server, ctx, clock)
    goal_searches = [r for r in server.requests[mark:] if r.url.path == "/fhir/Goal"]
    assert goal_searches
    assert not [r for r in goal_searches if "_lastUpdated" in r.url.params]


async def test_a_type_another_process_pulls_is_left_to_it(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    assert store.leases.claim(CONNECTION, "pull", "Goal", holder=OTHER_HOLDER, now=NOW, seconds=600)
    server.edit("Goal", pushed, set_code("achievementStatus", "achieved"))
    summary = await pull(store, server, ctx, clock)
    assert summary.busy == 1
    assert not server.sent("GET", "Goal")
    assert local_goal(store).achievement_status != m.GoalAchievement.achieved
    assert store.watermarks.get(CONNECTION, "CarePlan") is not None


async def test_a_lease_lost_mid_pull_applies_nothing_of_that_type(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    server.edit("Goal", pushed, set_code("achievementStatus", "achieved"))
    inner = server.router.async_handler

    async def taking_over(request: httpx.Request) -> httpx.Response:
        leases = {lease.key: lease.holder for lease in store.leases.current(CONNECTION)}
        if request.url.path == "/fhir/Goal" and leases.get("Goal") != OTHER_HOLDER:
            # another process takes the Goal lease over (as from a holder it found dead); the
            # types pulled beside Goal keep theirs
            assert store.leases.claim(
                CONNECTION,
                "pull",
                "Goal",
                holder=OTHER_HOLDER,
                now=clock(),
                seconds=600,
                dead=[leases["Goal"]],
            )
        return await inner(request)

    summary = await pull(store, server, ctx, clock, transport=httpx.MockTransport(taking_over))
    assert summary.busy == 1
    assert local_goal(store).achievement_status != m.GoalAchievement.achieved
    assert store.watermarks.get(CONNECTION, "Goal") is None
    assert store.watermarks.get(CONNECTION, "Task") is not None  # the other types went on


async def test_a_pull_of_one_type_reads_only_that_type_from_the_server(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    """What a notification causes: the named type pulled since its watermark, nothing else."""
    await pull(store, server, ctx, clock)
    care_plans = store.watermarks.get(CONNECTION, "CarePlan")
    server.edit("Goal", pushed, set_code("achievementStatus", "achieved"))
    searched = len(server.sent("GET"))
    async with server.client() as client:
        summary = await Puller(store, client, CONNECTION, ctx, clock=clock).pull(types=("Goal",))
    assert summary.updated == 1
    assert local_goal(store).achievement_status == m.GoalAchievement.achieved
    paths = {r.url.path for r in server.sent("GET")[searched:]}
    assert {p for p in paths if not p.endswith("/metadata")} == {
        "/fhir/Goal",
        "/fhir/Goal/_history",
    }
    assert store.watermarks.get(CONNECTION, "CarePlan") == care_plans


async def test_the_types_of_a_level_are_pulled_side_by_side_and_levels_in_order(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: str
) -> None:
    """Two types of one dependency level are read at once (the first one's search is held at
    the server until a second type's search arrives); a level starts only when the one before
    it has ended, so a new resource's references to new ones of earlier levels resolve."""
    inner = server.router.async_handler
    level = {t: i for i, types in enumerate(PULL_LEVELS) for t in types}
    events: list[tuple[str, str]] = []  # (what, type)
    second = asyncio.Event()

    async def holding(request: httpx.Request) -> httpx.Response:
        resource_type = request.url.path.removeprefix("/fhir/")
        if request.method != "GET" or resource_type not in level:
            return await inner(request)
        events.append(("start", resource_type))
        if level[resource_type] == 1:
            if len([e for e in events if e[0] == "start" and level[e[1]] == 1]) == 1:
                try:  # the level's first search waits for a second type's
                    await asyncio.wait_for(second.wait(), timeout=5)
                except TimeoutError:
                    events.append(("held 5 s", resource_type))
            else:
                second.set()
        response = await inner(request)
        events.append(("end", resource_type))
        return response

    summary = await pull(store, server, ctx, clock, transport=httpx.MockTransport(holding))
    assert (summary.unchanged, summary.failed, summary.busy) == (13, 0, 0)
    assert not [e for e in events if e[0] == "held 5 s"]
    for at, (what, resource_type) in enumerate(events):
        if what == "start":  # every type of an earlier level has ended before
            earlier = {t for t in level if level[t] < level[resource_type]}
            ended = {t for w, t in events[:at] if w == "end"}
            assert earlier <= ended, (resource_type, earlier - ended)
    assert {t for _, t in events} == set(PULLED_TYPES)
