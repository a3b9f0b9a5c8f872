"""What the mappers emit is accepted by the real HAPI server, with R4 validation switched on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext, to_entries
from tests.helpers import fixture_files

pytestmark = pytest.mark.integration
CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))


def _transaction(entries: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": e["fullUrl"],
                "resource": e["resource"],
                "request": {
                    "method": "PUT",
                    "url": f"{e['resource']['resourceType']}?identifier="
                    f"{e['resource']['identifier'][-1]['system']}|{e['resource']['identifier'][-1]['value']}",
                },
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
