"""Pull of everything push writes besides plans, goals and referrals: problems (Condition),
medications (MedicationStatement / MedicationRequest), care teams and the demographics the EHR
owns on its Patient, against the in-memory FHIR server."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, PullSummary, Pusher
from tests.unit.sync import fhir_server
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
PATIENT = "pat-rivera"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7"


async def pull(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, **options: Any
) -> PullSummary:
    async with server.client() as client:
        return await Puller(store, client, CONNECTION, ctx, clock=clock, **options).pull()


async def push(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, **options: Any
) -> None:
    async with server.client() as client:
        await Pusher(store, client, CONNECTION, ctx, clock=clock, **options).push()


@pytest.fixture
async def pushed(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> None:
    """The fixture patient stored, pushed (create mode) and pulled once (watermarks set)."""
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    first = await pull(store, server, ctx, clock)
    assert (first.new, first.updated, first.failed) == (0, 0, 0)


def record(store: Store, kind: str, record_id: str) -> m.Record:
    found = store.records.get(kind, record_id)
    assert found is not None
    return found


def new_order(server_patient: str) -> Json:
    """A prescription a clinician enters in the EHR."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": server_patient},
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


def without_ours(resource: Json, **changes: Any) -> Json:
    """A copy of ``resource`` as a clinician would create it: no id, meta or our identifier."""
    fresh = {k: v for k, v in resource.items() if k not in ("id", "meta", "identifier", "text")}
    return {**fresh, **changes}


