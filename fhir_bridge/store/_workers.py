"""Worker processes: who announced itself, its heartbeat, and freeing what the silent left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from ._clock import utc
from ._database import Database
from ._tables import LeaseRow, WorkerRow


@dataclass(frozen=True, slots=True)
class Worker:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


class Workers:
    def __init__(self, db: Database) -> None:
        self._db = db

    def register(self, worker: str, host: str, pid: int, now: datetime) -> None:
        with self._db.session() as s:
            s.merge(
                WorkerRow(
                    id=worker,
                    host=host,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                    stopped_at=None,
                )
            )

    def heartbeat(self, worker: str, now: datetime) -> None:
        with self._db.session() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == worker).values(heartbeat_at=now))

    def stopped(self, worker: str, now: datetime) -> None:
        """A worker stopping cleanly gives back every lease it holds."""
        with self._db.session() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.holder == worker))
            s.execute(update(WorkerRow).where(WorkerRow.id == worker).values(stopped_at=now))

    def known(self) -> list[Worker]:
        """Every worker that ever announced itself, oldest first."""
        with self._db.session() as s:
            rows = s.scalars(select(WorkerRow).order_by(WorkerRow.started_at))
            return [
                Worker(
                    r.id,
                    r.host,
                    r.pid,
                    utc(r.started_at),
                    utc(r.heartbeat_at),
                    None if r.stopped_at is None else utc(r.stopped_at),
                )
                for r in rows
            ]

    def free_stuck_claims(self, now: datetime, dead_after: timedelta) -> int:
        """Maintenance: drop expired leases and those of workers silent for ``dead_after``.

        Workers silent that long are marked stopped. Returns how many leases were freed.
        """
        with self._db.session() as s:
            silent = list(
                s.scalars(
                    select(WorkerRow.id).where(
                        WorkerRow.stopped_at.is_(None), WorkerRow.heartbeat_at < now - dead_after
                    )
                )
            )
            freed = s.execute(
                delete(LeaseRow).where((LeaseRow.expires_at <= now) | LeaseRow.holder.in_(silent))
            )
            if silent:
                s.execute(update(WorkerRow).where(WorkerRow.id.in_(silent)).values(stopped_at=now))
            return int(freed.rowcount)  # type: ignore[attr-defined]
