"""The FHIR client against the real local HAPI server (shared: every test uses fresh ids)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhir_bridge.errors import ResourceGone, ResourceNotFound, VersionConflict
from fhir_bridge.fhir import FhirClient, entry_results, write_strategy

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Json = dict[str, Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def system() -> str:
    """An identifier system no other run or test uses."""
    return f"https://bridge.test/it/{uuid.uuid4()}"


def patient(system: str, value: str = "1") -> Json:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "active": True,
    }


async def test_capabilities_of_hapi(fhir_base_url: str) -> None:
    """HAPI's statement parses: software, transaction, conditional ops and If-Match on Goal."""
    async with FhirClient(fhir_base_url) as fhir:
        caps = await fhir.capabilities()
    assert "HAPI" in (caps.software_name or "")
    assert caps.fhir_version == "4.0.1"
    assert caps.supports_transaction()
    assert caps.supports_last_updated("CarePlan")
    strategy = write_strategy(caps, "Goal")
    assert (strategy.writable, strategy.bundle, strategy.upsert, strategy.if_match) == (
        True,
        "transaction",
        "conditional-update",
        True,
    )


async def test_create_read_vread(fhir_base_url: str, system: str) -> None:
    """A created resource reads back, and its first version is there by vread."""
    async with FhirClient(fhir_base_url) as fhir:
        created = await fhir.create(patient(system))
        assert created.created
        assert created.status == 201
        assert created.id is not None
        assert created.version_id == "1"
        assert created.resource is not None
        read = await fhir.read("Patient", created.id)
        assert read["identifier"][0]["system"] == system
        version = await fhir.vread("Patient", created.id, "1")
        assert version["meta"]["versionId"] == "1"


async def test_conditional_create_twice_makes_one(fhir_base_url: str, system: str) -> None:
    """If-None-Exist twice: the second answers created=False with the same id."""
    query = f"identifier={system}|1"
    async with FhirClient(fhir_base_url) as fhir:
        first = await fhir.create(patient(system), if_none_exist=query)
        second = await fhir.create(patient(system), if_none_exist=query)
        found = [r async for r in fhir.search("Patient", {"identifier": f"{system}|1"})]
    assert first.created
    assert not second.created
    assert second.status == 200
    assert second.id == first.id
    assert [r["id"] for r in found] == [first.id]


async def test_conditional_update_creates_then_updates(fhir_base_url: str, system: str) -> None:
    """PUT Type?identifier=... creates on no match, updates the match after."""
    query = f"identifier={system}|1"
    async with FhirClient(fhir_base_url) as fhir:
        first = await fhir.conditional_update(patient(system), query)
        changed = {**patient(system), "active": False}
        second = await fhir.conditional_update(changed, query, if_match=first.version_id)
    assert first.created
    assert not second.created
    assert (second.id, second.version_id) == (first.id, "2")


async def test_stale_if_match_is_a_version_conflict(fhir_base_url: str, system: str) -> None:
    """Updating with an old version: VersionConflict. HAPI answers 409 (HAPI-0989), not 412."""
    async with FhirClient(fhir_base_url) as fhir:
        created = await fhir.create(patient(system))
        current = {**patient(system), "id": created.id, "active": False}
        updated = await fhir.update(current, if_match=created.version_id)
        assert updated.version_id == "2"
        with pytest.raises(VersionConflict) as caught:
            await fhir.update(current, if_match="1")
    assert caught.value.status == 409
    assert "HAPI-0989" in str(caught.value)


async def test_search_paging_follows_next_links(fhir_base_url: str, system: str) -> None:
    """Five matches at _count=2 come in three pages, all five found exactly once."""
    async with FhirClient(fhir_base_url) as fhir:
        ids = {(await fhir.create(patient(system, str(n)))).id for n in range(5)}
        params = {"identifier": f"{system}|", "_count": "2"}
        pages = [p async for p in fhir.search_bundles("Patient", params)]
        found = [r["id"] async for r in fhir.search("Patient", params)]
    assert [len(p.get("entry") or []) for p in pages] == [2, 2, 1]
    assert len(found) == 5
    assert set(found) == ids


async def test_history(fhir_base_url: str, system: str) -> None:
    """Instance history lists both versions; type history since a moment includes the change."""
    since = datetime.now(UTC) - timedelta(seconds=5)
    async with FhirClient(fhir_base_url) as fhir:
        created = await fhir.create(patient(system))
        assert created.id is not None
        await fhir.update({**patient(system), "id": created.id, "active": False})
        versions = [
            e["resource"]["meta"]["versionId"] async for e in fhir.history("Patient", created.id)
        ]
        recent = [
            e["resource"]["id"]
            async for e in fhir.history("Patient", since=since, count=50)
            if "resource" in e
        ]
    assert sorted(versions) == ["1", "2"]
    assert created.id in recent


async def test_transaction_with_urn_uuid_references(fhir_base_url: str, system: str) -> None:
    """A transaction rewrites urn:uuid references to the server ids it assigns."""
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    goal = {
        "resourceType": "Goal",
        "identifier": [{"system": system, "value": "goal-1"}],
        "lifecycleStatus": "active",
        "description": {"text": "Walk daily"},
        "subject": {"reference": patient_url},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": patient(system),
                "request": {"method": "PUT", "url": f"Patient?identifier={system}|1"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": goal,
                "request": {"method": "PUT", "url": f"Goal?identifier={system}|goal-1"},
            },
        ],
    }
    async with FhirClient(fhir_base_url) as fhir:
        response = await fhir.transaction(bundle)
        results = entry_results(response)
        assert [r.status for r in results] == [201, 201]
        patient_id, goal_id = results[0].id, results[1].id
        assert patient_id is not None
        assert goal_id is not None
        stored = await fhir.read("Goal", goal_id)
        again = entry_results(await fhir.transaction(bundle))
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    assert [r.id for r in again] == [patient_id, goal_id]  # conditional: no duplicates
    assert all(r.status == 200 for r in again)


async def test_batch_reports_entries_one_by_one(fhir_base_url: str, system: str) -> None:
    """In a batch, a failing entry (404 read) leaves the others done, each with its status."""
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": patient(system),
                "request": {"method": "PUT", "url": f"Patient?identifier={system}|1"},
            },
            {"request": {"method": "GET", "url": f"Patient/missing-{uuid.uuid4().hex[:12]}"}},
        ],
    }
    async with FhirClient(fhir_base_url) as fhir:
        results = entry_results(await fhir.batch(bundle))
    assert results[0].ok
    assert results[0].status == 201
    assert results[1].status == 404
    assert not results[1].ok


async def test_delete_then_read(fhir_base_url: str, system: str) -> None:
    """A deleted resource reads as gone (HAPI: 410) or not found."""
    async with FhirClient(fhir_base_url) as fhir:
        created = await fhir.create(patient(system))
        assert created.id is not None
        await fhir.delete("Patient", created.id)
        with pytest.raises((ResourceGone, ResourceNotFound)) as caught:
            await fhir.read("Patient", created.id)
    assert caught.value.status == 410
