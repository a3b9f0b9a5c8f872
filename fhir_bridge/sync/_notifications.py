"""Subscription notifications are hints: they say a type changed, never what it now holds.

Whatever a notification carries, nothing of it is applied: the bridge pulls the named type
from the EHR itself, with its own credentials, since the watermark (``Puller.pull`` of that
type), so a forged body changes nothing the EHR does not hold. Notifications are coalesced
per connection and type: the first starts a short window, those arriving within it are folded
into the one pull that follows, and at most one pull per connection and type runs at a time
(a notification arriving during a pull waits for it, then causes one more).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fhir_bridge import metrics

log = logging.getLogger("fhir_bridge.sync")
# (connection, resource type or None for every pulled type) -> one pull of it
PullOf = Callable[[str, str | None], Awaitable[object]]
Key = tuple[str, str | None]


@dataclass
class _Pending:
    hints: int = 1
    task: asyncio.Task[None] | None = None


@dataclass
class Notifications:
    """Coalesces hints into pulls (``pull``), ``window`` seconds after the first of a key."""

    pull: PullOf
    window: float = 2.0
    pulls: int = 0
    hints: int = 0
    _pending: dict[Key, _Pending] = field(default_factory=dict)
    _running: dict[Key, asyncio.Lock] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def hint(self, connection: str, resource_type: str | None) -> bool:
        """Note that the EHR says ``resource_type`` changed (None: it did not say which).
        True when this starts a pull, False when it is folded into one already waiting."""
        key = (connection, resource_type)
        self.hints += 1
        label = resource_type or "*"
        pending = self._pending.get(key)
        if pending is not None:
            pending.hints += 1
            metrics.NOTIFICATIONS.labels(connection, label, "coalesced").inc()
            return False
        pending = _Pending()
        self._pending[key] = pending
        task = asyncio.get_running_loop().create_task(self._after_window(key, pending))
        pending.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        metrics.NOTIFICATIONS.labels(connection, label, "pulled").inc()
        return True

    async def _after_window(self, key: Key, pending: _Pending) -> None:
        await asyncio.sleep(self.window)
        lock = self._running.setdefault(key, asyncio.Lock())
        async with lock:
            # from here on, a new hint needs a new pull: this one may have read too early
            if self._pending.get(key) is pending:
                del self._pending[key]
            connection, resource_type = key
            self.pulls += 1
            try:
                await self.pull(connection, resource_type)
            except Exception:  # a failed pull must not take the service down; polling is the net
                log.exception(
                    "notification pull failed",
                    extra={"connection": connection, "resource_type": resource_type},
                )
            else:
                log.info(
                    "notifications pulled",
                    extra={
                        "action": "notify.pull",
                        "connection": connection,
                        "resource_type": resource_type,
                        "hints": pending.hints,
                    },
                )

    async def drain(self) -> None:
        """Wait for every pull waiting or running (tests, and a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def close(self) -> None:
        """Drop what is still waiting (the periodic pull catches up); wait for running pulls."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._pending.clear()
