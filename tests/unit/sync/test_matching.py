"""Patient matching: the pure decisions (``_matching``) and push in match mode against the
in-memory FHIR server (the EHR already holds its patients; ours is never written over)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import PatientMatch, Store
from fhir_bridge.sync import Pusher, PushSummary
from fhir_bridge.sync._matching import (
    by_demographics,
    by_identifier,
    by_match_operation,
    demographic_score,
)
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio
PATIENT = "pat-rivera"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7"
OURS: Json = {
    "resourceType": "Patient",
    "name": [{"family": "Rivera", "given": ["Marisol"]}],
    "birthDate": "1958-07-14",
    "gender": "female",
}


def hospital_patient(family: str = "Rivera", given: str = "Marisol", **more: Any) -> Json:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "birthDate": "1958-07-14",
        "gender": "female",
        **more,
    }


def with_mrn(value: str, records: list[m.Record] | None = None) -> list[m.Record]:
    """The fixture patient's records, the patient carrying the hospital's MRN."""
    records = records if records is not None else patient_records()
    out: list[m.Record] = []
    for r in records:
        if isinstance(r, m.Patient):
            mrn = m.Identifier(system=MRN_SYSTEM, value=value)
            out.append(r.model_copy(update={"identifiers": [*r.identifiers, mrn]}))
        else:
            out.append(r)
    return out


async def push(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, **options: Any
) -> PushSummary:
    async with server.client() as client:
        pusher = Pusher(
            store,
            client,
            CONNECTION,
            ctx,
            clock=clock,
            patient_mode="match",
            mrn_system=MRN_SYSTEM,
            **options,
        )
        return await pusher.push()


def writes(server: FhirServer) -> int:
    return len(server.sent("POST")) + len(server.sent("PUT"))


# ------------------------------------------------------------------ the decisions (pure)


def test_one_patient_by_identifier_is_a_match_several_hold_none_goes_on() -> None:
    one = by_identifier([{"id": "h1"}])
    assert one is not None
    assert (one.state, one.server_id, one.score) == ("matched", "h1", 1.0)
    two = by_identifier([{"id": "h1"}, {"id": "h2"}])
    assert two is not None
    assert two.state == "held"
    assert two.candidates == 2
    assert "2 patients" in (two.reason or "")
    assert by_identifier([]) is None


def test_match_operation_counts_only_certain_candidates() -> None:
    def entry(pid: str, score: float, grade: str | None) -> Json:
        ext = [{"url": "http://hl7.org/fhir/StructureDefinition/match-grade", "valueCode": grade}]
        search: Json = {"score": score, **({"extension": ext} if grade else {})}
        return {"resource": {"resourceType": "Patient", "id": pid}, "search": search}

    certain = by_match_operation({"entry": [entry("a", 0.99, "certain"), entry("b", 0.8, None)]})
    assert certain is not None
    assert (certain.state, certain.server_id) == ("matched", "a")
    assert certain.step == "$match"
    # a probable grade does not count even with a high score; no grade: the score decides
    assert by_match_operation({"entry": [entry("a", 0.99, "probable")]}) is None
    ungraded = by_match_operation({"entry": [entry("c", 0.97, None)]})
    assert ungraded is not None
    assert ungraded.server_id == "c"
    both = by_match_operation({"entry": [entry("a", 1, "certain"), entry("b", 1, "certain")]})
    assert both is not None
    assert both.state == "held"
    assert both.candidates == 2


def test_demographics_need_one_candidate_holding_all_four() -> None:
    assert demographic_score(OURS, hospital_patient()) == 1.0
    assert demographic_score(OURS, hospital_patient(given="Marisa")) == 0.75
    assert demographic_score(OURS, hospital_patient(family="RIVERA")) == 1.0  # case aside
    assert by_demographics(OURS, [{**hospital_patient(), "id": "h"}]).server_id == "h"
    prefix = by_demographics(OURS, [{**hospital_patient(given="Marisolina"), "id": "h"}])
    assert prefix.state == "held"
    assert prefix.score == 0.75
    two = by_demographics(
        OURS, [{**hospital_patient(), "id": "a"}, {**hospital_patient(), "id": "b"}]
    )
    assert two.state == "held"
    assert two.candidates == 2
    assert "ambiguous" in (two.reason or "")
    none = by_demographics(OURS, [])
    assert none.state == "held"
    assert "no match" in (none.reason or "")


# ------------------------------------------------------------------ push in match mode


async def test_a_patient_found_by_mrn_is_referenced_and_never_written(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """The hospital's Patient (other demographics) stays as it is; ours point at it."""
    theirs = server.add(
        hospital_patient(
            given="Marisa",
            identifier=[{"system": MRN_SYSTEM, "value": "H-7781"}],
            telecom=[{"system": "phone", "value": "555-9999"}],
        )
    )
    store.put_records(with_mrn("H-7781"), [CONNECTION], NOW)

    summary = await push(store, server, ctx, clock)

    assert summary.held == 0
    assert summary.failed == summary.dead_lettered == 0
    assert len(server.of_type("Patient")) == 1
    kept = server.resources[("Patient", theirs["id"])]
    assert kept["meta"]["versionId"] == "1"
    assert kept["name"][0]["given"] == ["Marisa"]
    plan = server.ours("CarePlan", "cp-rivera-ccm")
    assert plan["subject"]["reference"] == f"Patient/{theirs['id']}"
    for g in server.of_type("Goal"):
        assert g["subject"]["reference"] == f"Patient/{theirs['id']}"
    match = store.matches.get(CONNECTION, PATIENT)
    assert match is not None
    assert (match.state, match.step) == ("matched", "identifier")
    assert match.server_id == theirs["id"]
    assert store.outbox.due(CONNECTION, clock()) == []

    # the care manager edits the patient: still nothing is written to the hospital's Patient
    patient = next(r for r in with_mrn("H-7781") if isinstance(r, m.Patient))
    store.put_records([patient.model_copy(update={"phone": "555-0000"})], [CONNECTION], NOW)
    before = writes(server)
    await push(store, server, ctx, clock)
    assert writes(server) == before
    assert server.resources[("Patient", theirs["id"])]["meta"]["versionId"] == "1"


