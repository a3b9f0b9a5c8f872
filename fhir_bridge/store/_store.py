"""The store: internal records, their links to server resources, the outbox, the sync log.

All SQL lives here; sync code talks to :class:`Store` only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic import TypeAdapter
from sqlalchemy import Engine, case, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from fhir_bridge import model as m
from fhir_bridge.errors import LeaseLost

from . import _leases as leases
from ._clock import utc
from ._engine import FEED_LOCK, MIGRATE_LOCK, migration_lock, open_engine
from ._leases import Claim
from ._tables import (
    ApiKeyRow,
    ChangeRow,
    ConflictRow,
    HandoffRow,
    LeaseRow,
    LinkRow,
    OutboxRow,
    OutboxStatus,
    RecordRow,
    SyncLogRow,
    SyncRunRow,
    ThrottleRow,
    WatermarkRow,
    WorkerRow,
)

_MIGRATIONS = Path(__file__).parent / "migrations"
_RECORD = TypeAdapter(m.AnyRecord)


def content_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PutResult:
    kind: str
    id: str
    version: int
    changed: bool


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


@dataclass(frozen=True, slots=True)
class NewConflict:
    kind: str
    record_id: str
    fields: list[str]
    base: dict[str, Any] | None
    local: dict[str, Any]
    remote: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Conflict:
    id: int
    connection: str
    kind: str
    record_id: str
    fields: list[str]
    base: dict[str, Any] | None
    local: dict[str, Any]
    remote: dict[str, Any]
    status: str
    created_at: datetime


def _conflict(row: ConflictRow) -> Conflict:
    return Conflict(
        row.id,
        row.connection,
        row.kind,
        row.record_id,
        list(row.fields),
        row.base,
        row.local,
        row.remote,
        row.status,
        utc(row.created_at),
    )


@dataclass(frozen=True, slots=True)
class Link:
    connection: str
    resource_type: str
    identifier: str
    kind: str | None
    record_id: str | None
    resource_id: str
    version_id: str | None
    last_updated: str | None
    sent_hash: str | None
    sent_json: dict[str, Any] | None
    server_json: dict[str, Any] | None


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
    )


def _link(row: LinkRow) -> Link:
    return Link(
        row.connection,
        row.resource_type,
        row.identifier,
        row.kind,
        row.record_id,
        row.resource_id,
        row.version_id,
        row.last_updated,
        row.sent_hash,
        row.sent_json,
        row.server_json,
    )


class Store:
    """A SQLAlchemy database (SQLite file by default) holding everything fhir-bridge remembers."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = open_engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision.

        Serialised across processes (a PostgreSQL advisory lock held by the migrating
        transaction; on SQLite a lock file beside the database), so several processes
        starting on a fresh database do not create the schema twice.
        """
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with migration_lock(self.engine), self.engine.begin() as connection:
            if self.postgres:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # ------------------------------------------------------------------ leases and workers

    def _fence(self, s: Session, lease: Claim | None, now: datetime) -> None:
        if lease is not None:
            leases.check(s, lease, now, postgres=self.postgres)

    def claim(
        self,
        connection: str,
        scope: str,
        key: str,
        *,
        holder: str,
        now: datetime,
        seconds: float,
        dead: Sequence[str] = (),
    ) -> Claim | None:
        """Lease one unit of work (None: another worker holds it). Leases of ``dead``
        holders (processes known to be gone) are taken over without waiting for expiry."""
        with self.session() as s:
            return leases.take(
                s,
                connection=connection,
                scope=scope,
                key=key,
                holder=holder,
                now=now,
                seconds=seconds,
                dead=dead,
            )

    def claim_push(
        self,
        connection: str,
        *,
        holder: str,
        now: datetime,
        seconds: float,
        limit: int,
        patient_id: str | None = None,
        dead: Sequence[str] = (),
    ) -> list[Claim]:
        """Lease up to ``limit`` patients with due outbox work that nobody else holds
        (leases of ``dead`` holders do not count)."""
        with self.session() as s:
            found = leases.due_patients(
                s,
                connection=connection,
                now=now,
                limit=limit,
                postgres=self.postgres,
                patient_id=patient_id,
                dead=dead,
            )
            claims = []
            for key in sorted(found):  # one order for every claimer: no lock cycles
                claim = leases.take(
                    s,
                    connection=connection,
                    scope="push",
                    key=key,
                    holder=holder,
                    now=now,
                    seconds=seconds,
                    dead=dead,
                )
                if claim is not None:
                    claims.append(claim)
            return claims

    def lease_holders(self) -> list[str]:
        """Every process holding a lease now or lately (expired leases included)."""
        with self.session() as s:
            return list(s.scalars(select(LeaseRow.holder).distinct()))

    def renew(self, claims: Sequence[Claim], now: datetime, seconds: float) -> list[Claim]:
        """Extend the claims still held; those missing from the answer are lost."""
        with self.session() as s:
            return leases.renew(s, claims, now, seconds)

    def release(self, claim: Claim) -> None:
        with self.session() as s:
            leases.release(s, claim)

    def holds(self, claim: Claim, now: datetime) -> bool:
        with self.session() as s:
            try:
                leases.check(s, claim, now, postgres=False)
            except LeaseLost:
                return False
            return True

    def leases(self, connection: str | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(LeaseRow).order_by(LeaseRow.holder, LeaseRow.scope, LeaseRow.key)
            if connection is not None:
                query = query.where(LeaseRow.connection == connection)
            return [
                {
                    "connection": r.connection,
                    "scope": r.scope,
                    "key": r.key,
                    "holder": r.holder,
                    "expires_at": utc(r.expires_at),
                }
                for r in s.scalars(query)
            ]

    def register_worker(self, worker: str, host: str, pid: int, now: datetime) -> None:
        with self.session() as s:
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

    def worker_alive(self, worker: str, now: datetime) -> None:
        with self.session() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == worker).values(heartbeat_at=now))

    def worker_stopped(self, worker: str, now: datetime) -> None:
        """A worker stopping cleanly gives back every lease it holds."""
        with self.session() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.holder == worker))
            s.execute(update(WorkerRow).where(WorkerRow.id == worker).values(stopped_at=now))

    def workers(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(WorkerRow).order_by(WorkerRow.started_at))
            return [
                {
                    "id": r.id,
                    "host": r.host,
                    "pid": r.pid,
                    "started_at": utc(r.started_at),
                    "heartbeat_at": utc(r.heartbeat_at),
                    "stopped_at": None if r.stopped_at is None else utc(r.stopped_at),
                }
                for r in rows
            ]

    def free_stuck_claims(self, now: datetime, dead_after: timedelta) -> int:
        """Maintenance: drop expired leases and those of workers silent for ``dead_after``.

        Workers silent that long are marked stopped. Returns how many leases were freed.
        """
        with self.session() as s:
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

    def throttle(self, connection: str, until: datetime, now: datetime) -> None:
        """A server said wait: no worker sends to it before ``until`` (kept if already later)."""
        with self.session() as s:
            row = s.get(ThrottleRow, connection, with_for_update=self.postgres)
            if row is None:
                s.add(ThrottleRow(connection=connection, until=until, set_at=now))
            elif utc(row.until) < until:
                row.until, row.set_at = until, now

    def throttled_until(self, connection: str, now: datetime) -> datetime | None:
        with self.session() as s:
            row = s.get(ThrottleRow, connection)
            return None if row is None or utc(row.until) <= now else utc(row.until)

    def queue_by_connection(self, now: datetime) -> dict[str, dict[str, int]]:
        """Outbox counts per connection: due now, scheduled later, done, dead."""
        with self.session() as s:
            due_now = case((OutboxRow.next_attempt_at <= now, 1), else_=0)
            query = select(
                OutboxRow.connection, OutboxRow.status, func.count(), func.sum(due_now)
            ).group_by(OutboxRow.connection, OutboxRow.status)
            counts: dict[str, dict[str, int]] = {}
            for connection, status, count, due in s.execute(query):
                per = counts.setdefault(str(connection), {})
                if status == OutboxStatus.pending:
                    if due:
                        per["due"] = int(due)
                    if int(count) - int(due or 0):
                        per["scheduled"] = int(count) - int(due or 0)
                else:
                    per[str(status)] = int(count)
            return counts

    # ------------------------------------------------------------------ records

    def put_records(
        self, records: Iterable[m.Record], connections: Sequence[str], now: datetime
    ) -> list[PutResult]:
        """Store records; each changed one is queued for every connection, in one transaction."""
        with self.session() as s:
            return [_put(s, record, connections, now) for record in records]

    def is_deleted(self, kind: str, record_id: str) -> bool:
        """True for a record the EHR deleted (kept, marked, never pushed again)."""
        with self.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            return row is not None and row.deleted

    def get_record(self, kind: str, record_id: str) -> m.Record | None:
        with self.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            return None if row is None or row.deleted else _RECORD.validate_python(row.data)

    def record_version(self, kind: str, record_id: str) -> int | None:
        with self.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            return None if row is None else row.version

    def records_of_patient_versions(self, patient_id: str) -> list[tuple[m.Record, int]]:
        """The patient's records, each with its stored version (read in one transaction)."""
        with self.session() as s:
            rows = s.scalars(
                select(RecordRow).where(RecordRow.patient_id == patient_id, ~RecordRow.deleted)
            )
            return [(_RECORD.validate_python(r.data), r.version) for r in rows]

    def records_of_patient(self, patient_id: str) -> list[m.Record]:
        with self.session() as s:
            rows = s.scalars(
                select(RecordRow).where(RecordRow.patient_id == patient_id, ~RecordRow.deleted)
            )
            return [_RECORD.validate_python(r.data) for r in rows]

    def patient_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(RecordRow.id).where(RecordRow.kind == "patient")))

    # ------------------------------------------------------------------ outbox

    def enqueue_unsynced(self, connection: str, now: datetime) -> int:
        """Queue every record the connection has never been sent or whose version moved on."""
        with self.session() as s:
            queued = {
                (k, r): v
                for k, r, v in s.execute(
                    select(OutboxRow.kind, OutboxRow.record_id, OutboxRow.record_version).where(
                        OutboxRow.connection == connection
                    )
                )
            }
            count = 0
            for row in s.scalars(select(RecordRow).where(~RecordRow.deleted)):
                if queued.get((row.kind, row.id)) != row.version:
                    _enqueue(
                        s,
                        connection=connection,
                        kind=row.kind,
                        record_id=row.id,
                        patient_id=row.patient_id,
                        version=row.version,
                        now=now,
                    )
                    count += 1
            return count

    def due(
        self, connection: str, now: datetime, patient_id: str | None = None
    ) -> list[OutboxEntry]:
        with self.session() as s:
            query = select(OutboxRow).where(
                OutboxRow.connection == connection,
                OutboxRow.status == OutboxStatus.pending,
                OutboxRow.next_attempt_at <= now,
            )
            if patient_id is not None:
                query = query.where(OutboxRow.patient_id == patient_id)
            return [_entry(r) for r in s.scalars(query.order_by(OutboxRow.id))]

    def mark_done(self, entry: OutboxEntry, now: datetime, lease: Claim | None = None) -> None:
        """Done, unless the record changed again meanwhile (then it stays queued).

        With ``lease``, only while that lease is still held (else :class:`LeaseLost`).
        """
        with self.session() as s:
            self._fence(s, lease, now)
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == entry.id, OutboxRow.record_version == entry.record_version)
                .values(status=OutboxStatus.done, last_error=None, updated_at=now)
            )

    def mark_failed(
        self,
        entry: OutboxEntry,
        error: str,
        retry_at: datetime | None,
        now: datetime,
        lease: Claim | None = None,
    ) -> None:
        """A failed attempt: retried at ``retry_at``, or dead-lettered when that is None."""
        with self.session() as s:
            self._fence(s, lease, now)
            values: dict[str, Any] = {
                "attempts": OutboxRow.attempts + 1,
                "last_error": error[:4000],
                "updated_at": now,
            }
            if retry_at is None:
                values["status"] = OutboxStatus.dead
            else:
                values["next_attempt_at"] = retry_at
            s.execute(update(OutboxRow).where(OutboxRow.id == entry.id).values(**values))

    def dead_letters(self, connection: str | None = None) -> list[OutboxEntry]:
        with self.session() as s:
            query = select(OutboxRow).where(OutboxRow.status == OutboxStatus.dead)
            if connection is not None:
                query = query.where(OutboxRow.connection == connection)
            return [_entry(r) for r in s.scalars(query.order_by(OutboxRow.id))]

    def requeue(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Send dead letters again (all of them when ``ids`` is None)."""
        with self.session() as s:
            query = update(OutboxRow).where(OutboxRow.status == OutboxStatus.dead)
            if ids is not None:
                query = query.where(OutboxRow.id.in_(ids))
            result = s.execute(
                query.values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def queue_depth(self, connection: str | None = None) -> dict[str, int]:
        with self.session() as s:
            query = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
            if connection is not None:
                query = query.where(OutboxRow.connection == connection)
            return {str(status): int(count) for status, count in s.execute(query)}

    # ------------------------------------------------------------------ links

    def links(
        self, connection: str, resource_type: str, identifiers: Sequence[str]
    ) -> dict[str, Link]:
        if not identifiers:
            return {}
        with self.session() as s:
            rows = s.scalars(
                select(LinkRow).where(
                    LinkRow.connection == connection,
                    LinkRow.resource_type == resource_type,
                    LinkRow.identifier.in_(identifiers),
                )
            )
            return {r.identifier: _link(r) for r in rows}

    def links_of_connection(self, connection: str) -> list[Link]:
        with self.session() as s:
            rows = s.scalars(select(LinkRow).where(LinkRow.connection == connection))
            return [_link(r) for r in rows]

    def save_links(self, links: Iterable[Link], now: datetime, lease: Claim | None = None) -> None:
        with self.session() as s:
            self._fence(s, lease, now)
            for link in links:
                _save_link(s, link, now)

    def distrust(self, connection: str, resource_type: str, identifier: str, now: datetime) -> None:
        """Forget what we believe we last sent for one resource, and queue its record again.

        For a write that reached the server after its worker lost the lease: the next push
        renders the record afresh and writes it over whatever the server holds.
        """
        with self.session() as s:
            row = s.get(LinkRow, (connection, resource_type, identifier))
            if row is None:
                return
            row.sent_hash = None
            if row.kind and row.record_id:
                s.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.connection == connection,
                        OutboxRow.kind == row.kind,
                        OutboxRow.record_id == row.record_id,
                        OutboxRow.status == OutboxStatus.done,
                    )
                    .values(status=OutboxStatus.pending, next_attempt_at=now, updated_at=now)
                )

    def links_by_server_id(self, connection: str) -> dict[str, Link]:
        """Every link of a connection, by the server's ``Type/id``."""
        with self.session() as s:
            rows = s.scalars(select(LinkRow).where(LinkRow.connection == connection))
            return {f"{r.resource_type}/{r.resource_id}": _link(r) for r in rows}

    # ------------------------------------------------------------------ pull

    def watermark(self, connection: str, resource_type: str) -> str | None:
        with self.session() as s:
            row = s.get(WatermarkRow, (connection, resource_type))
            return None if row is None else row.last_updated

    def apply_pull(
        self,
        connection: str,
        resource_type: str,
        *,
        records: Sequence[tuple[m.Record, bool]],
        links: Sequence[Link],
        conflicts: Sequence[NewConflict],
        watermark: str | None,
        now: datetime,
        deleted: Sequence[tuple[str, str]] = (),
        lease: Claim | None = None,
    ) -> list[PutResult]:
        """Apply one page of pulled changes in one transaction.

        ``records`` pairs each record with whether it must go back to this connection (it
        holds local changes the EHR does not have yet). The watermark advances with them, so
        a crash leaves either the whole page applied or none of it. With ``lease`` (the pull
        lease on this connection and type), only while it is held.

        On PostgreSQL, writers of the change feed are serialised (a transaction-level
        advisory lock taken before the first feed row), so feed ids commit in increasing
        order and a reader following the cursor never skips a row committed late.
        """
        with self.session() as s:
            self._fence(s, lease, now)
            if self.postgres and (records or deleted):
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
            results = [
                _put(s, record, [connection] if push_back else [], now)
                for record, push_back in records
            ]
            for (record, _), result in zip(records, results, strict=True):
                if result.changed:
                    _feed(
                        s,
                        connection,
                        kind=record.kind,
                        record_id=record.id,
                        patient_id=_patient_of(record),
                        version=result.version,
                        change="created" if result.version == 1 else "updated",
                        now=now,
                    )
            for link in links:
                _save_link(s, link, now)
            for kind, record_id in deleted:
                gone = s.get(RecordRow, (kind, record_id))
                if gone is not None and not gone.deleted:
                    gone.deleted, gone.version, gone.updated_at = True, gone.version + 1, now
                    _feed(
                        s,
                        connection,
                        kind=kind,
                        record_id=record_id,
                        patient_id=gone.patient_id,
                        version=gone.version,
                        change="deleted",
                        now=now,
                    )
            for c in conflicts:
                s.add(
                    ConflictRow(
                        connection=connection,
                        kind=c.kind,
                        record_id=c.record_id,
                        fields=c.fields,
                        base=c.base,
                        local=c.local,
                        remote=c.remote,
                        status="open",
                        created_at=now,
                    )
                )
            if watermark is not None:
                row = s.get(WatermarkRow, (connection, resource_type))
                if row is None:
                    s.add(
                        WatermarkRow(
                            connection=connection,
                            resource_type=resource_type,
                            last_updated=watermark,
                        )
                    )
                elif watermark > row.last_updated:
                    row.last_updated = watermark
            return results

    def conflicts(self, status: str | None = "open") -> list[Conflict]:
        with self.session() as s:
            query = select(ConflictRow).order_by(ConflictRow.id)
            if status is not None:
                query = query.where(ConflictRow.status == status)
            return [_conflict(r) for r in s.scalars(query)]

    def get_conflict(self, conflict_id: int) -> Conflict | None:
        with self.session() as s:
            row = s.get(ConflictRow, conflict_id)
            return None if row is None else _conflict(row)

    def resolve_conflict(
        self, conflict_id: int, resolution: str, record: m.Record, now: datetime
    ) -> PutResult:
        """Close a conflict with the chosen record, queued for its connection (one transaction)."""
        with self.session() as s:
            row = s.get(ConflictRow, conflict_id)
            if row is None or row.status != "open":
                raise KeyError(conflict_id)
            row.status, row.resolution, row.resolved_at = "resolved", resolution, now
            return _put(s, record, [row.connection], now)

    # ------------------------------------------------------------------ runs and log

    def start_run(
        self, connection: str, direction: str, now: datetime, worker: str | None = None
    ) -> int:
        with self.session() as s:
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

    def finish_run(self, run_id: int, outcome: str, counts: dict[str, int], now: datetime) -> None:
        with self.session() as s:
            s.execute(
                update(SyncRunRow)
                .where(SyncRunRow.id == run_id)
                .values(finished_at=now, outcome=outcome, counts=counts)
            )

    def log(
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
        """Log one thing a run did; with ``link``, save it in the same transaction."""
        with self.session() as s:
            self._fence(s, lease, now)
            if link is not None:
                _save_link(s, link, now)
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

    def log_of(self, identifier_prefix: str) -> list[dict[str, Any]]:
        """Every sync-log entry for identifiers starting with the prefix, oldest first."""
        with self.session() as s:
            query = (
                select(SyncLogRow, SyncRunRow.worker)
                .join(SyncRunRow, SyncRunRow.id == SyncLogRow.run_id)
                .where(SyncLogRow.identifier.startswith(identifier_prefix, autoescape=True))
                .order_by(SyncLogRow.id)
            )
            return [
                {
                    "id": r.id,
                    "run_id": r.run_id,
                    "worker": worker,
                    "resource_type": r.resource_type,
                    "identifier": r.identifier,
                    "action": r.action,
                    "record_version": r.record_version,
                    "server_version": r.server_version,
                }
                for r, worker in s.execute(query)
            ]

    def log_entries(self, action: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest sync-log entries (optionally of one action), newest first."""
        with self.session() as s:
            query = select(SyncLogRow).order_by(SyncLogRow.id.desc()).limit(limit)
            if action is not None:
                query = query.where(SyncLogRow.action == action)
            return [
                {
                    "run_id": r.run_id,
                    "resource_type": r.resource_type,
                    "identifier": r.identifier,
                    "action": r.action,
                    "detail": r.detail,
                }
                for r in s.scalars(query)
            ]

    def record_handoff(
        self,
        *,
        package_id: str,
        patient_id: str,
        handoff_type: str,
        author: str | None,
        destination: str | None,
        findings: list[dict[str, Any]],
        delivery: str | None,
        now: datetime,
        document: dict[str, Any] | None = None,
    ) -> int:
        with self.session() as s:
            row = HandoffRow(
                package_id=package_id,
                patient_id=patient_id,
                handoff_type=handoff_type,
                author=author,
                destination=destination,
                findings=findings,
                delivery=delivery,
                document=document,
                created_at=now,
            )
            s.add(row)
            s.flush()
            return row.id

    def handoffs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest handoffs, newest first (without their documents)."""
        with self.session() as s:
            rows = s.scalars(select(HandoffRow).order_by(HandoffRow.id.desc()).limit(limit))
            return [_handoff(r) for r in rows]

    def handoff(self, handoff_id: int) -> dict[str, Any] | None:
        """One handoff with the document Bundle that was built."""
        with self.session() as s:
            row = s.get(HandoffRow, handoff_id)
            return None if row is None else {**_handoff(row), "document": row.document}

    # ------------------------------------------------------------------ API keys and versions

    def create_api_key(self, name: str, scopes: Sequence[str], now: datetime) -> str:
        """A new key (shown once); only its hash is stored."""
        key = "fbk_" + secrets.token_urlsafe(32)
        with self.session() as s:
            s.add(
                ApiKeyRow(name=name, key_hash=_key_hash(key), scopes=list(scopes), created_at=now)
            )
        return key

    def api_key_scopes(self, key: str) -> list[str] | None:
        """The scopes of a valid key, None for an unknown or revoked one."""
        with self.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _key_hash(key)))
            return None if row is None or row.revoked else list(row.scopes)

    def record_with_version(self, kind: str, record_id: str) -> tuple[m.Record, int] | None:
        with self.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            if row is None or row.deleted:
                return None
            return _RECORD.validate_python(row.data), row.version

    def put_record_if(
        self, record: m.Record, connections: Sequence[str], now: datetime, if_version: int | None
    ) -> PutResult | None:
        """Store a record only if its stored version is ``if_version`` (None: any); else None."""
        with self.session() as s:
            row = s.get(RecordRow, (record.kind, record.id))
            current = None if row is None or row.deleted else row.version
            if if_version is not None and current != if_version:
                return None
            return _put(s, record, connections, now)

    def delete_record(self, kind: str, record_id: str, now: datetime) -> bool:
        """Mark a record deleted (kept, never pushed again); False when there was none."""
        with self.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            if row is None or row.deleted:
                return False
            row.deleted, row.version, row.updated_at = True, row.version + 1, now
            return True

    def list_records(
        self, kind: str, patient_id: str | None, limit: int, offset: int
    ) -> list[tuple[m.Record, int]]:
        with self.session() as s:
            query = select(RecordRow).where(RecordRow.kind == kind, ~RecordRow.deleted)
            if patient_id is not None:
                query = query.where(RecordRow.patient_id == patient_id)
            rows = s.scalars(query.order_by(RecordRow.id).limit(limit).offset(offset))
            return [(_RECORD.validate_python(r.data), r.version) for r in rows]

    def changes(self, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Records changed by pulls after cursor ``since``, oldest first (the change feed)."""
        with self.session() as s:
            rows = s.scalars(
                select(ChangeRow).where(ChangeRow.id > since).order_by(ChangeRow.id).limit(limit)
            )
            return [
                {
                    "cursor": r.id,
                    "connection": r.connection,
                    "kind": r.kind,
                    "id": r.record_id,
                    "patient_id": r.patient_id,
                    "version": r.record_version,
                    "change": r.change,
                    "at": utc(r.at).isoformat(),
                }
                for r in rows
            ]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest sync runs, newest first."""
        with self.session() as s:
            rows = s.scalars(select(SyncRunRow).order_by(SyncRunRow.id.desc()).limit(limit))
            return [_run(r) for r in rows]

    def last_runs(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The latest finished push and pull of each connection: ``{connection: {direction:
        run}}``, so a reader sees when each server was last reached and how that went."""
        with self.session() as s:
            latest = (
                select(func.max(SyncRunRow.id))
                .where(SyncRunRow.finished_at.is_not(None))
                .group_by(SyncRunRow.connection, SyncRunRow.direction)
            )
            found: dict[str, dict[str, dict[str, Any]]] = {}
            for r in s.scalars(select(SyncRunRow).where(SyncRunRow.id.in_(latest))):
                found.setdefault(r.connection, {})[r.direction] = _run(r)
            return found


def _run(row: SyncRunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "connection": row.connection,
        "direction": row.direction,
        "started_at": utc(row.started_at).isoformat(),
        "finished_at": None if row.finished_at is None else utc(row.finished_at).isoformat(),
        "outcome": row.outcome,
        "counts": row.counts,
    }


def _put(s: Session, record: m.Record, connections: Sequence[str], now: datetime) -> PutResult:
    kind = record.kind
    data = record.model_dump(mode="json", exclude_none=True)
    patient_id = _patient_of(record)
    row = s.get(RecordRow, (kind, record.id))
    if row is not None and row.data == data and not row.deleted:
        return PutResult(kind, record.id, row.version, changed=False)
    if row is None:
        row = RecordRow(kind=kind, id=record.id, version=1)
        s.add(row)
    else:
        row.version += 1
    row.data, row.updated_at, row.patient_id, row.deleted = data, now, patient_id, False
    s.flush()
    for connection in connections:
        _enqueue(
            s,
            connection=connection,
            kind=kind,
            record_id=record.id,
            patient_id=patient_id,
            version=row.version,
            now=now,
        )
    return PutResult(kind, record.id, row.version, changed=True)


def _handoff(row: HandoffRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "package_id": row.package_id,
        "patient_id": row.patient_id,
        "type": row.handoff_type,
        "author": row.author,
        "destination": row.destination,
        "findings": row.findings,
        "delivery": row.delivery,
        "created_at": utc(row.created_at).isoformat(),
    }


def _patient_of(record: m.Record) -> str:
    return record.id if record.kind == "patient" else record.patient.id  # type: ignore[attr-defined]


def _feed(
    s: Session,
    connection: str,
    *,
    kind: str,
    record_id: str,
    patient_id: str | None,
    version: int,
    change: str,
    now: datetime,
) -> None:
    s.add(
        ChangeRow(
            connection=connection,
            kind=kind,
            record_id=record_id,
            patient_id=patient_id,
            record_version=version,
            change=change,
            at=now,
        )
    )


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _save_link(s: Session, link: Link, now: datetime) -> None:
    s.merge(LinkRow(**{f: getattr(link, f) for f in Link.__dataclass_fields__}, synced_at=now))


def _enqueue(
    s: Session,
    *,
    connection: str,
    kind: str,
    record_id: str,
    patient_id: str | None,
    version: int,
    now: datetime,
) -> None:
    row = s.scalar(
        select(OutboxRow).where(
            OutboxRow.connection == connection,
            OutboxRow.kind == kind,
            OutboxRow.record_id == record_id,
        )
    )
    if row is None:
        s.add(
            OutboxRow(
                connection=connection,
                kind=kind,
                record_id=record_id,
                patient_id=patient_id,
                record_version=version,
                status=OutboxStatus.pending,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        return
    row.record_version, row.status, row.attempts = version, OutboxStatus.pending, 0
    row.next_attempt_at, row.updated_at, row.last_error, row.patient_id = now, now, None, patient_id
