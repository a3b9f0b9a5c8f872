"""Pull of problems, medications, care teams and the Patient's demographics against the real
HAPI server (shared: each test pushes under a namespace of its own)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary
from tests.helpers import FIXTURES
from tests.integration.sync_calls import find_on_server, pull, push_cleanly

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PATIENT = "pat-rivera"


@pytest.fixture
def pushed(database_url: str, fhir_base_url: str) -> Iterator[tuple[Store, MappingContext]]:
    """One fixture patient pushed under this test's namespace and pulled once."""
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)
    store = Store(database_url)
    store.put_records(read_records(FIXTURES / "cc-diabetes-heart-failure.json"), ["hapi"], NOW)
    push_cleanly(store, fhir_base_url, ctx)
    first = pull(store, fhir_base_url, ctx)
    assert (first.new, first.updated, first.failed) == (0, 0, 0), first.problems
    yield store, ctx
    store.close()


def test_ehr_edits_to_problems_medications_teams_and_demographics_come_back_once(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    store, ctx = pushed
    condition = find_on_server(fhir, "Condition", ctx, "problem", "prob-rivera-hf")
    condition["clinicalStatus"]["coding"][0]["code"] = "resolved"
    condition["abatementDateTime"] = "2025-02-20"
    assert fhir.put(f"/Condition/{condition['id']}", json=condition).status_code == 200

    statement = find_on_server(
        fhir, "MedicationStatement", ctx, "medication", "med-rivera-furosemide"
    )
    statement["status"] = "stopped"
    assert fhir.put(f"/MedicationStatement/{statement['id']}", json=statement).status_code == 200

    team = find_on_server(fhir, "CareTeam", ctx, "careteam", "team-rivera")
    team["name"] = "Heart failure clinic team"
    assert fhir.put(f"/CareTeam/{team['id']}", json=team).status_code == 200

    patient = find_on_server(fhir, "Patient", ctx, "patient", PATIENT)
    patient["telecom"] = [{"system": "phone", "value": "555-0142", "use": "home"}]
    patient["communication"] = [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}}
    ]
    assert fhir.put(f"/Patient/{patient['id']}", json=patient).status_code == 200

    order = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient['id']}"},
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "197361",
                    "display": "amlodipine 5 MG Oral Tablet",
                }
            ]
        },
        "authoredOn": "2025-02-25",
    }
    created = fhir.post("/MedicationRequest", json=order)
    assert created.status_code == 201

    summary = pull(store, fhir_base_url, ctx)
    assert (summary.failed, summary.conflicts) == (0, 0), summary.problems
    assert (summary.new, summary.updated) == (1, 4)

    problem = store.records.get("problem", "prob-rivera-hf")
    assert isinstance(problem, m.Problem)
    assert problem.clinical_status is m.ClinicalStatus.resolved
    medication = store.records.get("medication", "med-rivera-furosemide")
    assert isinstance(medication, m.Medication)
    assert medication.status is m.MedicationStatus.stopped
    careteam = store.records.get("careteam", "team-rivera")
    assert isinstance(careteam, m.CareTeam)
    assert careteam.name == "Heart failure clinic team"
    ours = store.records.get("patient", PATIENT)
    assert isinstance(ours, m.Patient)
    assert ours.phone == "555-0142"
    assert ours.preferred_language is None  # not one of the demographics the EHR owns
    new = store.records.get("medication", created.json()["id"])
    assert isinstance(new, m.Medication)
    assert (new.patient.id, new.source) == (PATIENT, "ehr:hapi")

    again = pull(store, fhir_base_url, ctx)
    assert (again.new, again.updated, again.conflicts, again.failed) == (0, 0, 0, 0)

    # the prescriber deletes the order they entered: the record is marked deleted; a Patient
    # deleted in the EHR is never read as a deletion (no Patient history is asked for)
    assert fhir.delete(f"/MedicationRequest/{created.json()['id']}").status_code in (200, 204)
    third = pull(store, fhir_base_url, ctx)
    assert third.deleted == 1
    assert store.records.is_deleted("medication", created.json()["id"])
    assert not store.records.is_deleted("patient", PATIENT)


def test_a_discharge_in_the_ehr_starts_exactly_one_transitional_care_plan(
    pushed: tuple[Store, MappingContext], fhir_base_url: str, fhir: httpx.Client
) -> None:
    store, ctx = pushed
    patient = find_on_server(fhir, "Patient", ctx, "patient", PATIENT)
    stay = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "32485007"}]}],
        "subject": {"reference": f"Patient/{patient['id']}"},
        "period": {"start": "2025-02-24T08:00:00Z"},
    }
    created = fhir.post("/Encounter", json=stay)
    assert created.status_code == 201
    admitted = pull(store, fhir_base_url, ctx)
    assert admitted.transitions == 0  # still in hospital

    finished = {
        **created.json(),
        "status": "finished",
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
    assert fhir.put(f"/Encounter/{finished['id']}", json=finished).status_code == 200
    first = pull(store, fhir_base_url, ctx)
    assert first.transitions == 1, first.problems

    # the hospital corrects the stay (a second version), and a notification repeats it
    finished["serviceType"] = {"text": "Pulmonology"}
    again = fhir.put(f"/Encounter/{finished['id']}", json=finished)
    assert again.status_code == 200
    second = pull(store, fhir_base_url, ctx)

    async def notify() -> PullSummary:  # what a notification causes: a pull of its type
        async with FhirClient(fhir_base_url) as client:
            return await Puller(store, client, "hapi", ctx).pull(types=("Encounter",))

    notified = asyncio.run(notify())
    assert (second.transitions, notified.transitions) == (0, 0)
    plans = [
        r
        for r in store.records.of_patient(PATIENT)
        if isinstance(r, m.CarePlan) and r.id.startswith("tcm-")
    ]
    assert len(plans) == 1
    (plan,) = plans
    assert plan.period is not None
    assert plan.period.start == "2025-02-28"
    assert [a.planned.kind for a in plan.activities if a.planned] == [
        "CommunicationRequest",
        "Appointment",
        "Task",
    ]
