"""Pull against the real HAPI server: clinician edits come back, merged safely, once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.errors import LeaseLost
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary
from fhir_bridge.sync._merge import Policy
from tests.helpers import fixture_files
from tests.integration.sync_calls import find_on_server, pull, push_cleanly

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def pushed(database_url: str, fhir_base_url: str) -> Iterator[tuple[Store, MappingContext]]:
    """A store holding the fixtures, pushed under a namespace of this test's own."""
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)
    store = Store(database_url)
    store.put_records([r for p in fixture_files() for r in read_records(p)], ["hapi"], NOW)
    push_cleanly(store, fhir_base_url, ctx)
    yield store, ctx
    store.close()


def test_clinician_edits_come_back_and_a_second_pull_changes_nothing(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    """Goal achieved, Task completed, a new Goal, a plan revoked: one pull brings them all."""
    store, ctx = pushed
    goal = find_on_server(fhir, "Goal", ctx, "goal", "goal-rivera-a1c")
    goal["achievementStatus"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "achieved"}
        ]
    }
    assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200

    task = find_on_server(fhir, "Task", ctx, "referral_task", "ref-nguyen-rides")
    task["status"] = "completed"
    task["output"] = [
        {
            "type": {"text": "Resulting activity"},
            "valueReference": {"reference": "Procedure/rides-booked"},
        }
    ]
    assert fhir.put(f"/Task/{task['id']}", json=task).status_code == 200

    plan = find_on_server(fhir, "CarePlan", ctx, "careplan", "cp-okafor-tcm")
    plan["status"] = "revoked"
    assert fhir.put(f"/CarePlan/{plan['id']}", json=plan).status_code == 200

    patient = find_on_server(fhir, "Patient", ctx, "patient", "pat-rivera")
    new_goal = {
        "resourceType": "Goal",
        "lifecycleStatus": "proposed",
        "description": {"text": "Attend cardiac rehabilitation twice a week"},
        "subject": {"reference": f"Patient/{patient['id']}"},
    }
    created = fhir.post("/Goal", json=new_goal)
    assert created.status_code == 201

    first = pull(store, fhir_base_url, ctx)
    assert first.failed == 0, first.problems
    assert first.new == 1
    assert first.updated >= 3

    a1c = store.records.get("goal", "goal-rivera-a1c")
    assert isinstance(a1c, m.Goal)
    assert a1c.achievement_status is m.GoalAchievement.achieved
    rides = store.records.get("referral", "ref-nguyen-rides")
    assert isinstance(rides, m.Referral)
    assert rides.tracking is not None
    assert rides.tracking.status is m.TrackingStatus.completed
    assert rides.tracking.outputs[0].reference == "Procedure/rides-booked"
    tcm = store.records.get("careplan", "cp-okafor-tcm")
    assert isinstance(tcm, m.CarePlan)
    assert tcm.status is m.CarePlanStatus.cancelled
    new = [
        r
        for r in store.records.of_patient("pat-rivera")
        if isinstance(r, m.Goal)
        and r.description.text == "Attend cardiac rehabilitation twice a week"
    ]
    assert len(new) == 1
    assert new[0].patient.id == "pat-rivera"
    assert new[0].source == "ehr:hapi"

    second = pull(store, fhir_base_url, ctx)
    assert (second.new, second.updated, second.conflicts, second.deleted) == (0, 0, 0, 0)

    # the clinician deletes the goal they created: the record is marked deleted, not dropped
    assert fhir.delete(f"/Goal/{created.json()['id']}").status_code in (200, 204)
    third = pull(store, fhir_base_url, ctx)
    assert third.deleted == 1
    assert store.records.is_deleted("goal", new[0].id)
    assert store.records.get("goal", new[0].id) is None
    assert pull(store, fhir_base_url, ctx).deleted == 0


def _both_sides(
    pushed: tuple[Store, MappingContext],
    fhir: httpx.Client,
    local_priority: str,
    remote: dict[str, Any],
) -> None:
    store, ctx = pushed
    goal = store.records.get("goal", "goal-rivera-weight")
    assert isinstance(goal, m.Goal)
    goal.priority = m.GoalPriority(local_priority)
    store.put_records([goal], [], NOW)
    on_server = find_on_server(fhir, "Goal", ctx, "goal", "goal-rivera-weight")
    on_server.update(remote)
    assert fhir.put(f"/Goal/{on_server['id']}", json=on_server).status_code == 200


PRIORITY = "http://terminology.hl7.org/CodeSystem/goal-priority"


