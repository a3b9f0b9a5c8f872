"""Keeping leases alive while their work runs, and noticing when one is lost.

A :class:`LeaseKeeper` renews every claim it holds a few times per lease period. A claim
that could not be renewed (it expired while the process was paused, or another worker took
it over) is *lost*: the work under it stops at the next step and records nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime

from fhir_bridge.errors import LeaseLost
from fhir_bridge.store import Claim, Store

log = logging.getLogger("fhir_bridge.worker")


def process_id(role: str) -> str:
    """A name for this process unique across hosts: ``role:host:pid:random``."""
    return f"{role}:{_host()}:{os.getpid()}:{secrets.token_hex(3)}"


def _host() -> str:
    return socket.gethostname()[:60].replace(":", "-")


def dead_local_holders(holders: Iterable[str], roles: tuple[str, ...] = ()) -> list[str]:
    """The holders that were processes on this host which no longer exist.

    Their leases on work that writes nothing to a server (pulls, the enqueue scan) can be
    taken over at once: a pull killed and run again need not wait for the lease to expire.
    Push leases of workers always wait for expiry: a killed worker's last write may still be
    under way at the server, and a second conditional create for the same identifier racing
    it could make a copy; only a ``push`` command run again takes over those of a killed
    ``push`` command (``roles``), as it did before there were leases. Holders on other hosts
    are left to expiry: only this host can tell whether its processes are alive.
    """
    host = _host()
    dead = []
    for holder in holders:
        parts = holder.split(":")
        if len(parts) != 4 or parts[1] != host or not parts[2].isdigit():
            continue
        if roles and parts[0] not in roles:
            continue
        pid = int(parts[2])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(holder)
        except PermissionError:  # alive, someone else's
            continue
    return dead


def dead_holders(store: Store, roles: tuple[str, ...] = ()) -> list[str]:
    return dead_local_holders(store.leases.holders(), roles)


class LeaseKeeper:
    def __init__(
        self,
        store: Store,
        seconds: float,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.seconds = seconds
        self.clock = clock
        self._held: dict[str, Claim] = {}
        self._lost: set[str] = set()

    def hold(self, claim: Claim) -> None:
        self._held[claim.token] = claim

    def drop(self, claim: Claim) -> None:
        self._held.pop(claim.token, None)
        self._lost.discard(claim.token)

    @contextlib.contextmanager
    def holding(self, claim: Claim) -> Iterator[Claim]:
        """Keep ``claim`` renewed for the block, then give the lease back."""
        self.hold(claim)
        try:
            yield claim
        finally:
            self.drop(claim)
            with contextlib.suppress(Exception):  # a lost database: the lease expires anyway
                self.store.leases.release(claim)

    def check(self, claim: Claim) -> None:
        """Raise :class:`LeaseLost` if the claim is known lost or past its expiry."""
        current = self._held.get(claim.token, claim)
        if claim.token in self._lost or current.expires_at <= self.clock():
            raise LeaseLost(claim.connection, claim.scope, claim.key)

    async def renew_now(self) -> None:
        held = list(self._held.values())
        if not held:
            return
        renewed = await asyncio.to_thread(self.store.leases.renew, held, self.clock(), self.seconds)
        kept = {c.token: c for c in renewed}
        for claim in held:
            if claim.token in kept:
                if claim.token in self._held:
                    self._held[claim.token] = kept[claim.token]
            else:
                self._lost.add(claim.token)
                log.warning(
                    "lease lost",
                    extra={
                        "action": "lease.lost",
                        "connection": claim.connection,
                        "scope": claim.scope,
                    },
                )

    async def run(self, stop: asyncio.Event) -> None:
        """Renew every third of a lease period until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.renew_now()
            except Exception:  # database away: renew again next time; expiry decides
                log.warning("lease renewal failed", extra={"action": "lease.renew"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.seconds / 3)


@contextlib.asynccontextmanager
async def kept(
    keeper: LeaseKeeper | None,
    store: Store,
    seconds: float,
    clock: Callable[[], datetime],
) -> AsyncIterator[LeaseKeeper]:
    """``keeper`` (a worker's, already running), or a new one renewing for the block."""
    if keeper is not None:
        yield keeper
        return
    own = LeaseKeeper(store, seconds, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(own.run(stop))
    try:
        yield own
    finally:
        stop.set()
        await task
