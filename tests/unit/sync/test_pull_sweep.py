"""A type read per managed patient (no watermark yet, or no ``_lastUpdated``): what the
sweep's watermark is, and that the next pull neither repeats it nor misses a change made
while it ran, against the in-memory FHIR server."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext, identifiers_of
from fhir_bridge.store import Store
from fhir_bridge.sync import PULLED_TYPES, Puller
from tests.unit.sync.conftest import CONNECTION, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json
from tests.unit.sync.test_pull import pull
from tests.unit.sync.test_pull_types import new_order, push

pytestmark = pytest.mark.anyio


def conditions_of(server: FhirServer, server_patient: str) -> list[Json]:
    return [c for c in server.of_type("Condition") if c["subject"]["reference"] == server_patient]


def resolve(resource: Json) -> None:
    resource["clinicalStatus"]["coding"][0]["code"] = "resolved"


async def test_a_type_the_ehr_holds_none_of_is_read_per_patient_once_then_by_last_updated(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """The fixture patient has no MedicationRequest: the first pull asks per patient and
    leaves the server's time of that read as the watermark; the next asks one ``_lastUpdated``
    search (not one per patient, every run) and finds an order entered since."""
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    assert not server.of_type("MedicationRequest")
    mark = len(server.requests)
    await pull(store, server, ctx, clock)
    (swept,) = [r for r in server.requests[mark:] if r.url.path == "/fhir/MedicationRequest"]
    assert "patient" in swept.url.params
    watermark = store.watermarks.get(CONNECTION, "MedicationRequest")
    assert watermark == server.time()  # the server's, not the bridge's clock

    patient = server.of_type("Patient")[0]["id"]
    server.add(new_order(f"Patient/{patient}"))
    mark = len(server.requests)
    summary = await pull(store, server, ctx, clock)
    (search,) = [r for r in server.requests[mark:] if r.url.path == "/fhir/MedicationRequest"]
    assert "_lastUpdated" in search.url.params
    assert "patient" not in search.url.params
    assert (summary.new, summary.failed) == (1, 0), summary.problems


class EditsWhileSwept(httpx.AsyncBaseTransport):
    """The server's transport; once the first patient's Conditions are answered, a clinician
    edits one of them, then one of the other patient's (read after it, so newer)."""

    def __init__(self, server: FhirServer) -> None:
        self.server = server
        self.inner = server.transport
        self.edited: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        read = request.url.params.get("patient")
        if request.url.path == "/fhir/Condition" and read and not self.edited:
            other = next(
                str(p["id"]) for p in self.server.of_type("Patient") if f"Patient/{p['id']}" != read
            )
            for server_patient in (read, f"Patient/{other}"):
                condition = conditions_of(self.server, server_patient)[0]
                self.server.edit("Condition", condition["id"], resolve)
                self.edited.append(condition["id"])
        return response


async def test_a_change_made_while_patients_are_read_one_by_one_is_read_by_the_next_pull(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """The sweep reads the second patient's edit, newer than the first patient's (made after
    the first patient was read): a watermark at the newest resource read would pass over the
    first one. It is the time the sweep began instead, so the next pull finds it."""
    records = patient_records() + patient_records("transitional-care-copd.json")
    store.put_records(records, [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    hook = EditsWhileSwept(server)
    first = await pull(store, server, ctx, clock, transport=hook, overlap=timedelta(0))
    assert len(hook.edited) == 2
    assert (first.updated, first.failed) == (1, 0), first.problems  # the second patient's

    summary = await pull(store, server, ctx, clock, overlap=timedelta(0))
    assert (summary.updated, summary.failed) == (1, 0), summary.problems  # the first's
    for condition_id in hook.edited:  # both edits reached their records
        (ours,) = identifiers_of(server.resources[("Condition", condition_id)])
        problem = store.records.get("problem", str(ours["value"]))
        assert isinstance(problem, m.Problem)
        assert problem.clinical_status == m.ClinicalStatus.resolved


async def test_a_pull_of_one_patient_moves_no_watermark(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    """``pull --patient`` reads one patient's resources: a watermark from it would let the next
    pull search by ``_lastUpdated`` past the other patients' older resources, never read."""
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    async with server.client() as client:
        summary = await Puller(store, client, CONNECTION, ctx, clock=clock).pull(
            patient_id="pat-rivera"
        )
    assert summary.unchanged > 0  # the patient's resources were read
    assert [t for t in PULLED_TYPES if store.watermarks.get(CONNECTION, t)] == []


class WithoutSearchTime(httpx.AsyncBaseTransport):
    """The server's transport, its searchset Bundles stripped of ``meta`` (a server that
    states no time of its search)."""

    def __init__(self, server: FhirServer) -> None:
        self.inner = server.transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = json.loads(await response.aread())
        if body.get("type") == "searchset":
            body.pop("meta", None)
        return httpx.Response(response.status_code, headers=response.headers, json=body)


async def test_a_sweep_without_the_servers_time_takes_the_bridges_from_its_start(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock
) -> None:
    store.put_records(patient_records(), [CONNECTION], NOW)
    await push(store, server, ctx, clock)
    began = clock().isoformat()
    await pull(store, server, ctx, clock, transport=WithoutSearchTime(server))
    assert store.watermarks.get(CONNECTION, "MedicationRequest") == began
