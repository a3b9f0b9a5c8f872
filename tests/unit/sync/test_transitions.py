"""Transitional care: the windows (pure), and a discharge pulled or notified starting exactly
one plan (the in-memory FHIR server plays the hospital)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext, from_fhir
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher, due_items
from fhir_bridge.sync._transitions import (
    add_business_days,
    business_days_between,
    discharge_of,
    is_high_complexity,
    plan_id,
    windows,
)
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
PATIENT = "pat-rivera"
FRIDAY = date(2025, 2, 28)


def encounter(subject: str, **changes: Any) -> Json:
    resource: Json = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
        },
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "32485007"}]}],
        "subject": {"reference": subject},
        "period": {"start": "2025-02-24T08:00:00Z", "end": "2025-02-28T15:00:00Z"},
        "hospitalization": {
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                        "code": "home",
                    }
                ]
            }
        },
    }
    resource.update(changes)
    return resource


# ------------------------------------------------------------------ the windows (pure)


def test_business_days_skip_weekends_and_the_holidays_given() -> None:
    assert add_business_days(FRIDAY, 2) == date(2025, 3, 4)  # Monday, Tuesday
    assert add_business_days(date(2025, 3, 3), 2) == date(2025, 3, 5)
    assert add_business_days(FRIDAY, 2, holidays={date(2025, 3, 3)}) == date(2025, 3, 5)
    assert business_days_between(FRIDAY, date(2025, 3, 4)) == 2
    assert business_days_between(FRIDAY, date(2025, 3, 2)) == 0  # the weekend only
    assert business_days_between(FRIDAY, FRIDAY) == 0


def test_the_visit_window_is_7_days_for_high_complexity_and_14_otherwise() -> None:
    high = windows(FRIDAY, high_complexity=True)
    moderate = windows(FRIDAY, high_complexity=False)
    assert (high.contact_by, high.visit_by, high.reconcile_by) == (
        date(2025, 3, 4),
        date(2025, 3, 7),
        date(2025, 3, 7),
    )
    assert moderate.visit_by == date(2025, 3, 14)
    assert moderate.contact_by == high.contact_by


def test_only_a_finished_encounter_with_a_discharge_disposition_is_a_discharge() -> None:
    found = discharge_of({**encounter("Patient/1"), "id": "e1"}, date(2025, 3, 9))
    assert found is not None
    assert (found.encounter_id, found.day, found.disposition) == ("e1", FRIDAY, "home")
    assert discharge_of({**encounter("Patient/1"), "status": "in-progress"}, FRIDAY) is None
    assert discharge_of({**encounter("Patient/1"), "hospitalization": {}}, FRIDAY) is None
    no_end = {**encounter("Patient/1"), "id": "e2", "period": {"start": "2025-02-24"}}
    undated = discharge_of(no_end, date(2025, 3, 1))
    assert undated is not None
    assert undated.day == date(2025, 3, 1)  # the day it was seen


def test_complexity_is_high_for_many_active_problems_or_a_readmission() -> None:
    records = patient_records()  # two active problems
    assert not is_high_complexity(FRIDAY, records)
    third = next(r for r in records if isinstance(r, m.Problem))
    more = [*records, third.model_copy(update={"id": "prob-rivera-ckd"})]
    assert is_high_complexity(FRIDAY, more)
    earlier = m.CarePlan.model_validate(
        {
            "id": "tcm-earlier",
            "updated_at": NOW,
            "patient": PATIENT,
            "status": "completed",
            "categories": [{"text": "Transitional care management"}],
            "period": {"start": "2025-02-10"},
        }
    )
    assert is_high_complexity(FRIDAY, [*records, earlier])
    assert not is_high_complexity(date(2025, 4, 30), [*records, earlier])  # over 30 days ago


# ------------------------------------------------------------------ the trigger


async def pull(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> PullSummary:
    async with server.client() as client:
        return await Puller(store, client, CONNECTION, ctx, clock=clock).pull()


@pytest.fixture
async def server_patient(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> str:
    store.put_records(patient_records(), [CONNECTION], NOW)
    async with server.client() as client:
        await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    await pull(store, server, ctx, clock)
    return f"Patient/{server.ours('Patient', PATIENT)['id']}"


def plans(store: Store) -> list[m.CarePlan]:
    return [
        r
        for r in store.records.of_patient(PATIENT)
        if isinstance(r, m.CarePlan) and r.id.startswith("tcm-")
    ]


async def test_a_pulled_discharge_starts_one_plan_with_its_three_due_items(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, server_patient: str
) -> None:
    stay = server.add(encounter(server_patient))
    server.add(encounter("Patient/somebody-else"))
    server.add({**encounter(server_patient), "status": "in-progress"})

    summary = await pull(store, server, ctx, clock)

    assert summary.transitions == 1
    assert summary.failed == 0, summary.problems
    stored = store.records.get("encounter", stay["id"])  # the stay itself, as a record
    assert stored is not None
    assert stored.source == f"ehr:{CONNECTION}"
    (plan,) = plans(store)
    assert plan.id == plan_id(CONNECTION, stay["id"])
    assert plan.status == m.CarePlanStatus.active
    assert plan.period is not None
    assert plan.period.start == "2025-02-28"
    kinds = [a.planned.kind for a in plan.activities if a.planned]
    assert kinds == ["CommunicationRequest", "Appointment", "Task"]
    due = due_items([plan], date(2025, 3, 5))
    assert [(d.what, d.due, d.overdue) for d in due] == [
        ("Interactive contact", date(2025, 3, 4), True),
        ("Face-to-face visit", date(2025, 3, 14), False),  # two active problems: moderate
        ("Medication reconciliation", date(2025, 3, 14), False),
    ]
    assert [e.record_id for e in store.outbox.due(CONNECTION, clock())] == [plan.id]
    (change,) = [c for c in store.changes.since(0, limit=100) if c.record_id == plan.id]
    assert change.change == "created"


async def test_the_same_discharge_seen_again_starts_nothing_more(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, server_patient: str
) -> None:
    stay = server.add(encounter(server_patient))
    assert (await pull(store, server, ctx, clock)).transitions == 1

    def note(resource: Json) -> None:  # a second version of the same stay
        resource["serviceType"] = {"text": "Pulmonology"}

    edited = server.edit("Encounter", stay["id"], note)
    clock.advance(minutes=1)
    again = await pull(store, server, ctx, clock)
    assert again.updated + again.unchanged + again.conflicts >= 1  # the new version was read
    clock.advance(minutes=1)
    server.edit("Encounter", edited["id"], note)  # and once more, as a notification's pull
    once_more = await pull(store, server, ctx, clock)
    assert (again.transitions, once_more.transitions) == (0, 0)
    assert len(plans(store)) == 1


async def test_a_plan_the_care_manager_deleted_is_not_started_again(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, server_patient: str
) -> None:
    stay = server.add(encounter(server_patient))
    await pull(store, server, ctx, clock)
    store.records.delete("careplan", plan_id(CONNECTION, stay["id"]), NOW)

    def note(resource: Json) -> None:  # the stay seen again, in a new version
        resource["serviceType"] = {"text": "Pulmonology"}

    server.edit("Encounter", stay["id"], note)
    clock.advance(minutes=1)
    summary = await pull(store, server, ctx, clock)
    assert summary.transitions == 0
    assert plans(store) == []


def test_create_once_refuses_a_record_already_there(store: Store) -> None:
    record = next(r for r in patient_records() if isinstance(r, m.CarePlan))
    now = datetime(2025, 3, 1, tzinfo=UTC)
    assert store.create_once(record, [CONNECTION], now, source=CONNECTION)
    changed = record.model_copy(update={"title": "another"})
    assert not store.create_once(changed, [CONNECTION], now, source=CONNECTION)
    kept = store.records.get("careplan", record.id)
    assert isinstance(kept, m.CarePlan)
    assert kept.title == record.title


async def test_a_stay_recorded_here_and_read_back_starts_nothing(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, server_patient: str
) -> None:
    """Our own pushed Encounter coming back by pull is no news of a discharge; the same
    resource without a record of ours behind it is."""
    ours = {"system": ctx.system("encounter"), "value": "enc-recorded-here"}
    stay = encounter(server_patient, identifier=[ours])
    (read,) = [r for r in from_fhir([(stay, None)], ctx).records if isinstance(r, m.Encounter)]
    store.put_records([read.model_copy(update={"id": ours["value"], "source": None})], [], NOW)
    server.add(stay)
    assert (await pull(store, server, ctx, clock)).transitions == 0

    clock.advance(minutes=1)
    server.add(encounter(server_patient, identifier=[{**ours, "value": "enc-of-the-hospital"}]))
    assert (await pull(store, server, ctx, clock)).transitions == 1
