"""Request slots: a cap on requests in flight to one server across every worker.

On PostgreSQL a slot is a session advisory lock ``(SLOT_LOCKS + connection, n)`` for n below
the cap, held on a database connection of its own while the request is in flight. A process
that dies loses its database session, and with it its slots: nothing to expire or clean up.
On SQLite (one process) a local semaphore does the same job.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from ._engine import SLOT_LOCKS


@dataclass
class Slot:
    number: int
    connection: Connection | None  # the database session holding the lock (PostgreSQL)


class RequestSlots:
    """``acquire`` blocks until one of ``cap`` slots of a server is free; ``release`` frees it."""

    def __init__(self, engine: Engine, server: str, cap: int, *, poll: float = 0.5) -> None:
        self.engine = engine
        self.cap = cap
        self.poll = poll
        self.postgres = engine.dialect.name == "postgresql"
        # two-key advisory locks: the first key names the server, the second the slot
        self.key = SLOT_LOCKS << 16 | zlib.crc32(server.encode()) & 0xFFFF
        self._local = threading.BoundedSemaphore(cap)

    def acquire(self, stop: Callable[[], bool] = lambda: False) -> Slot:
        if not self.postgres:
            self._local.acquire()
            return Slot(0, None)
        while True:
            db = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                slot = self._try_all(db)
                if slot is not None:
                    return slot
                slot = self._wait_one(db)
                if slot is not None:
                    return slot
            except DBAPIError:
                db.invalidate()
                db.close()
                time.sleep(self.poll)  # database away: try again
                continue
            db.close()
            if stop():
                raise TimeoutError("stopping")

    def release(self, slot: Slot) -> None:
        if slot.connection is None:
            self._local.release()
            return
        try:
            slot.connection.execute(
                text("SELECT pg_advisory_unlock(:k, :n)"), {"k": self.key, "n": slot.number}
            )
        except DBAPIError:
            slot.connection.invalidate()  # the session is gone, and its lock with it
        finally:
            slot.connection.close()

    def _try_all(self, db: Connection) -> Slot | None:
        numbers = list(range(self.cap))
        random.shuffle(numbers)
        for n in numbers:
            got = db.execute(
                text("SELECT pg_try_advisory_lock(:k, :n)"), {"k": self.key, "n": n}
            ).scalar()
            if got:
                return Slot(n, db)
        return None

    def _wait_one(self, db: Connection) -> Slot | None:
        """Wait (a little) on one slot: cheaper than polling them all in a loop."""
        n = random.randrange(self.cap)  # noqa: S311 - spreading waiters, not a secret
        db.execute(text(f"SET lock_timeout = '{int(self.poll * 1000)}ms'"))
        try:
            db.execute(text("SELECT pg_advisory_lock(:k, :n)"), {"k": self.key, "n": n})
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            db.execute(text("SET lock_timeout = 0"))
            return None
        db.execute(text("SET lock_timeout = 0"))
        return Slot(n, db)
