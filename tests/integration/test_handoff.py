"""Handoff documents meet the real server: accepted with validation on, stored once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.fhir import FhirClient
from fhir_bridge.handoff import build_document, deliver
from fhir_bridge.mappers import MappingContext
from tests.helpers import fixture_files

CUSTODIAN = m.Party(kind=m.PartyKind.organization, id="custodian", name="Riverside Care Management")


def _document(path: Path, ctx: MappingContext) -> dict[str, object]:
    package = m.PatientPackage.model_validate(json.loads(path.read_text()))
    author = package.care_plans[0].author
    assert author is not None
    return build_document(
        package, "transfer", ctx, author=author, custodian=CUSTODIAN, now=datetime.now(UTC)
    )


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_validating_hapi_accepts_the_document(validating_base_url: str, path: Path) -> None:
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}")
    with httpx.Client(timeout=120) as client:
        answer = client.post(
            f"{validating_base_url}/Bundle",
            json=_document(path, ctx),
            headers={"Content-Type": "application/fhir+json"},
        )
    assert answer.status_code == 201, answer.text[:3000]


def test_sending_the_same_package_twice_stores_it_once(
    fhir_base_url: str, fhir: httpx.Client
) -> None:
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}")
    document = _document(fixture_files()[0], ctx)

    async def send() -> tuple[bool, str | None]:
        async with FhirClient(fhir_base_url) as client:
            return await deliver(client, document)

    first, second = asyncio.run(send()), asyncio.run(send())
    assert first[0] is True
    assert second == (False, first[1])
    identifier = document["identifier"]
    assert isinstance(identifier, dict)
    found = fhir.get(
        "/Bundle",
        params={"identifier": f"{identifier['system']}|{identifier['value']}"},
        headers={"Cache-Control": "no-cache"},
    ).json()
    assert found["total"] == 1