async def test_two_demographic_candidates_hold_the_patient_until_accepted(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    first = server.add(hospital_patient())
    server.add(hospital_patient())
    store.put_records(patient_records(), [CONNECTION], NOW)  # no MRN for this hospital

    summary = await push(store, server, ctx, clock)

    assert summary.held == 1
    assert summary.created == summary.updated == 0
    assert writes(server) == 0
    held = store.matches.held(CONNECTION)
    assert [(h.patient_id, h.step, h.candidates) for h in held] == [(PATIENT, "demographics", 2)]
    assert "Rivera" not in (held[0].reason or "")  # counts, never names
    assert store.outbox.due(CONNECTION, clock()) == []
    assert store.outbox.depth(CONNECTION).held > 0
    assert store.outbox.dead_letters() == []

    # pushing again asks the server nothing about the held patient
    searches = len(server.sent("GET", "Patient"))
    again = await push(store, server, ctx, clock)
    assert again.held == 0
    assert len(server.sent("GET", "Patient")) == searches

    store.matches.save(
        PatientMatch(
            CONNECTION, PATIENT, "matched", first["id"], "accepted", None, 1, None, NOW, "test"
        )
    )
    released = await push(store, server, ctx, clock)
    assert released.created > 0
    assert released.held == 0
    assert len(server.of_type("Patient")) == 2  # no third
    plan = server.ours("CarePlan", "cp-rivera-ccm")
    assert plan["subject"]["reference"] == f"Patient/{first['id']}"


async def test_a_changed_record_of_a_held_patient_waits_too(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    store.put_records(patient_records(), [CONNECTION], NOW)
    assert (await push(store, server, ctx, clock)).held == 1  # nobody on the server
    match = store.matches.get(CONNECTION, PATIENT)
    assert match is not None
    assert match.reason == "no match: demographics found no patient"
    goal = next(r for r in patient_records() if isinstance(r, m.Goal))
    store.put_records([goal.model_copy(update={"notes": [m.Note(text="x")]})], [CONNECTION], NOW)
    assert len(store.outbox.due(CONNECTION, clock())) == 1
    await push(store, server, ctx, clock)
    assert store.outbox.due(CONNECTION, clock()) == []
    assert writes(server) == 0
    assert store.outbox.dead_letters() == []
    assert store.outbox.depth(CONNECTION).held > 1
    # forgetting the decision releases every held entry, due now
    assert store.matches.forget(CONNECTION, PATIENT, NOW)
    assert len(store.outbox.due(CONNECTION, clock())) > 1
    assert store.outbox.depth(CONNECTION).held == 0


async def test_match_operation_is_asked_where_the_server_declares_it(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    asked: list[Json] = []

    def grade(sent: Json) -> list[tuple[str, float, str | None]]:
        asked.append(sent)
        return [(theirs["id"], 0.98, "certain")]

    server = FhirServer(patient_match=grade)
    theirs = server.add(hospital_patient(given="Mari"))
    server.add(hospital_patient())  # demographics alone would have been ambiguous... or wrong
    store.put_records(patient_records(), [CONNECTION], NOW)

    summary = await push(store, server, ctx, clock)

    assert summary.held == 0
    assert len(asked) == 1
    assert all(i["system"] != f"{ctx.namespace}/patient" for i in asked[0].get("identifier", []))
    match = store.matches.get(CONNECTION, PATIENT)
    assert match is not None
    assert (match.step, match.server_id) == ("$match", theirs["id"])
    assert server.ours("CarePlan", "cp-rivera-ccm")["subject"]["reference"] == (
        f"Patient/{theirs['id']}"
    )


async def test_one_exact_demographic_candidate_is_a_match(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    theirs = server.add(hospital_patient())
    server.add(hospital_patient(given="Maria"))  # another patient: not found by the search
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    match = store.matches.get(CONNECTION, PATIENT)
    assert match is not None
    assert (match.step, match.score) == ("demographics", 1.0)
    assert match.server_id == theirs["id"]


async def test_practitioners_found_by_npi_are_linked_not_created_nor_overwritten(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    server.add(hospital_patient(identifier=[{"system": MRN_SYSTEM, "value": "H-1"}]))
    records = with_mrn("H-1")
    # the NPI the fixture's care plan author (Ana Lopez) carries, a valid one (US Core)
    plan_record = next(r for r in records if isinstance(r, m.CarePlan))
    assert plan_record.author is not None
    value = next(i.value for i in plan_record.author.identifiers if i.system == m.NPI_SYSTEM)
    assert m.is_valid_npi(value)
    npi = {"system": m.NPI_SYSTEM, "value": value}
    theirs = server.add(
        {"resourceType": "Practitioner", "identifier": [npi], "name": [{"family": "Lopez"}]}
    )
    store.put_records(records, [CONNECTION], NOW)

    await push(store, server, ctx, clock)

    lopez = [
        p
        for p in server.of_type("Practitioner")
        if any(i.get("value") == value for i in p.get("identifier", []))
    ]
    assert [p["id"] for p in lopez] == [theirs["id"]]
    assert server.resources[("Practitioner", theirs["id"])]["meta"]["versionId"] == "1"
    plan = server.ours("CarePlan", "cp-rivera-ccm")
    assert plan["author"]["reference"] == f"Practitioner/{theirs['id']}"
    # others with no match on the server are created as before
    assert len(server.of_type("Practitioner")) > 1


async def test_create_mode_writes_our_patient_as_before(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    store.put_records(patient_records(), [CONNECTION], NOW)
    async with server.client() as client:
        summary = await Pusher(store, client, CONNECTION, ctx, clock=clock).push()
    assert summary.held == 0
    assert server.ours("Patient", PATIENT)["name"][0]["family"] == "Rivera"
    assert store.matches.get(CONNECTION, PATIENT) is None
