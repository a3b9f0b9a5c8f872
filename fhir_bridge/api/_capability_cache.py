"""What each connection's server can do, for the dashboard: fetched briefly, then cached.

A server is asked for its CapabilityStatement once (no retries, a few seconds at most); the
answer is kept for ``ttl`` seconds, a failure for ``retry_after`` seconds, so a page view
never waits long and a server that is down shows as unreachable rather than breaking the page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from fhir_bridge.config import ConnectionConfig
from fhir_bridge.errors import (
    AuthError,
    BridgeError,
    FhirStatusError,
    FhirTransportError,
    MalformedResponse,
)
from fhir_bridge.fhir import RetryPolicy, ServerCapabilities, change_detection, write_strategy
from fhir_bridge.sync import PULLED_TYPES, Connection

log = logging.getLogger("fhir_bridge.api")

# the resource types push writes, in the order it sends them
SYNCED_TYPES = (
    "Patient",
    "QuestionnaireResponse",
    "Observation",
    "Condition",
    "Goal",
    "MedicationStatement",
    "MedicationRequest",
    "CareTeam",
    "ServiceRequest",
    "Task",
    "CarePlan",
    "Encounter",
)
_TRANSPORT = {
    "ConnectError": "the connection was refused or failed",
    "ConnectTimeout": "the connection timed out",
    "ReadTimeout": "no answer in time",
    "RemoteProtocolError": "the server closed the connection",
}
Fetch = Callable[[str, ConnectionConfig], Awaitable[ServerCapabilities]]


async def fetch_capabilities(name: str, config: ConnectionConfig) -> ServerCapabilities:
    """The server's CapabilityStatement, asked once (the caller bounds the time)."""
    client = Connection(name, config).client()
    client.retry = RetryPolicy(max_attempts=1)
    async with client:
        return await client.capabilities()


@dataclass(frozen=True, slots=True)
class TypeSupport:
    """What the dashboard says about one resource type on one server."""

    resource_type: str
    writes: str  # "read-only", or how writes go: "conditional update", "search, then write"
    if_match: bool
    changes: str | None  # how pull finds changes (pulled types only)


@dataclass(frozen=True)
class ServerView:
    connection: str
    base_url: str
    checked_at: datetime
    capabilities: ServerCapabilities | None = None
    problem: str | None = None  # why the server could not be asked

    @property
    def reachable(self) -> bool:
        return self.capabilities is not None

    @property
    def bundle_mode(self) -> str | None:
        caps = self.capabilities
        if caps is None:
            return None
        if caps.supports_transaction():
            return "transaction bundles"
        return "batch bundles" if caps.supports_batch() else "single requests"

    def types(self) -> list[TypeSupport]:
        caps = self.capabilities
        if caps is None:
            return []
        rows = []
        for resource_type in SYNCED_TYPES:
            strategy = write_strategy(caps, resource_type)
            writes = "read-only"
            if strategy.writable:
                writes = (
                    "conditional update"
                    if strategy.upsert == "conditional-update"
                    else "search, then write"
                )
            pulled = resource_type in PULLED_TYPES
            rows.append(
                TypeSupport(
                    resource_type,
                    writes,
                    strategy.if_match,
                    change_detection(caps, resource_type) if pulled else None,
                )
            )
        return rows


class CapabilityCache:
    """Server views by connection, each fetched at most once per ``ttl`` seconds."""

    def __init__(
        self,
        fetch: Fetch = fetch_capabilities,
        *,
        timeout: float = 5.0,
        ttl: float = 60.0,
        retry_after: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.timeout = timeout
        self.ttl = ttl
        self.retry_after = retry_after
        self.clock = clock
        self._kept: dict[tuple[str, str], tuple[float, ServerView]] = {}

    async def views(self, connections: Mapping[str, ConnectionConfig]) -> list[ServerView]:
        """One view per connection, in the settings' order; stale ones are fetched together."""
        return list(await asyncio.gather(*(self.view(name, c) for name, c in connections.items())))

    async def view(self, name: str, config: ConnectionConfig) -> ServerView:
        key = (name, config.base_url)
        kept = self._kept.get(key)
        now = self.clock()
        if kept is not None:
            fetched, view = kept
            if now - fetched < (self.ttl if view.reachable else self.retry_after):
                return view
        view = await self._ask(name, config)
        self._kept[key] = (now, view)
        return view

    async def _ask(self, name: str, config: ConnectionConfig) -> ServerView:
        checked = datetime.now(UTC)
        try:
            caps = await asyncio.wait_for(self.fetch(name, config), self.timeout)
        except Exception as exc:  # any failure is shown on the page, never raised
            log.warning(
                "capabilities unavailable",
                extra={
                    "action": "dashboard.capabilities",
                    "connection": name,
                    "error": type(exc).__name__,
                },
            )
            return ServerView(name, config.base_url, checked, problem=self._problem(exc))
        return ServerView(name, config.base_url, checked, capabilities=caps)

    def _problem(self, exc: Exception) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, FhirTransportError):
            why = _TRANSPORT.get(exc.error_type, exc.error_type)
            return f"unreachable: {why}"
        if isinstance(exc, FhirStatusError):
            return f"GET metadata answered HTTP {exc.status}"
        if isinstance(exc, MalformedResponse):
            return f"the metadata answer is not usable: {exc.reason}"
        if isinstance(exc, AuthError):
            return f"no access token: {exc.reason}"
        if isinstance(exc, BridgeError):
            return str(exc)
        return f"could not be asked ({type(exc).__name__})"
