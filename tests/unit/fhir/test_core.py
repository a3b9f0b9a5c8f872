"""The request core: headers on every request, bounded concurrency, the base URL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fhir_bridge.fhir import FhirClient
from tests.unit.fhir.fakes import BASE, PATIENT, Script, fhir_json

pytestmark = pytest.mark.anyio


async def test_extra_headers_are_sent() -> None:
    """Headers given to the client go with every request."""
    server = Script(fhir_json(PATIENT))
    async with server.client(headers={"X-Request-Source": "bridge"}) as fhir:
        await fhir.read("Patient", "p1")
    assert server.requests[0].headers["X-Request-Source"] == "bridge"


# --- concurrency ----------------------------------------------------------------------------


async def test_max_in_flight_limits_concurrent_requests() -> None:
    """With max_in_flight=3, twenty concurrent reads never have more than 3 at the server."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return fhir_json({**PATIENT, "id": request.url.path.rsplit("/", 1)[-1]})

    async with FhirClient(BASE, transport=httpx.MockTransport(handler), max_in_flight=3) as fhir:
        results = await asyncio.gather(*(fhir.read("Patient", f"p{i}") for i in range(20)))
    assert [r["id"] for r in results] == [f"p{i}" for i in range(20)]
    assert peak == 3


def test_client_needs_an_absolute_base_url() -> None:
    """A relative or non-http base URL is a programming error."""
    with pytest.raises(ValueError, match="absolute"):
        FhirClient("ehr.test/fhir")
