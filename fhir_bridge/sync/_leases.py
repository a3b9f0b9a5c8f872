"""Leases: the one sequence push and pull follow for each piece of work they share out.

Claim the work (:meth:`Leases.claim`: None when another process holds it), keep the claim
renewed in the background while the work runs (a :class:`LeaseKeeper` renews every claim it
holds a few times per lease period), check it before recording (:meth:`Held.check`, and
:meth:`Held.confirm` asking the store), give it back at the end. A claim that could not be
renewed (it expired while the process was paused, or another worker took it over) is *lost*:
the work under it stops at the next step with :class:`LeaseLost` and records nothing; the
block holding it ends quietly and says so (``Held.lost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType

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


_LOST = {  # what the log says when a lease is lost, by scope
    "push": "lease lost: patient left to the worker holding it now",
    "pull": "lease lost: pull of this type left to the worker holding it",
}


class Held:
    """One claim held for a block of work (``with held: ...``): renewed by the keeper while
    the block runs, given back when it ends. :class:`LeaseLost` raised inside ends the block
    quietly and sets ``lost``: the process holding the lease now does the work again."""

    def __init__(self, store: Store, claim: Claim, keeper: LeaseKeeper | None) -> None:
        self.store = store
        self.claim = claim
        self.keeper = keeper
        self.lost = False
        self.ended = False  # given back (a second end does nothing)

    def check(self, now: datetime) -> None:
        """Raise :class:`LeaseLost` if the keeper found the claim lost, or it is past expiry."""
        if self.keeper is not None:
            self.keeper.check(self.claim)
        elif self.claim.expires_at <= now:
            raise LeaseLost(self.claim.connection, self.claim.scope, self.claim.key)

    def confirm(self, now: datetime) -> None:
        """Ask the store: raise :class:`LeaseLost` unless the claim is still held."""
        if not self.store.leases.holds(self.claim, now):
            raise LeaseLost(self.claim.connection, self.claim.scope, self.claim.key)

    def __enter__(self) -> Held:
        if self.keeper is not None:
            self.keeper.hold(self.claim)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        end_all([self])
        if not isinstance(exc, LeaseLost):
            return False
        self.lose()
        return True

    def let_go(self) -> bool:
        """Stop renewing the claim (once): True the first time, when it is to be given back."""
        if self.ended:
            return False
        self.ended = True
        if self.keeper is not None:
            self.keeper.drop(self.claim)
        return True

    def lose(self) -> None:
        """The claim is lost: nothing more is recorded under it (said once in the log)."""
        if self.lost:
            return
        self.lost = True
        log.warning(
            _LOST.get(self.claim.scope, "lease lost: work left to the process holding it now"),
            extra={"action": f"{self.claim.scope}.lease_lost", "connection": self.claim.connection},
        )


def end_all(helds: Sequence[Held]) -> None:
    """Give back every claim of ``helds`` not given back yet, in one store transaction."""
    ending = [h for h in helds if h.let_go()]
    if ending:
        with contextlib.suppress(Exception):  # a lost database: the leases expire anyway
            ending[0].store.leases.release_all([h.claim for h in ending])


class Leases:
    """The lease sequence of one connection's work by one holder (a process or worker).

    Inside :meth:`renewing` (the worker's keeper, or one of its own for the block), claims
    taken with :meth:`claim` or handed over with :meth:`hold` are kept renewed.
    """

    def __init__(
        self,
        store: Store,
        connection: str,
        holder: str,
        *,
        seconds: float,
        clock: Callable[[], datetime],
        keeper: LeaseKeeper | None = None,
    ) -> None:
        self.store = store
        self.connection = connection
        self.holder = holder
        self.seconds = seconds
        self.clock = clock
        self._given = keeper
        self._keeper: LeaseKeeper | None = None

    @contextlib.asynccontextmanager
    async def renewing(self) -> AsyncIterator[Leases]:
        """Keep the claims held in the block renewed (by the worker's keeper if given)."""
        async with kept(self._given, self.store, self.seconds, self.clock) as keeper:
            self._keeper = keeper
            try:
                yield self
            finally:
                self._keeper = None

    def dead(self, roles: tuple[str, ...] = ()) -> list[str]:
        """Holders whose leases may be taken over at once (see :func:`dead_local_holders`)."""
        return dead_holders(self.store, roles)

    def claim(
        self,
        scope: str,
        key: str,
        *,
        dead: Sequence[str] = (),
        seconds: float | None = None,
    ) -> Held | None:
        """Claim ``scope``/``key`` of this connection; None while another process holds it."""
        claim = self.store.leases.claim(
            self.connection,
            scope,
            key,
            holder=self.holder,
            now=self.clock(),
            seconds=self.seconds if seconds is None else seconds,
            dead=list(dead),
        )
        return None if claim is None else self.hold(claim)

    def claim_many(
        self, scope: str, keys: Sequence[str], *, dead: Sequence[str] = ()
    ) -> dict[str, Held]:
        """Claim each of ``keys`` that no other process holds (one store transaction)."""
        claims = self.store.leases.claim_many(
            self.connection,
            scope,
            keys,
            holder=self.holder,
            now=self.clock(),
            seconds=self.seconds,
            dead=list(dead),
        )
        return {key: self.hold(claim) for key, claim in claims.items()}

    def hold(self, claim: Claim) -> Held:
        """A claim already taken (``store.leases.claim_push``), to be held for a block of work."""
        return Held(self.store, claim, self._keeper)
