"""The background worker: drains every connection's outbox and pulls on a schedule.

Any number of workers may run against one PostgreSQL database (on SQLite, one). Each
connection gets a loop of its own, so a slow or throttled server holds up only its own work.
A loop claims a few patients with due work (leases, ``store.leases.claim_push``), pushes them
concurrently, and claims again; when nothing is due it pulls (each resource type under a
lease on its watermark) and sleeps. A background task renews this worker's leases, says the
worker is alive, and frees claims that workers which stopped answering left behind.

``transport`` (an ``httpx.AsyncBaseTransport``) replaces httpx's own under every
connection's client, beneath the fleet gate: tests hand a mock one answering as FHIR servers.

Stopping (SIGTERM) is graceful: the patients being pushed are finished, nothing else is
started, the worker's leases are given back, and whatever is still queued stays in the
outbox for the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from fhir_bridge import metrics
from fhir_bridge.config import Settings
from fhir_bridge.errors import StoreUnavailable
from fhir_bridge.store import Store

from ._connection import resolve_connection, routing_of
from ._gate import FleetGate
from ._leases import LeaseKeeper, process_id
from ._pull import Puller
from ._push import Pusher
from ._trail import record_run

log = logging.getLogger("fhir_bridge.worker")


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        push_every: float = 2.0,
        pull_every: float = 60.0,
        lease_seconds: float = 30.0,
        claim_batch: int = 4,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.push_every = push_every
        self.pull_every = pull_every
        self.lease_seconds = lease_seconds
        self.claim_batch = claim_batch
        self.clock = clock
        self.stop = asyncio.Event()
        self.id = process_id("worker")
        self._next_pull: dict[str, float] = {}

    async def run(self) -> None:
        store = Store(self.settings.database_url, migrate=False)
        keeper = LeaseKeeper(store, self.lease_seconds)
        await self._retrying(
            lambda: store.workers.register(
                self.id, socket.gethostname()[:200], os.getpid(), datetime.now(UTC)
            )
        )
        log.info(
            "worker started",
            extra={
                "action": "worker.start",
                "worker": self.id,
                "count": len(self.settings.connections),
            },
        )
        loops = [
            asyncio.create_task(self._connection_loop(n, store, keeper))
            for n in self.settings.connections
        ]
        upkeep = asyncio.create_task(self._upkeep(store, keeper))
        try:
            await asyncio.gather(*loops)
        finally:
            self.stop.set()
            await upkeep
            with contextlib.suppress(Exception):  # database away: the leases expire instead
                store.workers.stopped(self.id, datetime.now(UTC))
            store.close()
        log.info("worker stopped", extra={"action": "worker.stop", "worker": self.id})

    async def _retrying(self, step: Callable[[], object]) -> None:
        """Run a store call until it works or the worker stops (the database may be away)."""
        while not self.stop.is_set():
            try:
                await asyncio.to_thread(step)
                return
            except Exception:
                log.warning("database unavailable", extra={"action": "worker.db"})
                await self._sleep(self.push_every)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)

    async def _upkeep(self, store: Store, keeper: LeaseKeeper) -> None:
        """Renew leases, say this worker is alive, free the claims of silent workers."""
        renewing = asyncio.create_task(keeper.run(self.stop))
        dead_after = timedelta(seconds=max(3 * self.lease_seconds, 10.0))
        while not self.stop.is_set():
            try:
                now = datetime.now(UTC)
                await asyncio.to_thread(store.workers.heartbeat, self.id, now)
                freed = await asyncio.to_thread(store.workers.free_stuck_claims, now, dead_after)
                if freed:
                    log.info("stuck claims freed", extra={"action": "worker.free", "count": freed})
            except Exception:
                log.warning("heartbeat failed", extra={"action": "worker.heartbeat"})
            await self._sleep(min(self.lease_seconds / 3, 10.0))  # status: alive within 60 s
        await renewing

    async def _connection_loop(self, name: str, store: Store, keeper: LeaseKeeper) -> None:
        target = resolve_connection(self.settings, name, None)
        ctx = self.settings.mapping_context(datetime.now(UTC))
        gate = FleetGate(store, name, target.config.max_in_flight, inner=self.transport)
        async with target.client(transport=gate) as client:
            pusher = Pusher(
                store,
                client,
                name,
                ctx,
                bundle_size=target.config.bundle_size,
                remember_refusals=target.config.refusal_memory(),
                should_stop=self.stop.is_set,
                holder=self.id,
                keeper=keeper,
                lease_seconds=self.lease_seconds,
                patient_mode=target.config.effective_patient_mode,
                mrn_system=target.config.mrn_system,
                routing=routing_of(self.settings),
                conflict_policy=target.config.conflict_policy,
            )
            puller = Puller(
                store,
                client,
                name,
                ctx,
                policy=target.config.conflict_policy,
                patient_mode=target.config.effective_patient_mode,
                holder=self.id,
                keeper=keeper,
                lease_seconds=self.lease_seconds,
            )
            await self._retrying(pusher.enqueue_unsynced)
            while not self.stop.is_set():
                try:
                    if await self._cycle(name, store, pusher, puller):
                        continue  # there was work: look for more at once
                except StoreUnavailable as exc:  # database away: leases expire, work waits
                    log.warning(
                        "database unavailable",
                        extra={
                            "action": "worker.db",
                            "connection": name,
                            "error_type": exc.error_type,
                        },
                    )
                except Exception:  # one connection failing must not stop the others
                    log.exception(
                        "worker cycle failed", extra={"action": "worker.cycle", "connection": name}
                    )
                await self._sleep(self.push_every)
            gate.stopping = True

    async def _cycle(self, name: str, store: Store, pusher: Pusher, puller: Puller) -> bool:
        """One round for one connection; True when it pushed something."""
        now = datetime.now(UTC)
        until = await asyncio.to_thread(store.throttles.until, name, now)
        if until is not None:  # the server said wait: this connection's work only
            await self._sleep(min(self.push_every * 5, (until - now).total_seconds()))
            return False
        claims = await asyncio.to_thread(
            lambda: store.leases.claim_push(
                name,
                holder=self.id,
                now=datetime.now(UTC),
                seconds=self.lease_seconds,
                limit=self.claim_batch,
            )
        )
        if claims:
            started = time.perf_counter()
            pushed = await pusher.push_claimed(claims)
            ok = not (pushed.failed or pushed.dead_lettered)
            metrics.record_run(name, "push", pushed.counts(), time.perf_counter() - started, ok=ok)
            await asyncio.to_thread(record_run, store, self.id, "push", name, pushed.counts())
        pulling = self.pull_every > 0  # 0: this worker only pushes
        if pulling and not self.stop.is_set() and self.clock() >= self._next_pull.get(name, 0.0):
            started = time.perf_counter()
            pulled = await puller.pull()
            metrics.record_run(
                name, "pull", pulled.counts(), time.perf_counter() - started, ok=not pulled.failed
            )
            await asyncio.to_thread(record_run, store, self.id, "pull", name, pulled.counts())
            self._next_pull[name] = self.clock() + self.pull_every
        return bool(claims)
