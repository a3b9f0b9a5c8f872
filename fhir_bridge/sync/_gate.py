"""The way out to one server, shared by every worker: a fleet-wide cap and Retry-After.

:class:`FleetGate` is an httpx transport wrapped around the real one. Before each request it
waits while the server is throttled (a 429's ``Retry-After``, recorded in the store for every
worker), then takes one of the connection's request slots (``max_in_flight`` across the whole
fleet on PostgreSQL), and gives the slot back once the whole response has been read. Waiting
for a slot or a throttle holds up only this connection's requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

from fhir_bridge.fhir._retry import parse_retry_after
from fhir_bridge.store import Store

log = logging.getLogger("fhir_bridge.worker")
DEFAULT_THROTTLE = 30.0  # seconds, for a 429 that names no Retry-After


class FleetGate(httpx.AsyncBaseTransport):
    def __init__(
        self,
        store: Store,
        connection: str,
        cap: int,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.connection = connection
        self.slots = store.request_slots(connection, cap)
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._owns_inner = inner is None  # a transport handed in is closed by its owner
        self.stopping = False
        # waiting for a slot blocks a thread: these get threads of their own, so waiters
        # never starve the rest of the worker (lease renewals, releases) of threads
        self._waiters = ThreadPoolExecutor(max_workers=cap + 8, thread_name_prefix="slot")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._wait_while_throttled()
        loop = asyncio.get_running_loop()
        slot = await loop.run_in_executor(self._waiters, self.slots.acquire, self._stopping)
        try:
            response = await self.inner.handle_async_request(request)
            headers = response.headers
            if response.is_stream_consumed:  # read already (a mock transport): decoded
                raw = response.content
                headers = httpx.Headers(
                    [(k, v) for k, v in headers.multi_items() if k != "content-encoding"]
                )
            else:
                try:
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
        finally:
            self.slots.release(slot)
        if response.status_code == 429:
            await self._throttle(response)
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=raw,
            extensions=response.extensions,
        )

    def _stopping(self) -> bool:
        return self.stopping

    async def aclose(self) -> None:
        self.stopping = True
        if self._owns_inner:
            await self.inner.aclose()
        self._waiters.shutdown(wait=False, cancel_futures=True)

    async def _wait_while_throttled(self) -> None:
        while True:
            until = await asyncio.to_thread(
                self.store.throttles.until, self.connection, datetime.now(UTC)
            )
            if until is None:
                return
            await asyncio.sleep(max(0.05, (until - datetime.now(UTC)).total_seconds()))

    async def _throttle(self, response: httpx.Response) -> None:
        seconds = parse_retry_after(response.headers.get("Retry-After"), time.time())
        now = datetime.now(UTC)
        until = now + timedelta(seconds=DEFAULT_THROTTLE if seconds is None else seconds)
        await asyncio.to_thread(self.store.throttles.extend, self.connection, until, now)
        log.warning(
            "server throttled us",
            extra={
                "action": "gate.throttled",
                "connection": self.connection,
                "wait_seconds": round((until - now).total_seconds(), 1),
            },
        )
