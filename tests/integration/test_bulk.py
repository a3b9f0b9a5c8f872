"""pull --bulk against the real HAPI server: a Patient-level $export of the linked patients."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import EXPORTED_TYPES, BulkPuller, PullSummary
from tests.helpers import fixture_files
from tests.integration.sync_calls import find_on_server, push_cleanly

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _bulk(store: Store, url: str, ctx: MappingContext) -> tuple[PullSummary, int]:
    async def run() -> tuple[PullSummary, int]:
        async with FhirClient(url) as client:
            return await BulkPuller(store, client, "hapi", ctx).pull_bulk(longest_pause=2)

    return asyncio.run(run())


def test_a_fresh_store_with_only_patients_gets_their_records_by_export(
    database_url: str, fhir_base_url: str, fhir: httpx.Client, tmp_path: Path
) -> None:
    """One store pushes the whole panel; a second that knows only the patients (as after
    matching them in a new EHR) brings their plans, goals and referrals in by $export, a
    clinician's edit and a goal created in the EHR included; Tasks come by paged search."""
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)
    records = [r for p in fixture_files() for r in read_records(p)]
    source = Store(f"sqlite:///{tmp_path / 'source.db'}")
    source.put_records(records, ["hapi"], NOW)
    push_cleanly(source, fhir_base_url, ctx)
    source.close()

    goal = find_on_server(fhir, "Goal", ctx, "goal", "goal-rivera-a1c")
    goal["achievementStatus"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "achieved"}
        ]
    }
    assert fhir.put(f"/Goal/{goal['id']}", json=goal).status_code == 200
    created = fhir.post(
        "/Goal",
        json={
            "resourceType": "Goal",
            "lifecycleStatus": "proposed",
            "description": {"text": "Walk to the mailbox every morning"},
            "subject": goal["subject"],
        },
    )
    assert created.status_code == 201

    store = Store(database_url)
    try:
        store.put_records([r for r in records if isinstance(r, m.Patient)], ["hapi"], NOW)
        push_cleanly(store, fhir_base_url, ctx)
        summary, exported = _bulk(store, fhir_base_url, ctx)
        assert summary.failed == 0, summary.problems
        pushed = [r for r in records if r.kind in ("careplan", "goal", "referral")]
        # every plan, goal and referral of the panel, and the goal made in the EHR
        assert exported >= len(pushed) + 1
        for record in pushed:
            assert store.records.get(record.kind, record.id) is not None, record.id
        a1c = store.records.get("goal", "goal-rivera-a1c")
        assert isinstance(a1c, m.Goal)
        assert a1c.achievement_status is m.GoalAchievement.achieved
        assert store.records.get("goal", str(created.json()["id"])) is not None
        for resource_type in EXPORTED_TYPES:
            assert store.watermarks.get("hapi", resource_type) is not None
        # Task by paged search: the tracking of community referrals is there too
        tracked = [r for r in records if isinstance(r, m.Referral) and r.tracking is not None]
        assert tracked
        for referral in tracked:
            got = store.records.get("referral", referral.id)
            assert isinstance(got, m.Referral)
            assert got.tracking is not None

        again, _ = _bulk(store, fhir_base_url, ctx)  # nothing changed: nothing new
        assert (again.new, again.updated, again.failed) == (0, 0, 0)
    finally:
        store.close()
