"""Push with routing: each connection's server gets only what is routed to it.

The real Pusher against in-memory FHIR servers (one per connection), on the real store.
"""

from __future__ import annotations

import pytest

from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Organization, Route, Routing, Store
from fhir_bridge.sync import Pusher, PushSummary
from tests.unit.sync.conftest import NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer

pytestmark = pytest.mark.anyio
NGUYEN = "pat-nguyen"  # three referrals: to a food pantry, a ride service, a benefits hub
RIVERA = "pat-rivera"
ROUTING = Routing(
    (
        Route("hospital-one", "listed"),
        Route("hospital-two", "listed"),
        Route("pantry", "listed", Organization(id="org-eastside-food-pantry")),
    )
)
DIRECTORY = {"Organization", "Practitioner", "PractitionerRole"}


async def push(
    store: Store, server: FhirServer, connection: str, ctx: MappingContext, clock: Clock
) -> PushSummary:
    async with server.client() as client:
        pusher = Pusher(store, client, connection, ctx, clock=clock, routing=ROUTING)
        return await pusher.push()


def load(store: Store) -> None:
    records = patient_records("sdoh-food-transportation.json") + patient_records()
    store.put_records(records, ROUTING, NOW)


async def test_a_hospital_gets_only_its_enrolled_patients(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    store.enrolments.enrol(RIVERA, "hospital-one", "MRN-7", NOW)
    load(store)
    one, two = FhirServer(), FhirServer()
    pushed = await push(store, one, "hospital-one", ctx, clock)
    assert pushed.failed == 0
    assert pushed.created > 0
    assert [p["identifier"][-1]["value"] for p in one.of_type("Patient")] == [RIVERA]
    patient_ref = f"Patient/{one.of_type('Patient')[0]['id']}"
    subjects = {r["subject"]["reference"] for t in ("CarePlan", "Goal") for r in one.of_type(t)}
    assert subjects == {patient_ref}
    nothing = await push(store, two, "hospital-two", ctx, clock)
    assert nothing.created == nothing.updated == 0
    assert two.resources == {}
    assert [r.method for r in two.requests] == ["GET"]  # the CapabilityStatement only


async def test_the_pantry_gets_its_referral_with_the_patient_and_nothing_else(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    load(store)
    pantry = FhirServer()
    pushed = await push(store, pantry, "pantry", ctx, clock)
    assert pushed.failed == 0
    types = {t for t, _ in pantry.resources}
    assert types - DIRECTORY == {"Patient", "ServiceRequest", "Task"}
    (request,) = pantry.of_type("ServiceRequest")
    assert request["identifier"][-1]["value"] == "ref-nguyen-pantry"
    assert "reasonReference" not in request  # the patient's problems stay behind
    (task,) = pantry.of_type("Task")
    assert task["focus"]["reference"] == f"ServiceRequest/{request['id']}"
    assert task["status"] == "completed"  # the referral's tracking
    (patient,) = pantry.of_type("Patient")
    assert patient["identifier"][-1]["value"] == NGUYEN


async def test_an_enrolled_hospital_gets_the_request_but_the_task_stays_with_the_pantry(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    store.enrolments.enrol(NGUYEN, "hospital-one", None, NOW)
    load(store)
    one = FhirServer()
    assert (await push(store, one, "hospital-one", ctx, clock)).failed == 0
    requests = {r["identifier"][-1]["value"] for r in one.of_type("ServiceRequest")}
    assert requests == {"ref-nguyen-pantry", "ref-nguyen-rides", "ref-nguyen-snap"}
    tasks = {t["identifier"][-1]["value"] for t in one.of_type("Task")}
    assert tasks == {"ref-nguyen-rides", "ref-nguyen-snap"}  # not the pantry's


async def test_unenrolling_stops_further_pushes(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    store.enrolments.enrol(RIVERA, "hospital-one", None, NOW)
    load(store)
    one = FhirServer()
    await push(store, one, "hospital-one", ctx, clock)
    gone = store.enrolments.unenrol(RIVERA, "hospital-one")
    held = {(x.resource_type, x.resource_id) for x in gone.remaining}
    assert ("Patient", one.of_type("Patient")[0]["id"]) in held
    assert not any(t in DIRECTORY for t, _ in held)
    on_server = {(t, rid) for (t, rid) in one.resources if t not in DIRECTORY}
    assert held == on_server  # every resource of the patient there, the referral's Task too
    assert any(t == "Task" for t, _ in held)
    records = patient_records()
    changed = [r.model_copy(update={"updated_at": clock.now}) for r in records]
    store.put_records(changed, ROUTING, NOW)
    writes = len(one.requests)
    again = await push(store, one, "hospital-one", ctx, clock)
    assert again.created == again.updated == 0
    assert len(one.requests) == writes + 1  # the CapabilityStatement, no write


async def test_records_stored_for_no_connection_all_go_on_the_first_push_to_a_url(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    """README's first example: `load` with nothing configured, then `push --fhir-url`: the
    URL is a connection the routing does not name, so it takes every record, at once."""
    store.put_records(patient_records(), [], clock())
    clock.advance(seconds=-30)  # even a clock behind the load's
    server = FhirServer()
    first = await push(store, server, "http://ehr.test/fhir", ctx, clock)
    assert first.created == 16
    assert first.failed == 0
    again = await push(store, server, "http://ehr.test/fhir", ctx, clock)
    assert again.created == again.updated == 0
