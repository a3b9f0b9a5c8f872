"""What the mappers emit is accepted by the real HAPI server, with R4 validation switched on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext, from_fhir, identifiers_of, to_entries
from tests.helpers import EXAMPLES, FIXTURES, fixture_files, resources_in

pytestmark = pytest.mark.integration
CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))


def _conditional_url(resource: dict) -> str:
    """``Type?identifier=system|value`` by the resource's own (last) identifier."""
    own = identifiers_of(resource)[-1]
    return f"{resource['resourceType']}?identifier={own['system']}|{own['value']}"


def _transaction(entries: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": e["fullUrl"],
                "resource": e["resource"],
                "request": {"method": "PUT", "url": _conditional_url(e["resource"])},
            }
            for e in entries
        ],
    }


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_resource_of_a_fixture_is_accepted_by_validating_hapi(
    validating_base_url: str, path: Path
) -> None:
    entries = [
        {"fullUrl": e.full_url, "resource": e.resource} for e in to_entries(read_records(path), CTX)
    ]
    with httpx.Client(timeout=120) as client:
        response = client.post(
            validating_base_url,
            json=_transaction(entries),
            headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
        )
    assert response.status_code == 200, response.text[:3000]
    results = response.json()["entry"]
    assert len(results) == len(entries)
    assert all(r["response"]["status"].startswith(("200", "201")) for r in results)


def test_medication_requests_are_accepted_by_validating_hapi(validating_base_url: str) -> None:
    """A fixture's medications sent as MedicationRequests, and US Core's four examples read
    and mapped back, pass the validating server."""

    records = read_records(FIXTURES / "cc-diabetes-heart-failure.json")
    patient = next(r for r in records if isinstance(r, m.Patient))
    requests = []
    for record in records:
        if isinstance(record, m.Medication):
            data = record.model_dump(exclude={"effective", "effective_period", "date_asserted"})
            data |= {"id": f"{record.id}-rx", "adherence": None}
            data["request"] = {
                "intent": "order",
                "requester": {"kind": "practitioner", "id": "rx-prescriber", "name": "Dr Rx"},
            }
            if data["status"] in ("intended", "not_taken"):
                data["status"] = "draft"
            requests.append(m.Medication.model_validate(data))
    assert requests
    for path in sorted((EXAMPLES / "us-core-7.0.0").glob("MedicationRequest-*.json")):
        (imported,) = from_fhir(resources_in(path), CTX).records
        assert isinstance(imported, m.Medication)
        data = imported.model_dump()
        # point the example at the fixture's patient and at no resource the server lacks
        data |= {"patient": {"id": patient.id}, "information_source": None, "reasons": []}
        data["fhir_extras"] = {}
        data["request"]["requester"] = {
            "kind": "practitioner",
            "id": "rx-prescriber",
            "name": "Dr Rx",
        }
        data["request"]["medication_reference"] = None
        requests.append(m.Medication.model_validate(data))
    entries = [
        {"fullUrl": e.full_url, "resource": e.resource}
        for e in to_entries([*records, *requests], CTX)
    ]
    assert sum(e["resource"]["resourceType"] == "MedicationRequest" for e in entries) == len(
        requests
    )
    with httpx.Client(timeout=120) as client:
        response = client.post(
            validating_base_url,
            json=_transaction(entries),
            headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
        )
    assert response.status_code == 200, response.text[:3000]
    assert all(r["response"]["status"].startswith(("200", "201")) for r in response.json()["entry"])
