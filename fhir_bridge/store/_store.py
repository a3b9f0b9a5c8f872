"""The store: one database, its repositories, and the writes that span several of them.

All SQL lives in this package; the rest of fhir-bridge talks to :class:`Store` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from fhir_bridge import model as m

from ._api_keys import ApiKeys
from ._audit import AuditTrail
from ._changes import ChangeFeed, Watermarks, advance, append, lock_feed
from ._conflicts import Conflicts, NewConflict
from ._conflicts import add as add_conflict
from ._conflicts import close as close_conflict
from ._database import Database
from ._deletions import Deleted, Gone
from ._deletions import delete as delete_record
from ._deletions import record as record_deleted
from ._deletions import requeue as requeue_deletion
from ._engine import MIGRATE_LOCK, migration_lock, open_engine
from ._enrolments import Enrolments, NewEnrolment, enrol
from ._handoffs import Handoffs
from ._leases import Claim, Leases, fence
from ._links import Link, Links
from ._links import save as save_link
from ._matches import PatientMatches
from ._outbox import Outbox, enqueue
from ._pushed import Closing, Written
from ._pushed import record as record_pushed
from ._records import PutResult, Records, mark_deleted, patient_of, put, put_noted, stored_version
from ._refusals import Refusals
from ._reports import Reports
from ._routing import Routing
from ._runs import Runs, SyncLog
from ._slots import RequestSlots
from ._subscription_secrets import SubscriptionSecrets
from ._tables import ConflictRow, RecordRow
from ._throttles import Throttles
from ._workers import Workers

_MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """Everything fhir-bridge remembers, in a SQLAlchemy database (a SQLite file by default).

    Each concept has a repository (``store.records``, ``store.outbox``, ``store.links``,
    ...); the methods here write what spans several of them in one transaction: records
    with their outbox entries, a conflict resolved by a record, a page of pulled changes.
    """

    def __init__(self, url: str, *, migrate: bool = True, engine: Engine | None = None) -> None:
        self.url = url
        self.engine: Engine = engine if engine is not None else open_engine(url)
        self._db = Database(self.engine)
        self.postgres = self._db.postgres
        self.records = Records(self._db)
        self.outbox = Outbox(self._db)
        self.links = Links(self._db)
        self.conflicts = Conflicts(self._db)
        self.leases = Leases(self._db)
        self.workers = Workers(self._db)
        self.throttles = Throttles(self._db)
        self.refusals = Refusals(self._db)
        self.runs = Runs(self._db)
        self.log = SyncLog(self._db)
        self.changes = ChangeFeed(self._db)
        self.watermarks = Watermarks(self._db)
        self.handoffs = Handoffs(self._db)
        self.api_keys = ApiKeys(self._db)
        self.audit = AuditTrail(self._db)
        self.matches = PatientMatches(self._db)
        self.enrolments = Enrolments(self._db)
        self.subscription_secrets = SubscriptionSecrets(self._db)
        self.reports = Reports(self._db)
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
        with migration_lock(self.engine), self._db.begin() as connection:
            if self.postgres:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        """Ask the database a trivial question (:class:`StoreUnavailable` when it is away)."""
        with self._db.connect() as connection:
            connection.execute(text("SELECT 1"))

    def request_slots(self, server: str, cap: int, *, poll: float = 0.5) -> RequestSlots:
        """At most ``cap`` requests in flight to ``server`` across every worker of this
        database (a process-local cap on SQLite)."""
        return RequestSlots(self.engine, server, cap, poll=poll)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ records and the outbox

    def put_records(
        self,
        records: Iterable[m.Record],
        connections: Sequence[str] | Routing,
        now: datetime,
        enrolments: Sequence[NewEnrolment] = (),
    ) -> list[PutResult]:
        """Store records and enrolments, in one transaction; each changed record is queued
        for every connection (with a :class:`Routing`: where it routes the record).

        Enrolments are written first, so the records they enrol are queued for them."""
        with self._db.session() as s:
            for e in enrolments:
                enrol(s, e.patient_id, e.connection, e.mrn, now)
            return [put(s, record, connections, now) for record in records]

    def put_record_if(
        self,
        record: m.Record,
        connections: Sequence[str] | Routing,
        now: datetime,
        if_version: int | None,
    ) -> PutResult | None:
        """Store a record only if its stored version is ``if_version`` (None: any); else None."""
        with self._db.session() as s:
            current = stored_version(s, record.kind, record.id)
            if if_version is not None and current != if_version:
                return None
            return put(s, record, connections, now)

    def create_once(
        self, record: m.Record, connections: Sequence[str], now: datetime, *, source: str
    ) -> bool:
        """Store a record only if none of its kind and id was ever stored (one deleted counts:
        it is not brought back), with its outbox rows and a change-feed row (``source``: the
        connection that caused it), in one transaction. False when it exists, also when a
        concurrent writer stored it first (the primary key refuses the second)."""
        try:
            with self._db.session() as s:
                if s.get(RecordRow, (record.kind, record.id)) is not None:
                    return False
                if self.postgres:
                    lock_feed(s)
                put_noted(s, source, record, connections, now)
                return True
        except IntegrityError:
            return False

    def resolve_conflict(
        self, conflict_id: int, resolution: str, record: m.Record, now: datetime
    ) -> PutResult:
        """Close a conflict with the chosen record, queued for its connection (one transaction;
        queued even when the record is the one stored, as when the local side is taken).

        KeyError when the conflict is not open.
        """
        with self._db.session() as s:
            connection = close_conflict(s, conflict_id, resolution, now)
            result = put(s, record, [connection], now)
            if not result.changed:  # the local side kept: it still has to reach the server
                enqueue(
                    s,
                    connection=connection,
                    kind=record.kind,
                    record_id=record.id,
                    patient_id=patient_of(record),
                    version=result.version,
                    now=now,
                )
            return result

    # ------------------------------------------------------------------ deletions

    def delete_record(
        self, kind: str, record_id: str, now: datetime, *, with_records: bool = False
    ) -> Deleted | None:
        """Delete a record here and queue its deletion for every connection that holds a
        resource of it or had it queued (one transaction); None when there was none. A
        patient's records go with it when ``with_records``; else a patient with records kept
        here is refused (:class:`~fhir_bridge.errors.PatientHasRecords`)."""
        with self._db.session() as s:
            return delete_record(s, kind, record_id, now, with_records=with_records)

    def record_deletions(
        self,
        connection: str,
        *,
        run_id: int | None,
        written: Sequence[Written] = (),
        gone: Sequence[Gone] = (),
        closing: Sequence[Closing] = (),
        conflicts: Sequence[NewConflict] = (),
        restored: Sequence[m.Record] = (),
        leases: Sequence[Claim] = (),
        now: datetime,
    ) -> None:
        """What a patient's deletions left behind on one connection (links kept or dropped,
        the sync log, closed entries, conflicts, records the EHR's edit brought back), in
        one transaction, while every lease in ``leases`` is held (else :class:`LeaseLost`)."""
        with self._db.session() as s:
            record_deleted(
                s,
                connection,
                run_id=run_id,
                written=written,
                gone=gone,
                closing=closing,
                conflicts=conflicts,
                restored=restored,
                leases=leases,
                now=now,
                postgres=self.postgres,
            )

    def resolve_deletion_conflict(self, conflict_id: int, now: datetime) -> PutResult:
        """Close a deletion's conflict for the local side: the deletion is queued for the
        conflict's connection again (one transaction). KeyError when the conflict is not
        open; LookupError when the record is no longer deleted."""
        with self._db.session() as s:
            connection = close_conflict(s, conflict_id, "local", now)
            row = s.get(ConflictRow, conflict_id)
            if row is None:
                raise KeyError(conflict_id)
            version = requeue_deletion(s, connection, row.kind, row.record_id, now)
            if version is None:
                raise LookupError(f"{row.kind} {row.record_id} is not deleted")
            return PutResult(row.kind, row.record_id, version, changed=True)

    # ------------------------------------------------------------------ pull

    def record_push(
        self,
        *,
        run_id: int | None,
        written: Sequence[Written],
        closing: Sequence[Closing] = (),
        leases: Sequence[Claim] = (),
        now: datetime,
    ) -> None:
        """What one bundle of a push left behind (links, sync log lines, closed outbox
        entries), in one transaction, while every lease in ``leases`` is still held (else
        :class:`LeaseLost` naming the first one lost, and nothing is written)."""
        with self._db.session() as s:
            record_pushed(
                s,
                run_id=run_id,
                written=written,
                closing=closing,
                leases=leases,
                now=now,
                postgres=self._db.postgres,
            )

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
        with self._db.session() as s:
            fence(s, lease, now, postgres=self.postgres)
            if self.postgres and (records or deleted):
                lock_feed(s)
            results = [
                put_noted(s, connection, record, [connection] if push_back else [], now)
                for record, push_back in records
            ]
            for link in links:
                save_link(s, link, now)
            for kind, record_id in deleted:
                gone = mark_deleted(s, kind, record_id, now)
                if gone is not None:
                    append(
                        s,
                        connection,
                        kind=kind,
                        record_id=record_id,
                        patient_id=gone.patient_id,
                        version=gone.version,
                        change="deleted",
                        now=now,
                    )
            for conflict in conflicts:
                add_conflict(s, connection, conflict, now)
            if watermark is not None:
                advance(s, connection, resource_type, watermark)
            return results