async def test_every_type_push_writes_is_pulled_and_what_we_wrote_is_no_change(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    summary = await pull(store, server, ctx, clock)
    assert (summary.new, summary.updated, summary.conflicts) == (0, 0, 0)
    for resource_type in ("Patient", "Condition", "MedicationStatement", "CareTeam"):
        assert store.watermarks.get(CONNECTION, resource_type) is not None, resource_type
        searches = [r for r in server.sent("GET") if r.url.path == f"/fhir/{resource_type}"]
        assert searches, resource_type


async def test_a_problem_resolved_in_the_ehr_reaches_the_record(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    condition = server.ours("Condition", "prob-rivera-hf")

    def resolve(resource: Json) -> None:
        resource["clinicalStatus"]["coding"][0]["code"] = "resolved"
        resource["abatementDateTime"] = "2025-02-20"

    server.edit("Condition", condition["id"], resolve)
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts, summary.failed) == (1, 0, 0)
    problem = record(store, "problem", "prob-rivera-hf")
    assert isinstance(problem, m.Problem)
    assert problem.clinical_status == m.ClinicalStatus.resolved
    assert store.outbox.due(CONNECTION, clock()) == []  # nothing local to push back


async def test_a_medication_stopped_in_the_ehr_and_a_local_dose_change_merge(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    mine = record(store, "medication", "med-rivera-furosemide")
    assert isinstance(mine, m.Medication)
    store.put_records([mine.model_copy(update={"adherence": None})], [], NOW)
    statement = server.ours("MedicationStatement", "med-rivera-furosemide")

    def stop(resource: Json) -> None:
        resource["status"] = "stopped"

    server.edit("MedicationStatement", statement["id"], stop)
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts) == (1, 0)
    merged = record(store, "medication", "med-rivera-furosemide")
    assert isinstance(merged, m.Medication)
    assert merged.status == m.MedicationStatus.stopped
    assert merged.adherence is None  # the local change stays, and goes back to the EHR
    due = [e.record_id for e in store.outbox.due(CONNECTION, clock())]
    assert due == ["med-rivera-furosemide"]


async def test_the_same_problem_field_changed_on_both_sides_is_a_conflict(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    mine = record(store, "problem", "prob-rivera-t2dm")
    assert isinstance(mine, m.Problem)
    store.put_records(
        [mine.model_copy(update={"clinical_status": m.ClinicalStatus.remission})], [], NOW
    )
    condition = server.ours("Condition", "prob-rivera-t2dm")

    def inactive(resource: Json) -> None:
        resource["clinicalStatus"]["coding"][0]["code"] = "inactive"

    server.edit("Condition", condition["id"], inactive)
    summary = await pull(store, server, ctx, clock)
    assert summary.conflicts == 1
    (conflict,) = store.conflicts.find()
    assert (conflict.kind, conflict.record_id, conflict.fields) == (
        "problem",
        "prob-rivera-t2dm",
        ["clinical_status"],
    )
    kept = record(store, "problem", "prob-rivera-t2dm")
    assert isinstance(kept, m.Problem)
    assert kept.clinical_status == m.ClinicalStatus.remission


async def test_a_care_team_renamed_in_the_ehr_reaches_the_record(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    team = server.ours("CareTeam", "team-rivera")

    def rename(resource: Json) -> None:
        resource["name"] = "Heart failure clinic team"

    server.edit("CareTeam", team["id"], rename)
    summary = await pull(store, server, ctx, clock)
    assert summary.updated == 1
    found = record(store, "careteam", "team-rivera")
    assert isinstance(found, m.CareTeam)
    assert found.name == "Heart failure clinic team"


async def test_a_problem_and_a_prescription_entered_in_the_ehr_become_records(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    patient = server.ours("Patient", PATIENT)["id"]
    condition = server.add(without_ours(server.ours("Condition", "prob-rivera-hf")))
    order = server.add(new_order(f"Patient/{patient}"))
    stranger = without_ours(server.ours("Condition", "prob-rivera-t2dm"))
    server.add({**stranger, "subject": {"reference": "Patient/somebody-else"}})
    summary = await pull(store, server, ctx, clock)
    assert (summary.new, summary.failed) == (2, 0), summary.problems
    assert summary.skipped >= 1
    problem = record(store, "problem", condition["id"])
    assert problem.source == f"ehr:{CONNECTION}"
    medication = record(store, "medication", order["id"])
    assert isinstance(medication, m.Medication)
    assert medication.status == m.MedicationStatus.active
    assert medication.patient.id == PATIENT


async def test_a_condition_deleted_in_the_ehr_marks_the_problem_deleted_a_patient_never(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    server.remove("Condition", server.ours("Condition", "prob-rivera-hf")["id"])
    server.remove("Patient", server.ours("Patient", PATIENT)["id"])
    summary = await pull(store, server, ctx, clock)
    assert summary.deleted == 1
    assert store.records.is_deleted("problem", "prob-rivera-hf")
    assert not store.records.is_deleted("patient", PATIENT)
    assert not server.sent("GET", "Patient/_history")


# ------------------------------------------------------------------ the Patient's demographics


async def test_create_mode_takes_the_owned_demographics_and_nothing_else(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, pushed: None
) -> None:
    ours = server.ours("Patient", PATIENT)

    def move(resource: Json) -> None:
        resource["telecom"] = [{"system": "phone", "value": "555-0142", "use": "home"}]
        resource["communication"] = [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}}
        ]

    server.edit("Patient", ours["id"], move)
    summary = await pull(store, server, ctx, clock)
    assert (summary.updated, summary.conflicts, summary.failed) == (1, 0, 0)
    patient = record(store, "patient", PATIENT)
    assert isinstance(patient, m.Patient)
    assert patient.phone == "555-0142"
    assert patient.preferred_language is None  # not a demographic the EHR owns
    original = next(r for r in patient_records() if isinstance(r, m.Patient))
    assert (patient.names, patient.birth_date) == (original.names, original.birth_date)
    assert patient.source != f"ehr:{CONNECTION}"


async def test_match_mode_the_hospitals_patient_is_the_truth_and_never_written(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    theirs = server.add(
        {
            "resourceType": "Patient",
            "identifier": [{"system": MRN_SYSTEM, "value": "H-7781"}],
            "name": [{"family": "Rivera", "given": ["Marisa"]}],
            "birthDate": "1958-07-14",
            "gender": "female",
            "telecom": [{"system": "phone", "value": "555-9999"}],
        }
    )
    records: list[m.Record] = []
    mrn = m.Identifier(system=MRN_SYSTEM, value="H-7781")
    for r in patient_records():
        if isinstance(r, m.Patient):
            update = {"identifiers": [*r.identifiers, mrn], "phone": "555-0000"}
            records.append(r.model_copy(update=update))
        else:
            records.append(r)
    store.put_records(records, [CONNECTION], NOW)
    await push(store, server, ctx, clock, patient_mode="match", mrn_system=MRN_SYSTEM)
    writes = len(server.sent("PUT")) + len(server.sent("POST"))

    summary = await pull(store, server, ctx, clock, patient_mode="match")

    assert (summary.conflicts, summary.failed) == (0, 0)
    patient = record(store, "patient", PATIENT)
    assert isinstance(patient, m.Patient)
    assert patient.names[0].given == ["Marisa"]
    assert patient.phone == "555-9999"  # the local phone is replaced, not a conflict
    assert any(i.value == "H-7781" for i in patient.identifiers)  # ours kept
    assert store.conflicts.find() == []
    await push(store, server, ctx, clock, patient_mode="match", mrn_system=MRN_SYSTEM)
    assert len(server.sent("PUT")) + len(server.sent("POST")) == writes
    assert server.resources[("Patient", theirs["id"])]["meta"]["versionId"] == "1"


async def test_a_type_the_server_does_not_declare_is_not_searched(
    store: Store, ctx: MappingContext, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without Encounter or MedicationRequest: the other types are pulled as ever."""
    declared = tuple(t for t in fhir_server.SYNCED if t not in ("Encounter", "MedicationRequest"))
    monkeypatch.setattr(fhir_server, "SYNCED", declared)
    server = FhirServer()
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    summary = await pull(store, server, ctx, clock)
    assert summary.failed == 0, summary.problems
    assert not server.sent("GET", "Encounter")
    assert not server.sent("GET", "MedicationRequest")
    assert store.watermarks.get(CONNECTION, "Condition") is not None
