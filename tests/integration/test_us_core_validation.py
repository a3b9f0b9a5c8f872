"""Everything fhir-bridge emits validates against US Core by resource type, as a hospital checks.

The servers (``us_core_url``: US Core 7.0.0 on 8095, 6.1.0 on 8096) validate every request
against the US Core profile of each resource's type, whatever it declares, and refuse any
request with an ERROR. Warnings (terminology the offline server cannot expand: SNOMED CT,
LOINC, RxNorm, VSAC value sets; the Gravity profiles it does not hold) are printed, not failed:
run with ``-rP`` to see them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.handoff import HandoffType, build_document
from fhir_bridge.mappers import MappingContext, identifiers_of, to_entries
from fhir_bridge.store import Store
from fhir_bridge.sync import Pusher, PushSummary
from tests.helpers import fixture_files

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
RETURN_OUTCOME = {**FHIR_JSON, "Prefer": "return=OperationOutcome"}
CUSTODIAN = m.Party(kind=m.PartyKind.organization, id="custodian", name="Riverside Care Management")
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def _ctx() -> MappingContext:
    return MappingContext(f"https://bridge.test/{uuid.uuid4().hex[:10]}", datetime.now(UTC))


def _issues(outcome: dict[str, Any], severities: tuple[str, ...]) -> list[str]:
    return [
        f"{i['severity']} {(i.get('location') or ['-'])[0]}: {i.get('diagnostics', '')}"
        for i in outcome.get("issue", [])
        if i.get("severity") in severities
    ]


def _post_and_check(url: str, bundle: dict[str, Any], what: str) -> None:
    """POST ``bundle`` as a stored Bundle: the server validates it and each entry by type."""
    with httpx.Client(timeout=600) as client:
        response = client.post(f"{url}/Bundle", json=bundle, headers=RETURN_OUTCOME)
    outcome = response.json()
    errors = _issues(outcome, ("error", "fatal"))
    warnings = _issues(outcome, ("warning",))
    print(f"{what} on {url}: {len(errors)} errors, {len(warnings)} warnings")
    for line in warnings:
        print("  " + line[:300])
    assert errors == [], "\n".join(errors)
    assert response.status_code == 201, response.text[:2000]


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_resource_of_a_fixture_meets_its_types_us_core_profile(
    us_core_url: str, path: Path
) -> None:
    entries = to_entries(read_records(path), _ctx())
    types = {e.resource["resourceType"] for e in entries}
    assert {"Patient", "CarePlan", "Practitioner"} <= types
    for e in entries:
        if e.resource["resourceType"] in ("Practitioner", "Organization", "PractitionerRole"):
            assert e.resource["meta"]["profile"], e.resource["resourceType"]
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": e.full_url, "resource": e.resource} for e in entries],
    }
    _post_and_check(us_core_url, collection, f"map {path.name} ({len(entries)} resources)")


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_a_fixture_pushed_as_push_sends_it_is_accepted(us_core_url: str, path: Path) -> None:
    """Conditional writes keyed by our identifier in one transaction, as push sends them."""
    entries = to_entries(read_records(path), _ctx())
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": e.full_url,
                "resource": e.resource,
                "request": {
                    "method": "PUT",
                    "url": f"{e.resource['resourceType']}?identifier="
                    f"{identifiers_of(e.resource)[-1]['system']}|"
                    f"{identifiers_of(e.resource)[-1]['value']}",
                },
            }
            for e in entries
        ],
    }
    with httpx.Client(timeout=600) as client:
        response = client.post(us_core_url, json=transaction, headers=FHIR_JSON)
    assert response.status_code == 200, response.text[:3000]
    statuses = [r["response"]["status"] for r in response.json()["entry"]]
    assert len(statuses) == len(entries)
    assert all(s.startswith("201") for s in statuses), statuses


def test_push_writes_every_fixture_to_a_server_validating_by_type(
    us_core_url: str, tmp_path: Path
) -> None:
    """The real push (conditional writes, transactions) of every fixture: nothing refused."""
    ctx = _ctx()
    records = [r for path in fixture_files() for r in read_records(path)]
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")

    async def run() -> PushSummary:
        async with FhirClient(us_core_url, timeout=600) as client:
            return await Pusher(store, client, "hospital", ctx).push()

    try:
        store.put_records(records, ["hospital"], ctx.now)
        summary = asyncio.run(run())
    finally:
        store.close()
    print(f"push to {us_core_url}: {summary.counts()}")
    assert (summary.failed, summary.dead_lettered, summary.not_supported) == (0, 0, 0)
    assert summary.created >= len(records)


@pytest.mark.parametrize("handoff_type", get_args(HandoffType))
@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_handoff_document_validates(
    us_core_url: str, path: Path, handoff_type: HandoffType
) -> None:
    package = m.PatientPackage.model_validate(json.loads(path.read_text()))
    author = package.care_plans[0].author
    assert author is not None
    document = build_document(
        package, handoff_type, _ctx(), author=author, custodian=CUSTODIAN, now=datetime.now(UTC)
    )
    _post_and_check(us_core_url, document, f"{handoff_type} handoff of {path.name}")


TEXT_ONLY_PRACTITIONER = {
    "resourceType": "Practitioner",
    "identifier": [{"system": "https://bridge.test/practitioner", "value": "p1"}],
    "name": [{"text": "Ana Lopez, RN"}],
}


def test_validate_operation_checks_against_the_package(us_core_url: str) -> None:
    with httpx.Client(timeout=600) as client:
        bad = client.post(
            f"{us_core_url}/Practitioner/$validate",
            params={"profile": US_CORE + "us-core-practitioner"},
            json=TEXT_ONLY_PRACTITIONER,
            headers=FHIR_JSON,
        )
        fixed = {**TEXT_ONLY_PRACTITIONER, "name": [{"text": "Ana Lopez, RN", "family": "Lopez"}]}
        good = client.post(
            f"{us_core_url}/Practitioner/$validate",
            params={"profile": US_CORE + "us-core-practitioner"},
            json=fixed,
            headers=FHIR_JSON,
        )
    bad_errors = _issues(bad.json(), ("error", "fatal"))
    assert any("family" in e for e in bad_errors), bad.text[:2000]
    assert _issues(good.json(), ("error", "fatal")) == [], good.text[:2000]


def test_a_resource_is_checked_against_its_types_profile_whatever_it_declares(
    us_core_url: str,
) -> None:
    """No meta.profile, so base R4 alone would accept it; a hospital's server does not."""
    with httpx.Client(timeout=600) as client:
        practitioner = client.post(
            f"{us_core_url}/Practitioner", json=TEXT_ONLY_PRACTITIONER, headers=FHIR_JSON
        )
        organization = client.post(
            f"{us_core_url}/Organization",
            json={"resourceType": "Organization", "name": "Eastside Pantry"},
            headers=FHIR_JSON,
        )
    assert practitioner.status_code == 422, practitioner.text[:2000]
    assert "family" in practitioner.text
    assert organization.status_code == 422, organization.text[:2000]
    assert "active" in organization.text
