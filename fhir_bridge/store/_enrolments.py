"""Enrolments: which patients are enrolled with which connection, with that EHR's MRN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ._clock import utc
from ._database import Database
from ._links import Link, link_of
from ._outbox import drop_patient, enqueue
from ._tables import EnrolmentRow, LinkRow, RecordRow


@dataclass(frozen=True, slots=True)
class Enrolment:
    patient_id: str
    connection: str
    mrn: str | None
    enrolled_at: datetime


@dataclass(frozen=True, slots=True)
class NewEnrolment:
    """An enrolment to write (``mrn`` None keeps the MRN an earlier enrolment gave)."""

    patient_id: str
    connection: str
    mrn: str | None = None


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A patient enrolled: the enrolment, and how many of their records were queued."""

    enrolment: Enrolment
    queued: int


@dataclass(frozen=True, slots=True)
class Unenrolled:
    """A patient unenrolled: whether they were enrolled, how many queued entries were dropped,
    and what stays on the connection's server (fhir-bridge never deletes from an EHR)."""

    was_enrolled: bool
    dropped: int
    remaining: list[Link]


def _enrolment(row: EnrolmentRow) -> Enrolment:
    return Enrolment(row.patient_id, row.connection, row.mrn, utc(row.enrolled_at))


class Enrolments:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, patient_id: str, connection: str) -> Enrolment | None:
        with self._db.session() as s:
            row = _row(s, patient_id, connection)
            return None if row is None else _enrolment(row)

    def of_patient(self, patient_id: str) -> list[Enrolment]:
        """The patient's enrolments, by connection name."""
        with self._db.session() as s:
            rows = s.scalars(
                select(EnrolmentRow)
                .where(EnrolmentRow.patient_id == patient_id)
                .order_by(EnrolmentRow.connection)
            )
            return [_enrolment(r) for r in rows]

    def of_connection(self, connection: str) -> list[Enrolment]:
        with self._db.session() as s:
            rows = s.scalars(
                select(EnrolmentRow)
                .where(EnrolmentRow.connection == connection)
                .order_by(EnrolmentRow.patient_id)
            )
            return [_enrolment(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Patients enrolled, per connection (connections with none are absent)."""
        with self._db.session() as s:
            query = select(EnrolmentRow.connection, func.count()).group_by(EnrolmentRow.connection)
            return {str(name): int(n) for name, n in s.execute(query)}

    def enrol(self, patient_id: str, connection: str, mrn: str | None, now: datetime) -> Enrolled:
        """Enrol a patient (again) and queue their records for the connection, in one
        transaction. ``mrn`` None keeps the MRN an earlier enrolment gave."""
        with self._db.session() as s:
            return enrol(s, patient_id, connection, mrn, now)

    def unenrol(self, patient_id: str, connection: str) -> Unenrolled:
        """Unenrol a patient: no further pushes of their records to the connection (their
        queued and dead entries there are dropped). Answers what stays on its server."""
        with self._db.session() as s:
            row = _row(s, patient_id, connection)
            if row is not None:
                s.delete(row)
            dropped = drop_patient(s, connection, patient_id)
            rows = s.execute(
                select(RecordRow.kind, RecordRow.id).where(RecordRow.patient_id == patient_id)
            )
            ours = {(str(kind), str(record_id)) for kind, record_id in rows}
            # a referral's Task is linked under referral_task with the referral's id
            ours |= {("referral_task", i) for k, i in ours if k == "referral"}
            links = s.scalars(
                select(LinkRow)
                .where(
                    LinkRow.connection == connection,
                    LinkRow.record_id.in_([i for _, i in ours]),
                )
                .order_by(LinkRow.resource_type, LinkRow.resource_id)
            )
            remaining = [link_of(x) for x in links if (x.kind, x.record_id) in ours]
            return Unenrolled(row is not None, dropped, remaining)


def _row(s: Session, patient_id: str, connection: str) -> EnrolmentRow | None:
    return s.scalar(
        select(EnrolmentRow).where(
            EnrolmentRow.patient_id == patient_id, EnrolmentRow.connection == connection
        )
    )


def enrol(s: Session, patient_id: str, connection: str, mrn: str | None, now: datetime) -> Enrolled:
    """Insert or update one enrolment (``mrn`` None keeps the one it had), and queue the
    patient's stored records for the connection."""
    row = _row(s, patient_id, connection)
    if row is None:
        row = EnrolmentRow(patient_id=patient_id, connection=connection, mrn=mrn, enrolled_at=now)
        s.add(row)
        s.flush()
    elif mrn is not None:
        row.mrn = mrn
    records = s.scalars(
        select(RecordRow).where(RecordRow.patient_id == patient_id, ~RecordRow.deleted)
    )
    queued = 0
    for record in records:
        enqueue(
            s,
            connection=connection,
            kind=record.kind,
            record_id=record.id,
            patient_id=patient_id,
            version=record.version,
            now=now,
        )
        queued += 1
    return Enrolled(_enrolment(row), queued)
