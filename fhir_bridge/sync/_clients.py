"""FHIR clients kept open between runs, one per connection (the API's notification pulls).

A notification's pull is small (one type, a few resources): making its client each time
costs more than the pull itself (a TLS context, a new connection, the CapabilityStatement
read and parsed again, and under SMART a new access token). :class:`KeptClients` lends one
client per connection to every run that asks, and replaces it once it is ``max_age`` seconds
old, so the server's capabilities and the credentials are read afresh now and then; the old
client is closed when the last run using it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fhir_bridge.fhir import FhirClient

MAX_AGE_SECONDS = 300.0


@dataclass
class _Kept:
    client: FhirClient
    born: float
    users: int = 0
    retired: bool = False


class KeptClients:
    """One open client per connection, lent to runs (``lend``), renewed after ``max_age``."""

    def __init__(
        self,
        make: Callable[[str], FhirClient],
        *,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make = make
        self.max_age = max_age
        self.clock = clock
        self.made = 0
        self._current: dict[str, _Kept] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def lend(self, connection: str) -> AsyncIterator[FhirClient]:
        """The connection's client for one run."""
        async with self._lock:
            kept = self._current.get(connection)
            if kept is None or self.clock() - kept.born > self.max_age:
                if kept is not None:
                    await self._retire(kept)
                kept = _Kept(self.make(connection), self.clock())
                self.made += 1
                self._current[connection] = kept
            kept.users += 1
        try:
            yield kept.client
        finally:
            kept.users -= 1
            if kept.retired and kept.users == 0:
                await kept.client.aclose()

    async def close(self) -> None:
        """Close every client (those still lent, when their runs end)."""
        async with self._lock:
            for kept in self._current.values():
                await self._retire(kept)
            self._current.clear()

    @staticmethod
    async def _retire(kept: _Kept) -> None:
        kept.retired = True
        if kept.users == 0:
            await kept.client.aclose()
