"""The community Task loop against a real HAPI server playing the food bank's platform: the
referrals go there as ServiceRequest + Task, the organisation moves each Task along on its own
server, and pull brings every step back, with its reason, notes and outputs. A local cancel
racing the organisation's in-progress is a conflict, not a silent overwrite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher, PushSummary
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NO_CACHE = {"Cache-Control": "no-cache"}
CONNECTION = "food-bank"
Json = dict[str, Any]


class Loop:
    """A store whose food and transport referrals were pushed to the community server."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.url = url
        self.ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)
        self.store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
        records = []
        for record in read_records(FIXTURES / "sdoh-food-transportation.json"):
            if isinstance(record, m.Referral) and record.tracking is not None:
                # the organisation has not answered yet: requested, nothing reported back
                requested = m.Tracking(
                    status=m.TrackingStatus.requested, owner=record.tracking.owner
                )
                record = record.model_copy(update={"tracking": requested})  # noqa: PLW2901
            records.append(record)
        self.store.put_records(records, [CONNECTION], NOW)
        pushed = self.push()
        assert pushed.failed == pushed.dead_lettered == 0

    def push(self) -> PushSummary:
        async def run() -> PushSummary:
            async with FhirClient(self.url) as client:
                return await Pusher(self.store, client, CONNECTION, self.ctx).push()

        return asyncio.run(run())

    def pull(self) -> PullSummary:
        async def run() -> PullSummary:
            async with FhirClient(self.url) as client:
                return await Puller(self.store, client, CONNECTION, self.ctx).pull()

        summary = asyncio.run(run())
        assert summary.failed == 0, summary.problems
        return summary

    def task(self, fhir: httpx.Client, referral: str) -> Json:
        params = {"identifier": f"{self.ctx.system('referral_task')}|{referral}"}
        (entry,) = fhir.get("/Task", params=params, headers=NO_CACHE).json()["entry"]
        return dict(entry["resource"])

    def organisation_sets(self, fhir: httpx.Client, referral: str, **elements: Any) -> None:
        task = {**self.task(fhir, referral), **elements}
        answer = fhir.put(f"/Task/{task['id']}", json=task)
        assert answer.status_code == 200, answer.text

    def tracking(self, referral: str) -> m.Tracking:
        record = self.store.records.get("referral", referral)
        assert isinstance(record, m.Referral)
        assert record.tracking is not None
        return record.tracking


@pytest.fixture
def loop(tmp_path: Path, community_url: str) -> Iterator[Loop]:
    made = Loop(tmp_path, community_url)
    yield made
    made.store.close()


@pytest.fixture
def community(community_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=community_url, timeout=60) as client:
        yield client


def test_the_referral_lands_as_a_service_request_and_its_task(
    loop: Loop, community: httpx.Client
) -> None:
    task = loop.task(community, "ref-nguyen-pantry")
    assert task["status"] == "requested"
    kind, _, sr_id = task["focus"]["reference"].partition("/")
    assert kind == "ServiceRequest"
    request = community.get(f"/ServiceRequest/{sr_id}", headers=NO_CACHE).json()
    assert request["identifier"][-1]["value"] == "ref-nguyen-pantry"


def test_each_status_the_organisation_sets_comes_back_on_pull(
    loop: Loop, community: httpx.Client
) -> None:
    loop.organisation_sets(community, "ref-nguyen-pantry", status="accepted")
    loop.organisation_sets(
        community,
        "ref-nguyen-rides",
        status="rejected",
        statusReason={"text": "no drivers on that route"},
        note=[{"text": "try the county paratransit line", "authorString": "Dispatcher"}],
    )
    loop.organisation_sets(
        community, "ref-nguyen-snap", status="cancelled", statusReason={"text": "duplicate"}
    )
    first = loop.pull()
    assert first.conflicts == 0
    assert loop.tracking("ref-nguyen-pantry").status is m.TrackingStatus.accepted
    rides = loop.tracking("ref-nguyen-rides")
    assert (rides.status, rides.reason) == (m.TrackingStatus.rejected, "no drivers on that route")
    assert [(n.text, n.author) for n in rides.notes] == [
        ("try the county paratransit line", "Dispatcher")
    ]
    snap = loop.tracking("ref-nguyen-snap")
    assert (snap.status, snap.reason) == (m.TrackingStatus.cancelled, "duplicate")

    loop.organisation_sets(community, "ref-nguyen-pantry", status="in-progress")
    loop.pull()
    assert loop.tracking("ref-nguyen-pantry").status is m.TrackingStatus.in_progress

    loop.organisation_sets(
        community,
        "ref-nguyen-pantry",
        status="completed",
        output=[
            {
                "type": {"text": "Resulting Activity"},
                "valueReference": {"reference": "Procedure/pantry-enrolled"},
            }
        ],
        note=[{"text": "enrolled for weekly boxes"}],
    )
    loop.pull()
    done = loop.tracking("ref-nguyen-pantry")
    assert done.status is m.TrackingStatus.completed
    assert [o.reference for o in done.outputs] == ["Procedure/pantry-enrolled"]
    assert [n.text for n in done.notes] == ["enrolled for weekly boxes"]

    # nothing of ours differs: a push writes nothing over the organisation's Tasks
    assert loop.push().updated == 0
    assert loop.task(community, "ref-nguyen-rides")["note"][0]["authorString"] == "Dispatcher"
    again = loop.pull()
    assert (again.updated, again.conflicts) == (0, 0)


def test_a_local_cancel_racing_the_organisations_in_progress_is_a_conflict(
    loop: Loop, community: httpx.Client
) -> None:
    record = loop.store.records.get("referral", "ref-nguyen-pantry")
    assert isinstance(record, m.Referral)
    assert record.tracking is not None
    cancelled = record.tracking.model_copy(
        update={"status": m.TrackingStatus.cancelled, "reason": "family moved away"}
    )
    loop.store.put_records([record.model_copy(update={"tracking": cancelled})], [], NOW)
    loop.organisation_sets(community, "ref-nguyen-pantry", status="in-progress")

    summary = loop.pull()

    assert summary.conflicts == 1
    (conflict,) = loop.store.conflicts.find()
    assert (conflict.connection, conflict.record_id) == (CONNECTION, "ref-nguyen-pantry")
    assert "tracking.status" in conflict.fields
    assert conflict.remote["tracking"]["status"] == "in_progress"
    assert loop.tracking("ref-nguyen-pantry").status is m.TrackingStatus.cancelled
    assert loop.task(community, "ref-nguyen-pantry")["status"] == "in-progress"  # untouched
    assert loop.push().updated == 0  # the conflict is open: nothing written over theirs
    assert loop.task(community, "ref-nguyen-pantry")["status"] == "in-progress"


def test_a_push_before_the_pull_leaves_the_organisations_status_alone(
    loop: Loop, community: httpx.Client
) -> None:
    record = loop.store.records.get("referral", "ref-nguyen-pantry")
    assert isinstance(record, m.Referral)
    assert record.tracking is not None
    cancelled = record.tracking.model_copy(update={"status": m.TrackingStatus.cancelled})
    loop.store.put_records([record.model_copy(update={"tracking": cancelled})], [CONNECTION], NOW)
    loop.organisation_sets(community, "ref-nguyen-pantry", status="in-progress")

    pushed = loop.push()

    assert (pushed.failed, pushed.dead_lettered) == (1, 0)  # tried again after the pull
    assert loop.task(community, "ref-nguyen-pantry")["status"] == "in-progress"
    assert loop.pull().conflicts == 1
