"""Push throughput: the shared directory once first, small patients packed into one bundle,
each bundle recorded in one store transaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from tests.unit.sync.conftest import CONNECTION, FIXTURES, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import FhirServer
from tests.unit.sync.test_push import bundles_sent, push

pytestmark = pytest.mark.anyio
DIRECTORY_TYPES = {"Practitioner", "PractitionerRole", "Organization"}


def patients(n: int, tmp_path: Path) -> list[m.Record]:
    """``n`` copies of the fixture patient (13 resources each), every record id their own,
    the practitioners and organisations they name shared."""
    base = (FIXTURES / "cc-diabetes-heart-failure.json").read_text()
    found: list[m.Record] = []
    for i in range(n):
        copy = tmp_path / f"patient-{i}.json"
        copy.write_text(base.replace("-rivera", f"-r{i}"))
        found += read_records(copy)
    assert len(found) == n * len(patient_records())
    return found


async def test_small_patients_go_packed_after_the_directory_written_once(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    records = patients(4, tmp_path)
    store.put_records(records, [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock, bundle_size=50)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    assert summary.created == 3 + 4 * 13
    sent = bundles_sent(server)
    # the directory (once, for all four), then three patients in one bundle, then the fourth
    assert [len(b["entry"]) for b in sent] == [3, 3 * 13, 13]
    assert {e["resource"]["resourceType"] for e in sent[0]["entry"]} <= DIRECTORY_TYPES
    assert not any(
        e["resource"]["resourceType"] in DIRECTORY_TYPES for b in sent[1:] for e in b["entry"]
    )
    for resource_type in DIRECTORY_TYPES:
        identifiers = [
            i["value"] for r in server.of_type(resource_type) for i in r.get("identifier", [])
        ]
        assert len(identifiers) == len(set(identifiers))  # no copy of a shared party
    assert store.outbox.due(CONNECTION, clock()) == []
    # each patient's references point at its own Patient on the server
    for i in range(4):
        patient_id = server.ours("Patient", f"pat-r{i}")["id"]
        plan = next(p for p in server.of_type("CarePlan") if f"-r{i}-" in json.dumps(p))
        assert plan["subject"]["reference"] == f"Patient/{patient_id}"


async def test_each_bundle_is_recorded_in_one_store_transaction(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    store.put_records(patients(4, tmp_path), [CONNECTION], NOW)
    calls: list[dict[str, Any]] = []
    record_push = store.record_push

    def counting(**kwargs: Any) -> None:
        calls.append(kwargs)
        record_push(**kwargs)

    store.record_push = counting  # type: ignore[method-assign]
    summary = await push(store, server, ctx, clock, bundle_size=50)
    assert summary.created == 55
    # one per bundle: the directory, the pack of three, the fourth patient
    assert [len(c["written"]) for c in calls] == [3, 39, 13]
    assert [len(c["closing"]) for c in calls] == [0, 3 * 12, 12]  # 12 records per patient
    assert [len(c["leases"]) for c in calls] == [0, 3, 1]
    assert len(store.log.recent(action="created")) == 55


async def test_a_patient_larger_than_a_bundle_goes_alone_in_several(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    store.put_records(patients(2, tmp_path), [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock, bundle_size=10)
    assert summary.created == 3 + 2 * 13
    assert [len(b["entry"]) for b in bundles_sent(server)] == [3, 10, 3, 10, 3]
    assert store.outbox.due(CONNECTION, clock()) == []
