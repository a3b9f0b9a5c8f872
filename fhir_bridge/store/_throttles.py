"""Throttles: a server asked to wait (429 with Retry-After); every worker honours it."""

from __future__ import annotations

from datetime import datetime

from ._clock import utc
from ._database import Database
from ._tables import ThrottleRow


class Throttles:
    def __init__(self, db: Database) -> None:
        self._db = db

    def extend(self, connection: str, until: datetime, now: datetime) -> None:
        """No worker sends to the connection before ``until`` (kept if already later)."""
        with self._db.session() as s:
            row = s.get(ThrottleRow, connection, with_for_update=self._db.postgres)
            if row is None:
                s.add(ThrottleRow(connection=connection, until=until, set_at=now))
            elif utc(row.until) < until:
                row.until, row.set_at = until, now

    def until(self, connection: str, now: datetime) -> datetime | None:
        """When the connection's throttle ends; None when it is not throttled."""
        with self._db.session() as s:
            row = s.get(ThrottleRow, connection)
            return None if row is None or utc(row.until) <= now else utc(row.until)
