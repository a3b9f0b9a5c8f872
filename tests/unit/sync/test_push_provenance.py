"""Push signs each transaction with a Provenance of its writes, where the server takes them;
a server refusing Provenance never stops a push."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.provenance import Provenance

from fhir_bridge.mappers import MappingContext, provenance
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary
from tests.unit.sync.conftest import CONNECTION, NAMESPACE, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer, Json

pytestmark = pytest.mark.anyio


async def push(store: Store, server: FhirServer, ctx: MappingContext, clock: Clock) -> PushSummary:
    async with server.client() as client:
        return await Pusher(store, client, CONNECTION, ctx, clock=clock).push()


def provenances(server: FhirServer) -> list[Json]:
    return server.of_type("Provenance")


def written(server: FhirServer) -> set[str]:
    return {f"{t}/{i}" for (t, i) in server.resources if t != "Provenance"}


async def test_each_transaction_carries_a_provenance_of_what_it_writes(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(provenance=True)
    store.put_records(patient_records(), [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock)
    assert summary.created > 0
    assert summary.failed == 0
    found = provenances(server)
    assert found
    targets = {t["reference"] for p in found for t in p["target"]}
    assert targets == written(server)  # every resource written, resolved to its server id
    first = found[0]
    assert first["recorded"].startswith(NOW.date().isoformat())
    roles = [a["type"]["coding"][0]["code"] for a in first["agent"]]
    assert roles == ["author", "transmitter"]
    transmitter = first["agent"][1]
    assert transmitter["who"]["type"] == "Device"
    assert transmitter["onBehalfOf"]["identifier"]["value"] == NAMESPACE


async def test_a_server_not_declaring_provenance_gets_none(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer()
    store.put_records(patient_records(), [CONNECTION], NOW)
    assert (await push(store, server, ctx, clock)).failed == 0
    assert provenances(server) == []


async def test_a_server_refusing_provenance_at_run_time_still_gets_the_push(
    store: Store, ctx: MappingContext, clock: Clock
) -> None:
    server = FhirServer(provenance=True, refuses_writes=frozenset({"Provenance"}))
    store.put_records(patient_records(), [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock)
    assert summary.failed == 0
    assert summary.dead_lettered == 0
    assert summary.created == len(written(server))
    assert provenances(server) == []
    assert [r.what for r in store.refusals.of(CONNECTION)] == ["Provenance:write"]


def test_the_provenance_is_a_valid_r4_resource() -> None:
    resource: dict[str, Any] = provenance(NAMESPACE, ["Goal/1", "urn:uuid:x"], NOW)
    parsed = Provenance.model_validate(resource)
    assert [t.reference for t in parsed.target] == ["Goal/1", "urn:uuid:x"]
    assert resource == provenance(NAMESPACE, ["Goal/1", "urn:uuid:x"], NOW)  # pure
