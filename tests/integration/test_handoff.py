"""Handoff documents meet the real server: accepted with validation on, stored once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.fhir import FhirClient
from fhir_bridge.handoff import as_transaction, build_document, deliver
from fhir_bridge.mappers import MappingContext
from tests.helpers import FIXTURES, fixture_files

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
    ctx = MappingContext(f"https://bridge.test/{uuid.uuid4().hex[:10]}", datetime.now(UTC))
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
    ctx = MappingContext(f"https://bridge.test/{uuid.uuid4().hex[:10]}", datetime.now(UTC))
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


def test_as_resources_the_package_lands_once(fhir_base_url: str, fhir: httpx.Client) -> None:
    """A receiver that keeps resources gets a transaction; sending it again creates nothing."""
    ctx = MappingContext(f"https://bridge.test/{uuid.uuid4().hex[:10]}", datetime.now(UTC))
    transaction = as_transaction(_document(FIXTURES / "transitional-care-copd.json", ctx))

    async def send() -> list[str]:
        async with FhirClient(fhir_base_url) as client:
            response = await client.transaction(transaction)
            return [str(e["response"]["status"]) for e in response["entry"]]

    first, second = asyncio.run(send()), asyncio.run(send())
    assert any(s.startswith("201") for s in first)
    assert not any(s.startswith("201") for s in second)
    patients = fhir.get(
        "/Patient",
        params={"identifier": f"{ctx.system('patient')}|pat-okafor"},
        headers={"Cache-Control": "no-cache"},
    ).json()
    assert patients["total"] == 1


def test_receive_from_a_connection_by_bundle_id(fhir_base_url: str, tmp_path: Path) -> None:
    """`receive --from NAME --id ID` fetches the document from the server and files it."""
    ns = f"https://bridge.test/{uuid.uuid4().hex[:10]}"
    document = _document(fixture_files()[2], MappingContext(ns, datetime.now(UTC)))

    async def send() -> str | None:
        async with FhirClient(fhir_base_url) as client:
            return (await deliver(client, document))[1]

    bundle_id = asyncio.run(send())
    assert bundle_id is not None
    (tmp_path / "fhir-bridge.toml").write_text(
        f'[connections.sender]\nbase_url = "{fhir_base_url}"\nenrol = "all"\n'
    )
    env = {
        **os.environ,
        "FHIR_BRIDGE_NAMESPACE": ns,
        "FHIR_BRIDGE_CONFIG": str(tmp_path / "fhir-bridge.toml"),
        "FHIR_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'receiver.db'}",
    }
    exe = str(Path(sys.executable).parent / "fhir-bridge")
    done = subprocess.run(
        [exe, "receive", "--from", "sender", "--id", bundle_id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "new patient" in done.stdout
