"""The background worker: drains every connection's outbox and pulls on a schedule.

Stopping (SIGTERM) is graceful: the patient being pushed is finished, nothing else is
started, and whatever is still queued stays in the outbox for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from fhir_bridge.config import Settings
from fhir_bridge.store import Store

from ._connection import resolve_connection
from ._runs import pull_connection, push_connection

log = logging.getLogger("fhir_bridge.worker")


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        push_every: float = 2.0,
        pull_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.push_every = push_every
        self.pull_every = pull_every
        self.clock = clock
        self.stop = asyncio.Event()
        self._next_pull: dict[str, float] = {}

    async def run(self) -> None:
        log.info(
            "worker started",
            extra={"action": "worker.start", "count": len(self.settings.connections)},
        )
        while not self.stop.is_set():
            for name in self.settings.connections:
                if self.stop.is_set():
                    break
                try:
                    await self._cycle(name)
                except Exception:  # one connection failing must not stop the others
                    log.exception(
                        "worker cycle failed", extra={"action": "worker.cycle", "connection": name}
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.push_every)
        log.info("worker stopped", extra={"action": "worker.stop"})

    async def _cycle(self, name: str) -> None:
        target = resolve_connection(self.settings, name, None)
        store = Store(self.settings.database_url, migrate=False)
        try:
            await push_connection(store, target, self.settings, should_stop=self.stop.is_set)
            if not self.stop.is_set() and self.clock() >= self._next_pull.get(name, 0.0):
                await pull_connection(store, target, self.settings)
                self._next_pull[name] = self.clock() + self.pull_every
        finally:
            store.close()
