"""Screenings go out as a QuestionnaireResponse and its Observations, and come back by pull of
the QuestionnaireResponse, against the in-memory FHIR server."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
FIXTURE = "month-diabetes-depression.json"
PHQ9 = "scr-mendes-phq9"
HRSN = "scr-mendes-hrsn"


async def pull(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> PullSummary:
    async with server.client() as client:
        return await Puller(store, client, CONNECTION, ctx, clock=clock).pull()


async def push(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> Any:
    async with server.client() as client:
        return await Pusher(store, client, CONNECTION, ctx, clock=clock).push()


@pytest.fixture
async def pushed(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> None:
    store.put_records(patient_records(FIXTURE), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    first = await pull(store, server, ctx, clock)
    assert (first.new, first.updated, first.failed) == (0, 0, 0)


def screening(store: Store, record_id: str) -> m.Screening:
    found = store.records.get("screening", record_id)
    assert isinstance(found, m.Screening)
    return found


async def test_a_screening_is_written_as_its_response_and_observations_before_the_concern(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    records = patient_records(FIXTURE)
    screenings = [r for r in records if isinstance(r, m.Screening)]
    assert len(server.of_type("QuestionnaireResponse")) == len(screenings)
    # one Observation per answer and one grouping them, per screening
    expected = sum(len(s.answers) + 1 for s in screenings)
    assert len(server.of_type("Observation")) == expected
    # the health concern's evidence points at the server's grouping Observation
    concern = server.ours("Condition", "prob-mendes-food")
    group = server.ours("Observation", HRSN)
    assert concern["evidence"][0]["detail"][0]["reference"] == f"Observation/{group['id']}"
    response = server.ours("QuestionnaireResponse", HRSN)
    assert group["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{response['id']}"
    assert store.outbox.due(CONNECTION, clock()) == []


async def test_an_amended_response_in_the_ehr_reaches_the_record_and_keeps_the_findings(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    before = screening(store, HRSN)
    response = server.ours("QuestionnaireResponse", HRSN)

    def amend(resource: Json) -> None:
        resource["status"] = "amended"
        resource["item"][3]["answer"] = [
            {"valueCoding": {"system": "http://loinc.org", "code": "LA33-6", "display": "Yes"}}
        ]

    server.edit("QuestionnaireResponse", response["id"], amend)
    clock.advance(minutes=5)
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts, summary.failed) == (1, 0, 0)
    after = screening(store, HRSN)
    assert after.status is m.ScreeningStatus.amended
    changed = after.answers[3].answer
    assert changed is not None
    assert changed.code == "LA33-6"
    # what only the Observations carry stays as the care manager recorded it
    assert [a.domain for a in after.answers] == [a.domain for a in before.answers]
    assert after.findings == before.findings


async def test_a_response_recorded_in_the_ehr_becomes_a_screening(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    mine = server.ours("QuestionnaireResponse", PHQ9)
    theirs = {k: v for k, v in mine.items() if k not in ("id", "meta", "identifier", "text")}
    theirs["authored"] = "2026-11-25T09:00:00-06:00"
    theirs["author"] = {"reference": "Practitioner/ehr-psychiatrist", "display": "Dr. Ehr"}
    theirs["item"][-2]["answer"] = [{"valueDecimal": 9}]
    created = server.add(theirs)
    clock.advance(minutes=5)
    summary = await pull(store, server, ctx, clock)
    assert (summary.new, summary.failed) == (1, 0)
    record = screening(store, created["id"])
    assert record.instrument is m.ScreeningInstrument.phq_9
    assert record.score == 9
    assert record.source == f"ehr:{CONNECTION}"
    assert record.patient.id == "pat-mendes"
