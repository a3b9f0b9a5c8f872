"""The outbox: which record versions still have to reach which connection."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from ._clock import utc
from ._database import Database
from ._leases import Claim, fence
from ._routed import FULFILLED_KINDS, enrolled_patients, fulfillers, parsed
from ._routing import Routing
from ._tables import OutboxRow, OutboxStatus, RecordRow


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    connection: str
    kind: str
    record_id: str
    patient_id: str | None
    record_version: int
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    deleting: bool = False  # carries the record's local deletion, not a write


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Outbox entries by status (of one connection, or of all)."""

    pending: int = 0
    done: int = 0
    dead: int = 0
    blocked: int = 0
    held: int = 0  # the patient is not matched on that EHR yet

    def as_dict(self) -> dict[str, int]:
        """The statuses that have entries, with their counts, by name (the API's ``queue``)."""
        return _nonzero(self)


@dataclass(frozen=True, slots=True)
class QueueSchedule:
    """One connection's outbox: pending entries due now or scheduled later, done, dead."""

    due: int = 0
    scheduled: int = 0
    done: int = 0
    dead: int = 0
    blocked: int = 0
    held: int = 0  # the patient is not matched on that EHR yet

    def as_dict(self) -> dict[str, int]:
        """The non-zero counts, by name (``fhir-bridge status``)."""
        return _nonzero(self)


def _nonzero(counts: QueueDepth | QueueSchedule) -> dict[str, int]:
    named = {name: getattr(counts, name) for name in sorted(counts.__dataclass_fields__)}
    return {name: n for name, n in named.items() if n}


