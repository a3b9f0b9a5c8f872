"""Local deletions on their way to the EHRs: queued with the delete, recorded per patient.

A record deleted here is marked deleted (kept, never written again) and, in the same
transaction, its deletion is queued (an outbox entry with ``deleting``) for every connection
that holds a resource of it (a link) or had it queued; a connection never sent it has
nothing to undo. Push sends the deletion (``sync/_deletions.py``) and records what became of
it here, in one transaction per patient: the links of what the server now holds (a resource
updated to entered-in-error) or dropped (deleted), the sync log, the closed entries, the
conflicts of a deletion racing an EHR edit, and records restored when the EHR's edit wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_bridge import model as m
from fhir_bridge.errors import PatientHasRecords

from ._changes import lock_feed
from ._conflicts import NewConflict
from ._conflicts import add as add_conflict
from ._leases import Claim
from ._outbox import enqueue_deletion
from ._pushed import Closing, Written
from ._pushed import record as record_pushed
from ._records import mark_deleted, put_noted
from ._tables import LinkRow, OutboxRow, RecordRow


@dataclass(frozen=True, slots=True)
class Deleted:
    """A record deleted here: its new version and the connections its deletion goes to (a
    patient's, with ``records`` of its own records deleted with it: theirs too)."""

    kind: str
    record_id: str
    version: int
    connections: tuple[str, ...]
    records: int = 0


@dataclass(frozen=True, slots=True)
class Gone:
    """A resource deleted on a connection's server: its link is dropped."""

    connection: str
    resource_type: str
    identifier: str


def delete(
    s: Session, kind: str, record_id: str, now: datetime, *, with_records: bool = False
) -> Deleted | None:
    """Mark a record deleted and queue its deletion where it was sent or queued; None when
    there was no such record (or it was deleted already). A patient with records still kept
    here is refused (:class:`PatientHasRecords`) unless ``with_records``: then each of them is
    deleted too, in the same transaction."""
    if kind == "patient":
        return _delete_patient(s, record_id, now, with_records=with_records)
    return _delete_one(s, kind, record_id, now)


def _delete_patient(
    s: Session, patient_id: str, now: datetime, *, with_records: bool
) -> Deleted | None:
    patient = _delete_one(s, "patient", patient_id, now)
    if patient is None:
        return None
    kept = s.execute(
        select(RecordRow.kind, RecordRow.id).where(
            RecordRow.patient_id == patient_id,
            RecordRow.kind != "patient",
            RecordRow.deleted.is_(False),
        )
    ).all()
    if kept and not with_records:  # the caller's transaction is rolled back: nothing deleted
        raise PatientHasRecords(patient_id, len(kept))
    connections = set(patient.connections)
    for kind, record_id in kept:
        one = _delete_one(s, kind, record_id, now)
        connections |= set(one.connections if one is not None else ())
    return Deleted(
        "patient",
        patient_id,
        patient.version,
        tuple(sorted(connections)),
        records=len(kept),
    )


def _delete_one(s: Session, kind: str, record_id: str, now: datetime) -> Deleted | None:
    row = mark_deleted(s, kind, record_id, now)
    if row is None:
        return None
    linked = s.scalars(
        select(LinkRow.connection).where(LinkRow.kind == kind, LinkRow.record_id == record_id)
    )
    queued = s.scalars(
        select(OutboxRow.connection).where(OutboxRow.kind == kind, OutboxRow.record_id == record_id)
    )
    connections = tuple(sorted(set(linked) | set(queued)))
    for connection in connections:
        enqueue_deletion(
            s,
            connection=connection,
            kind=kind,
            record_id=record_id,
            patient_id=row.patient_id,
            version=row.version,
            now=now,
        )
    return Deleted(kind, record_id, row.version, connections)


def requeue(s: Session, connection: str, kind: str, record_id: str, now: datetime) -> int | None:
    """Queue a deleted record's deletion for one connection again (a conflict settled for the
    local side); its version, or None when the record is not deleted."""
    row = s.get(RecordRow, (kind, record_id))
    if row is None or not row.deleted:
        return None
    enqueue_deletion(
        s,
        connection=connection,
        kind=kind,
        record_id=record_id,
        patient_id=row.patient_id,
        version=row.version,
        now=now,
    )
    return row.version


def record(
    s: Session,
    connection: str,
    *,
    run_id: int | None,
    written: Sequence[Written],
    gone: Sequence[Gone],
    closing: Sequence[Closing],
    conflicts: Sequence[NewConflict],
    restored: Sequence[m.Record],
    leases: Sequence[Claim],
    now: datetime,
    postgres: bool,
) -> None:
    """What one patient's deletions left behind, every lease checked first."""
    record_pushed(
        s,
        run_id=run_id,
        written=written,
        closing=closing,
        leases=leases,
        now=now,
        postgres=postgres,
    )
    for g in gone:
        s.execute(
            sql_delete(LinkRow).where(
                LinkRow.connection == g.connection,
                LinkRow.resource_type == g.resource_type,
                LinkRow.identifier == g.identifier,
            )
        )
    for conflict in conflicts:
        add_conflict(s, connection, conflict, now)
    if postgres and restored:
        lock_feed(s)
    for one in restored:  # the EHR's edit won over the deletion: the record is back
        put_noted(s, connection, one, [], now)
