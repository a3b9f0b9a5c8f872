"""Server capabilities for the dashboard: asked briefly, kept a while, failures shown."""

from __future__ import annotations

import asyncio
import socket

from fhir_bridge.api._capability_cache import CapabilityCache, fetch_capabilities
from fhir_bridge.config import ConnectionConfig
from fhir_bridge.errors import FhirStatusError
from fhir_bridge.fhir import ServerCapabilities

STATEMENT = {
    "resourceType": "CapabilityStatement",
    "fhirVersion": "4.0.1",
    "software": {"name": "EHR", "version": "2"},
    "rest": [
        {
            "mode": "server",
            "interaction": [{"code": "batch"}],
            "resource": [
                {
                    "type": "Goal",
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": [{"name": "patient"}],
                },
                {
                    "type": "Patient",
                    "interaction": [{"code": "create"}, {"code": "update"}],
                    "versioning": "versioned-update",
                    "conditionalUpdate": True,
                },
            ],
        }
    ],
}
CONFIG = ConnectionConfig(base_url="http://ehr.test/fhir")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Server:
    """A fetch function standing in for the network: counts the questions it is asked."""

    def __init__(self, answer: ServerCapabilities | Exception) -> None:
        self.answer = answer
        self.asked = 0

    async def __call__(self, name: str, config: ConnectionConfig) -> ServerCapabilities:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_an_answer_is_kept_for_the_ttl_then_asked_again() -> None:
    server = Server(ServerCapabilities.from_statement(STATEMENT))
    clock = Clock()
    cache = CapabilityCache(server, ttl=60, clock=clock)
    view = asyncio.run(cache.view("ehr", CONFIG))
    assert view.reachable
    assert view.bundle_mode == "batch bundles"
    clock.now += 59
    asyncio.run(cache.view("ehr", CONFIG))
    assert server.asked == 1
    clock.now += 2
    asyncio.run(cache.view("ehr", CONFIG))
    assert server.asked == 2


def test_what_the_view_derives_per_type() -> None:
    cache = CapabilityCache(Server(ServerCapabilities.from_statement(STATEMENT)))
    types = {t.resource_type: t for t in asyncio.run(cache.view("ehr", CONFIG)).types()}
    assert types["Goal"].writes == "read-only"
    assert types["Goal"].changes == "search"  # no _lastUpdated, no history declared
    assert types["Patient"].writes == "conditional update"
    assert types["Patient"].if_match
    assert types["Patient"].changes == "read"  # pulled: the EHR's demographics
    assert types["CarePlan"].writes == "read-only"  # not declared at all
    assert types["CarePlan"].changes == "read"


def test_a_failure_is_a_view_with_the_reason_and_is_asked_again_sooner() -> None:
    server = Server(FhirStatusError(401, method="GET", path="metadata"))
    clock = Clock()
    cache = CapabilityCache(server, ttl=60, retry_after=15, clock=clock)
    view = asyncio.run(cache.view("ehr", CONFIG))
    assert not view.reachable
    assert view.problem == "GET metadata answered HTTP 401"
    assert view.types() == []
    clock.now += 16
    asyncio.run(cache.view("ehr", CONFIG))
    assert server.asked == 2


def test_a_server_that_does_not_answer_in_time() -> None:
    async def silent(name: str, config: ConnectionConfig) -> ServerCapabilities:
        await asyncio.Event().wait()  # never answers
        raise AssertionError

    view = asyncio.run(CapabilityCache(silent, timeout=0.05).view("ehr", CONFIG))
    assert view.problem == "no answer within 0.05 s"


def test_a_closed_port_and_a_missing_secret_are_shown_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = ConnectionConfig(base_url=f"http://127.0.0.1:{port}/fhir")
    needs_token = ConnectionConfig.model_validate(
        {
            "base_url": f"http://127.0.0.1:{port}/fhir",
            "auth": {"kind": "bearer", "token_env": "FHIR_BRIDGE_TEST_UNSET_TOKEN"},
        }
    )
    cache = CapabilityCache(fetch_capabilities)
    views = asyncio.run(cache.views({"closed": closed, "no-token": needs_token}))
    assert [v.connection for v in views] == ["closed", "no-token"]
    assert views[0].problem == "unreachable: the connection was refused or failed"
    assert views[1].problem is not None
    assert "FHIR_BRIDGE_TEST_UNSET_TOKEN" in views[1].problem