def test_changes_to_different_fields_merge(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    """Local priority change and EHR status change both survive; the local one goes back."""
    store, ctx = pushed
    _both_sides(pushed, fhir, "low", {"lifecycleStatus": "on-hold"})
    summary = pull(store, fhir_base_url, ctx)
    assert summary.conflicts == 0
    goal = store.records.get("goal", "goal-rivera-weight")
    assert isinstance(goal, m.Goal)
    assert goal.priority is m.GoalPriority.low
    assert goal.lifecycle_status is m.GoalLifecycle.on_hold
    assert [e.record_id for e in store.outbox.due("hapi", datetime.now(UTC))] == [
        "goal-rivera-weight"
    ]


@pytest.mark.parametrize(
    ("policy", "expected"), [("manual", "low"), ("ehr-wins", "medium"), ("local-wins", "low")]
)
def test_same_field_changed_on_both_sides(
    pushed: tuple[Store, MappingContext],
    fhir_base_url: str,
    fhir: httpx.Client,
    policy: Policy,
    expected: str,
) -> None:
    """Manual keeps a conflict with both values; the other policies pick their winner."""
    store, ctx = pushed
    _both_sides(
        pushed,
        fhir,
        "low",
        {"priority": {"coding": [{"system": PRIORITY, "code": "medium-priority"}]}},
    )
    summary = pull(store, fhir_base_url, ctx, policy)
    goal = store.records.get("goal", "goal-rivera-weight")
    assert isinstance(goal, m.Goal)
    assert goal.priority is not None
    assert goal.priority.value == expected
    conflicts = store.conflicts.find()
    if policy == "manual":
        assert summary.conflicts == 1
        (conflict,) = conflicts
        assert conflict.fields == ["priority"]
        assert (conflict.base or {})["priority"] == "high"
        assert conflict.local["priority"] == "low"
        assert conflict.remote["priority"] == "medium"
    else:
        assert conflicts == []
        (overruled,) = store.log.recent("overruled")
        assert overruled.identifier == "goal/goal-rivera-weight"
        lost = "medium" if policy == "local-wins" else "low"
        assert overruled.detail == f'priority: {policy}; dropped "{lost}"'


class _NoLastUpdated(httpx.AsyncBaseTransport):
    """The real server, declaring no ``_lastUpdated`` search (as some EHRs do)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.queries: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(request.url.query.decode())
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/metadata"):
            return response
        await response.aread()
        await response.aclose()
        statement = response.json()
        for rest in statement["rest"]:
            rest["searchParam"] = [
                p for p in rest.get("searchParam", []) if p["name"] != "_lastUpdated"
            ]
            for resource in rest["resource"]:
                resource["searchParam"] = [
                    p for p in resource.get("searchParam", []) if p["name"] != "_lastUpdated"
                ]
        return httpx.Response(
            200, json=statement, headers={"Content-Type": "application/fhir+json"}
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_without_last_updated_it_rereads_and_compares(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    """No _lastUpdated declared: per-patient searches find the edit; nothing else is applied."""
    store, ctx = pushed

    def pull() -> tuple[PullSummary, list[str]]:
        transport = _NoLastUpdated()

        async def run() -> PullSummary:
            async with FhirClient(fhir_base_url, transport=transport) as client:
                return await Puller(store, client, "hapi", ctx).pull()

        return asyncio.run(run()), transport.queries

    warm, _ = pull()  # sets watermarks; nothing changed yet
    assert (warm.new, warm.updated) == (0, 0)
    goal = find_on_server(fhir, "Goal", ctx, "goal", "goal-garcia-nofalls")
    goal["lifecycleStatus"] = "completed"
    assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200
    summary, queries = pull()
    assert not any("_lastUpdated" in q for q in queries)
    assert (summary.new, summary.updated, summary.conflicts) == (0, 1, 0)
    record = store.records.get("goal", "goal-garcia-nofalls")
    assert isinstance(record, m.Goal)
    assert record.lifecycle_status is m.GoalLifecycle.completed


def test_more_changes_than_one_page_all_arrive(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    """Pages of two resources: every changed goal still arrives, following next links."""
    store, ctx = pushed
    pull(store, fhir_base_url, ctx)  # watermark
    ids = [
        "goal-rivera-a1c",
        "goal-rivera-weight",
        "goal-rivera-sodium",
        "goal-harris-phq9",
        "goal-bennett-bp",
    ]
    for goal_id in ids:
        goal = find_on_server(fhir, "Goal", ctx, "goal", goal_id)
        goal["statusDate"] = "2025-03-05"
        assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200

    async def run() -> PullSummary:
        async with FhirClient(fhir_base_url) as client:
            return await Puller(store, client, "hapi", ctx, page_size=2).pull()

    summary = asyncio.run(run())
    assert summary.updated == len(ids)
    for goal_id in ids:
        record = store.records.get("goal", goal_id)
        assert isinstance(record, m.Goal)
        assert record.status_date == "2025-03-05"


def test_a_pull_killed_midway_then_rerun_ends_as_if_never_killed(
    tmp_path: Path, fhir_base_url: str, fhir: httpx.Client
) -> None:
    """SIGKILL `fhir-bridge pull` mid-run, run it again: the same records as a clean pull."""
    ns = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    ctx = MappingContext(namespace=ns, now=NOW)
    crashed_db, clean_db = tmp_path / "crashed.db", tmp_path / "clean.db"
    store = Store(f"sqlite:///{crashed_db}")
    store.put_records([r for p in fixture_files() for r in read_records(p)], ["hapi"], NOW)
    push_cleanly(store, fhir_base_url, ctx)
    store.close()
    shutil.copy(crashed_db, clean_db)
    for goal_id in (
        "goal-rivera-a1c",
        "goal-okafor-readmit",
        "goal-nguyen-food",
        "goal-harris-phq9",
        "goal-garcia-nofalls",
        "goal-bennett-bp",
        "goal-rivera-sodium",
        "goal-bennett-nephro",
    ):
        goal = find_on_server(fhir, "Goal", ctx, "goal", goal_id)
        goal["lifecycleStatus"] = "on-hold"
        assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200
    config = tmp_path / "fhir-bridge.toml"
    config.write_text(f'[connections.hapi]\nbase_url = "{fhir_base_url}"\nenrol = "all"\n')
    exe = str(Path(sys.executable).parent / "fhir-bridge")

    def env(db: Path) -> dict[str, str]:
        return {
            **os.environ,
            "FHIR_BRIDGE_NAMESPACE": ns,
            "FHIR_BRIDGE_CONFIG": str(config),
            "FHIR_BRIDGE_DATABASE_URL": f"sqlite:///{db}",
        }

    clean = subprocess.run(
        [exe, "pull", "--connection", "hapi"],
        env=env(clean_db),
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0, clean.stderr
    for delay in (1.2, 1.8, 2.4):
        process = subprocess.Popen(
            [exe, "pull", "--connection", "hapi"],
            env=env(crashed_db),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = subprocess.run(
        [exe, "pull", "--connection", "hapi"],
        env=env(crashed_db),
        capture_output=True,
        text=True,
        check=False,
    )
    assert final.returncode == 0, final.stderr

    def records(db: Path) -> dict[tuple[str, str], dict[str, Any]]:
        opened = Store(f"sqlite:///{db}")
        try:
            return {
                (r.kind, r.id): r.model_dump(mode="json")
                for pid in opened.records.patient_ids()
                for r in opened.records.of_patient(pid)
            }
        finally:
            opened.close()

    expected = records(clean_db)
    assert (
        sum(
            1
            for (kind, _), r in expected.items()
            if kind == "goal" and r["lifecycle_status"] == "on_hold"
        )
        == 8
    )
    assert records(crashed_db) == expected


def test_a_type_another_worker_is_pulling_is_left_to_it(
    pushed: tuple[Store, MappingContext], fhir_base_url: str
) -> None:
    """One puller per connection and type: while another holds the Goal watermark's lease,
    this pull skips Goal (its watermark untouched) and pulls the other types."""
    store, ctx = pushed
    other = store.leases.claim(
        "hapi", "pull", "Goal", holder="another-worker", now=datetime.now(UTC), seconds=300
    )
    assert other is not None
    summary = pull(store, fhir_base_url, ctx)
    assert summary.busy == 1
    assert store.watermarks.get("hapi", "Goal") is None
    assert store.watermarks.get("hapi", "CarePlan") is not None
    store.leases.release(other)
    assert pull(store, fhir_base_url, ctx).busy == 0
    assert store.watermarks.get("hapi", "Goal") is not None


def test_a_pull_whose_lease_was_taken_over_does_not_move_the_watermark(
    pushed: tuple[Store, MappingContext],
) -> None:
    """Applying a page needs the lease on the watermark: a lost one applies nothing."""
    store, _ = pushed
    now = datetime.now(UTC)
    stale = store.leases.claim("hapi", "pull", "Goal", holder="w1", now=now, seconds=1)
    assert stale is not None
    later = now + timedelta(seconds=5)
    assert (
        store.leases.claim("hapi", "pull", "Goal", holder="w2", now=later, seconds=60) is not None
    )
    with pytest.raises(LeaseLost):
        store.apply_pull(
            "hapi",
            "Goal",
            records=[],
            links=[],
            conflicts=[],
            watermark="2030-01-01T00:00:00Z",
            now=later,
            lease=stale,
        )
    assert store.watermarks.get("hapi", "Goal") is None
