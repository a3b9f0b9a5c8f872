"""Sync runs (one push or pull each) and the sync log of what each run did, in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from ._clock import utc
from ._database import Database
from ._leases import Claim, fence
from ._links import Link, save
from ._tables import SyncLogRow, SyncRunRow


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    connection: str
    direction: str  # push or pull
    started_at: datetime
    finished_at: datetime | None  # None while running
    outcome: str | None
    counts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    run_id: int
    worker: str | None  # the worker whose run it was
    at: datetime
    resource_type: str
    identifier: str
    action: str
    record_version: int | None
    server_version: str | None
    detail: str | None


def _run(row: SyncRunRow) -> Run:
    return Run(
        row.id,
        row.connection,
        row.direction,
        utc(row.started_at),
        None if row.finished_at is None else utc(row.finished_at),
        row.outcome,
        row.counts,
    )


class Runs:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(
        self, connection: str, direction: str, now: datetime, worker: str | None = None
    ) -> int:
        with self._db.session() as s:
            row = SyncRunRow(
                connection=connection,
                direction=direction,
                started_at=now,
                counts={},
                worker=worker,
            )
            s.add(row)
            s.flush()
            return row.id

    def finish(self, run_id: int, outcome: str, counts: dict[str, int], now: datetime) -> None:
        with self._db.session() as s:
            s.execute(
                update(SyncRunRow)
                .where(SyncRunRow.id == run_id)
                .values(finished_at=now, outcome=outcome, counts=counts)
            )

    def recent(self, limit: int = 20) -> list[Run]:
        """The newest runs, newest first."""
        with self._db.session() as s:
            rows = s.scalars(select(SyncRunRow).order_by(SyncRunRow.id.desc()).limit(limit))
            return [_run(r) for r in rows]

    def last_finished(self) -> dict[str, dict[str, Run]]:
        """The latest finished push and pull of each connection: ``{connection: {direction:
        run}}``, so a reader sees when each server was last reached and how that went."""
        with self._db.session() as s:
            latest = (
                select(func.max(SyncRunRow.id))
                .where(SyncRunRow.finished_at.is_not(None))
                .group_by(SyncRunRow.connection, SyncRunRow.direction)
            )
            found: dict[str, dict[str, Run]] = {}
            for r in s.scalars(select(SyncRunRow).where(SyncRunRow.id.in_(latest))):
                found.setdefault(r.connection, {})[r.direction] = _run(r)
            return found


class SyncLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        run_id: int,
        now: datetime,
        resource_type: str,
        identifier: str,
        action: str,
        *,
        record_version: int | None = None,
        server_version: str | None = None,
        detail: str | None = None,
        link: Link | None = None,
        lease: Claim | None = None,
    ) -> None:
        """Log one thing a run did; with ``link``, save it in the same transaction (and
        with ``lease``, only while that lease is held)."""
        with self._db.session() as s:
            fence(s, lease, now, postgres=self._db.postgres)
            if link is not None:
                save(s, link, now)
            s.add(
                SyncLogRow(
                    run_id=run_id,
                    at=now,
                    resource_type=resource_type,
                    identifier=identifier,
                    action=action,
                    record_version=record_version,
                    server_version=server_version,
                    detail=detail,
                )
            )

    def of_identifiers(self, identifier_prefix: str) -> list[LogEntry]:
        """Every entry for identifiers starting with the prefix, oldest first."""
        query = (
            _entries()
            .where(SyncLogRow.identifier.startswith(identifier_prefix, autoescape=True))
            .order_by(SyncLogRow.id)
        )
        with self._db.session() as s:
            return [_entry(r, worker) for r, worker in s.execute(query)]

    def recent(self, action: str | None = None, limit: int = 200) -> list[LogEntry]:
        """The newest entries (optionally of one action), newest first."""
        query = _entries().order_by(SyncLogRow.id.desc()).limit(limit)
        if action is not None:
            query = query.where(SyncLogRow.action == action)
        with self._db.session() as s:
            return [_entry(r, worker) for r, worker in s.execute(query)]


def _entries() -> Any:
    return select(SyncLogRow, SyncRunRow.worker).join(
        SyncRunRow, SyncRunRow.id == SyncLogRow.run_id
    )


def _entry(row: SyncLogRow, worker: str | None) -> LogEntry:
    return LogEntry(
        row.id,
        row.run_id,
        worker,
        utc(row.at),
        row.resource_type,
        row.identifier,
        row.action,
        row.record_version,
        row.server_version,
        row.detail,
    )