def _entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(
        row.id,
        row.connection,
        row.kind,
        row.record_id,
        row.patient_id,
        row.record_version,
        OutboxStatus(row.status),
        row.attempts,
        utc(row.next_attempt_at),
        row.last_error,
        bool(row.deleting),
    )


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue_unsynced(
        self,
        connection: str,
        now: datetime,
        routing: Routing | None = None,
        page_size: int = 500,
    ) -> int:
        """Queue every record the connection has never been sent or whose version moved on
        (of those ``routing`` sends there; None: every record).

        The database picks them (records without an entry at their version, an outer join)
        and hands them over in pages (keyset on the records' key), each page flushed and
        let go: memory holds one page, however large the store."""
        entry = and_(
            OutboxRow.connection == connection,
            OutboxRow.kind == RecordRow.kind,
            OutboxRow.record_id == RecordRow.id,
        )
        unsynced = (
            select(RecordRow)
            .outerjoin(OutboxRow, entry)
            .where(
                ~RecordRow.deleted,
                or_(OutboxRow.id.is_(None), OutboxRow.record_version != RecordRow.version),
            )
            .order_by(RecordRow.kind, RecordRow.id)
            .limit(page_size)
        )
        with self._db.session() as s:
            routed = _Routed(s, routing, connection) if routing is not None else None
            count = 0
            after: tuple[str, str] | None = None
            while True:
                query = unsynced
                if after is not None:
                    query = query.where(tuple_(RecordRow.kind, RecordRow.id) > after)
                rows = s.scalars(query).all()
                for row in rows:
                    if routed is not None and not routed.takes(row):
                        continue
                    enqueue(
                        s,
                        connection=connection,
                        kind=row.kind,
                        record_id=row.id,
                        patient_id=row.patient_id,
                        version=row.version,
                        now=now,
                    )
                    count += 1
                if len(rows) < page_size:
                    return count
                after = (rows[-1].kind, rows[-1].id)
                s.flush()
                s.expunge_all()

    def drop_patient(self, connection: str, patient_id: str) -> int:
        """Forget the patient's pending and dead entries for the connection; how many."""
        with self._db.session() as s:
            return drop_patient(s, connection, patient_id)

    def due(
        self,
        connection: str,
        now: datetime,
        patient_id: str | None = None,
        *,
        deletions_only: bool = False,
    ) -> list[OutboxEntry]:
        """Pending entries whose next attempt is due, oldest first (``deletions_only``: those
        carrying a local deletion)."""
        with self._db.session() as s:
            query = select(OutboxRow).where(
                OutboxRow.connection == connection,
                OutboxRow.status == OutboxStatus.pending,
                OutboxRow.next_attempt_at <= now,
            )
            if patient_id is not None:
                query = query.where(OutboxRow.patient_id == patient_id)
            if deletions_only:
                query = query.where(OutboxRow.deleting.is_(True))
            return [_entry(r) for r in s.scalars(query.order_by(OutboxRow.id))]

    def due_of(
        self, connection: str, now: datetime, patient_ids: Sequence[str]
    ) -> dict[str, list[OutboxEntry]]:
        """Pending entries due now of several patients (one query), by patient, oldest
        first; a patient with none is left out."""
        found: dict[str, list[OutboxEntry]] = {}
        if not patient_ids:
            return found
        with self._db.session() as s:
            query = select(OutboxRow).where(
                OutboxRow.connection == connection,
                OutboxRow.status == OutboxStatus.pending,
                OutboxRow.next_attempt_at <= now,
                OutboxRow.patient_id.in_(list(patient_ids)),
            )
            for row in s.scalars(query.order_by(OutboxRow.id)):
                found.setdefault(row.patient_id or row.record_id, []).append(_entry(row))
        return found

    def due_patients(
        self, connection: str, now: datetime, page_size: int = 500
    ) -> Iterator[tuple[str, int]]:
        """The patients with due entries (the patient's id, or the record's own for an entry
        without one) and how many each has, by patient key, page by page (keyset paging):
        a push reads each patient's entries with :meth:`due` under its lease."""
        key = func.coalesce(OutboxRow.patient_id, OutboxRow.record_id)
        query = (
            select(key, func.count())
            .where(
                OutboxRow.connection == connection,
                OutboxRow.status == OutboxStatus.pending,
                OutboxRow.next_attempt_at <= now,
            )
            .group_by(key)
            .order_by(key)
            .limit(page_size)
        )
        after: str | None = None
        while True:
            with self._db.session() as s:
                page = [
                    (str(k), int(n))
                    for k, n in s.execute(query if after is None else query.having(key > after))
                ]
            yield from page
            if len(page) < page_size:
                return
            after = page[-1][0]

    def mark_done(self, entry: OutboxEntry, now: datetime, lease: Claim | None = None) -> None:
        """Done, unless the record changed again meanwhile (then it stays queued).

        With ``lease``, only while that lease is still held (else :class:`LeaseLost`).
        """
        with self._db.session() as s:
            fence(s, lease, now, postgres=self._db.postgres)
            close_done(s, entry, now)

    def mark_failed(
        self,
        entry: OutboxEntry,
        error: str,
        retry_at: datetime | None,
        now: datetime,
        lease: Claim | None = None,
    ) -> None:
        """A failed attempt: retried at ``retry_at``, or dead-lettered when that is None (unless
        the record changed again meanwhile: the new version is tried as queued)."""
        with self._db.session() as s:
            fence(s, lease, now, postgres=self._db.postgres)
            close_failed(s, entry, error, retry_at, now)

    def mark_blocked(
        self,
        entry: OutboxEntry,
        resource_type: str,
        reason: str,
        now: datetime,
        lease: Claim | None = None,
    ) -> None:
        """The server does not take ``resource_type``: the entry waits, neither retried nor
        dead-lettered, until :meth:`unblock` (unless the record changed again meanwhile)."""
        with self._db.session() as s:
            fence(s, lease, now, postgres=self._db.postgres)
            close_blocked(s, entry, resource_type, reason, now)

    def blocked(self, connection: str | None = None) -> dict[str, dict[str, int]]:
        """Blocked entries per connection and resource type waited on."""
        with self._db.session() as s:
            query = (
                select(OutboxRow.connection, OutboxRow.blocked_on, func.count())
                .where(OutboxRow.status == OutboxStatus.blocked)
                .group_by(OutboxRow.connection, OutboxRow.blocked_on)
            )
            if connection is not None:
                query = query.where(OutboxRow.connection == connection)
            out: dict[str, dict[str, int]] = {}
            for name, resource_type, count in s.execute(query):
                out.setdefault(str(name), {})[str(resource_type)] = int(count)
            return out

    def blocked_entries(self, connection: str | None = None) -> list[OutboxEntry]:
        """Entries waiting for the server to take their type, oldest first."""
        with self._db.session() as s:
            query = select(OutboxRow).where(OutboxRow.status == OutboxStatus.blocked)
            if connection is not None:
                query = query.where(OutboxRow.connection == connection)
            return [_entry(r) for r in s.scalars(query.order_by(OutboxRow.id))]

    def unblock(self, connection: str, resource_types: Sequence[str], now: datetime) -> int:
        """Entries waiting on these types are due again (the server takes them now)."""
        if not resource_types:
            return 0
        with self._db.session() as s:
            result = s.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.connection == connection,
                    OutboxRow.status == OutboxStatus.blocked,
                    OutboxRow.blocked_on.in_(resource_types),
                )
                .values(
                    status=OutboxStatus.pending,
                    blocked_on=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def dead_letters(self, connection: str | None = None) -> list[OutboxEntry]:
        with self._db.session() as s:
            query = select(OutboxRow).where(OutboxRow.status == OutboxStatus.dead)
            if connection is not None:
                query = query.where(OutboxRow.connection == connection)
            return [_entry(r) for r in s.scalars(query.order_by(OutboxRow.id))]

    def requeue(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Send dead letters again (all of them when ``ids`` is None)."""
        with self._db.session() as s:
            query = update(OutboxRow).where(OutboxRow.status == OutboxStatus.dead)
            if ids is not None:
                query = query.where(OutboxRow.id.in_(ids))
            result = s.execute(
                query.values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def depth(self, connection: str | None = None) -> QueueDepth:
        """Entries by status, of one connection or of all."""
        with self._db.session() as s:
            query = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
            if connection is not None:
                query = query.where(OutboxRow.connection == connection)
            return QueueDepth(**{str(status): int(count) for status, count in s.execute(query)})

    def by_connection(self, now: datetime) -> dict[str, QueueSchedule]:
        """Each connection's entries: due now, scheduled later, done, dead."""
        with self._db.session() as s:
            due_now = case((OutboxRow.next_attempt_at <= now, 1), else_=0)
            query = select(
                OutboxRow.connection, OutboxRow.status, func.count(), func.sum(due_now)
            ).group_by(OutboxRow.connection, OutboxRow.status)
            counts: dict[str, dict[str, int]] = {}
            for connection, status, count, due in s.execute(query):
                per = counts.setdefault(str(connection), {})
                if status == OutboxStatus.pending:
                    per["due"] = int(due or 0)
                    per["scheduled"] = int(count) - int(due or 0)
                else:
                    per[str(status)] = int(count)
            return {name: QueueSchedule(**per) for name, per in counts.items()}


class _Routed:
    """Which stored records ``routing`` sends to one connection (referrals parsed, the rest
    decided by kind, enrolment and whether the connection fulfils one of the patient's
    referrals)."""

    def __init__(self, s: Session, routing: Routing, connection: str) -> None:
        self.routing, self.connection = routing, connection
        self.enrolled = enrolled_patients(s, connection)
        self.fulfilled = fulfillers(s, routing)

    def takes(self, row: RecordRow) -> bool:
        pid = row.patient_id or row.id
        fulfiller = (
            self.routing.fulfiller(parsed(row))
            if row.kind in FULFILLED_KINDS and self.routing.fulfils_any
            else None
        )
        share = self.routing.share_of(
            row.kind,
            fulfiller,
            self.connection,
            enrolled=pid in self.enrolled,
            fulfils_patient=self.connection in self.fulfilled.get(pid, ()),
        )
        return share is not None


def drop_patient(s: Session, connection: str, patient_id: str) -> int:
    """Delete the patient's pending and dead entries for the connection; how many."""
    result = s.execute(
        delete(OutboxRow).where(
            OutboxRow.connection == connection,
            OutboxRow.patient_id == patient_id,
            OutboxRow.status != OutboxStatus.done,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def enqueue(
    s: Session,
    *,
    connection: str,
    kind: str,
    record_id: str,
    patient_id: str | None,
    version: int,
    now: datetime,
    deleting: bool = False,
) -> None:
    """Queue one record version for one connection (its entry is reset if it had one); with
    ``deleting``, its deletion rather than a write.

    The reset is one UPDATE of every column, not a read and a write: read first, an entry a
    push closed meanwhile (``close_done`` of the older version) could keep its ``done`` (the
    ORM writes only the columns it sees changed) and the new version would never be sent."""
    queued: dict[str, Any] = {
        "record_version": version,
        "status": OutboxStatus.pending,
        "attempts": 0,
        "next_attempt_at": now,
        "updated_at": now,
        "last_error": None,
        "patient_id": patient_id,
        "blocked_on": None,
        "deleting": deleting,
    }
    reset = (
        update(OutboxRow)
        .where(
            OutboxRow.connection == connection,
            OutboxRow.kind == kind,
            OutboxRow.record_id == record_id,
        )
        .values(**queued)
    )
    if s.execute(reset).rowcount:  # type: ignore[attr-defined]
        return
    s.add(
        OutboxRow(connection=connection, kind=kind, record_id=record_id, created_at=now, **queued)
    )


def enqueue_deletion(
    s: Session,
    *,
    connection: str,
    kind: str,
    record_id: str,
    patient_id: str | None,
    version: int,
    now: datetime,
) -> None:
    """Queue a record's local deletion for one connection (replacing any write queued)."""
    enqueue(
        s,
        connection=connection,
        kind=kind,
        record_id=record_id,
        patient_id=patient_id,
        version=version,
        now=now,
        deleting=True,
    )


def close_done(s: Session, entry: OutboxEntry, now: datetime) -> None:
    """Done, unless the record changed again meanwhile (then it stays queued)."""
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.id == entry.id, OutboxRow.record_version == entry.record_version)
        .values(status=OutboxStatus.done, last_error=None, updated_at=now)
    )


def close_all_done(s: Session, entries: Sequence[OutboxEntry], now: datetime) -> None:
    """``close_done`` for many entries in one statement executed many times (one round trip
    of the driver, not one ORM update each)."""
    if not entries:
        return
    table = cast("Table", OutboxRow.__table__)
    statement = (
        table.update()
        .where(table.c.id == bindparam("entry_id"), table.c.record_version == bindparam("seen"))
        .values(status=OutboxStatus.done, last_error=None, updated_at=now)
    )
    s.connection().execute(
        statement, [{"entry_id": e.id, "seen": e.record_version} for e in entries]
    )


def close_failed(
    s: Session, entry: OutboxEntry, error: str, retry_at: datetime | None, now: datetime
) -> None:
    """A failed attempt: retried at ``retry_at``, or dead-lettered when that is None (unless
    the record changed again meanwhile: the new version is tried as queued)."""
    values: dict[str, Any] = {
        "attempts": OutboxRow.attempts + 1,
        "last_error": error[:4000],
        "updated_at": now,
    }
    if retry_at is None:
        values["status"] = OutboxStatus.dead
    else:
        values["next_attempt_at"] = retry_at
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.id == entry.id, OutboxRow.record_version == entry.record_version)
        .values(**values)
    )


def close_blocked(
    s: Session, entry: OutboxEntry, resource_type: str, reason: str, now: datetime
) -> None:
    """The server does not take ``resource_type``: the entry waits (unless the record
    changed again meanwhile)."""
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.id == entry.id, OutboxRow.record_version == entry.record_version)
        .values(
            status=OutboxStatus.blocked,
            blocked_on=resource_type,
            last_error=reason[:4000],
            updated_at=now,
        )
    )
