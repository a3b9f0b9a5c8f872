"""Clients kept open between the API's notification pulls: one per connection, lent to each
run, renewed after their age, closed when the last run using them ends."""

from __future__ import annotations

import httpx
import pytest

from fhir_bridge.fhir import FhirClient
from fhir_bridge.sync import KeptClients

pytestmark = pytest.mark.anyio

BASE = "https://ehr.test/fhir"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _metadata(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
              "fhirVersion": "4.0.1", "format": ["json"], "rest": [{"mode": "server"}]},
    )  # fmt: skip


def _kept(clock: Clock, asked: list[httpx.Request]) -> KeptClients:
    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return _metadata(request)

    transport = httpx.MockTransport(handler)
    return KeptClients(lambda name: FhirClient(BASE, transport=transport), max_age=60, clock=clock)


async def test_runs_share_a_client_and_its_capabilities_until_it_is_old() -> None:
    clock, asked = Clock(), list[httpx.Request]()
    kept = _kept(clock, asked)
    async with kept.lend("ehr") as first:
        await first.capabilities()
    async with kept.lend("ehr") as second:
        await second.capabilities()
    assert second is first
    assert len(asked) == 1  # the CapabilityStatement read once
    async with kept.lend("other") as other:
        assert other is not first
    clock.now = 61
    async with kept.lend("ehr") as renewed:
        await renewed.capabilities()
    assert renewed is not first
    assert first.is_closed
    assert len(asked) == 2
    assert kept.made == 3
    await kept.close()
    assert renewed.is_closed
    assert other.is_closed


async def test_a_client_renewed_while_a_run_uses_it_is_closed_when_that_run_ends() -> None:
    clock = Clock()
    kept = _kept(clock, [])
    async with kept.lend("ehr") as old:
        clock.now = 61
        async with kept.lend("ehr") as new:
            assert new is not old
            assert not old.is_closed  # still in use by the first run
        await old.capabilities()
    assert old.is_closed
    assert not new.is_closed
    await kept.close()
    assert new.is_closed
