"""What routing needs to know from the database: enrolments, and who fulfils referrals."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_bridge import model as m

from ._routing import Routing
from ._tables import EnrolmentRow, RecordRow

_RECORD = TypeAdapter(m.AnyRecord)
FULFILLED_KINDS = ("referral", "referral_task")


def destinations(s: Session, record: m.Record, patient_id: str, routing: Routing) -> list[str]:
    """The connections a changed record is queued for, by ``routing`` and the enrolments."""
    enrolled = s.scalars(
        select(EnrolmentRow.connection).where(EnrolmentRow.patient_id == patient_id)
    )
    fulfilling: set[str] = set()
    if isinstance(record, m.Patient) and routing.fulfils_any:
        fulfilling = fulfillers(s, routing, [patient_id]).get(patient_id, set())
    return routing.destinations(record, enrolled, fulfilling)


def enrolled_patients(s: Session, connection: str) -> set[str]:
    return set(
        s.scalars(select(EnrolmentRow.patient_id).where(EnrolmentRow.connection == connection))
    )


def fulfillers(
    s: Session, routing: Routing, patient_ids: Sequence[str] | None = None
) -> dict[str, set[str]]:
    """Per patient, the connections whose organisation fulfils one of their referrals."""
    found: dict[str, set[str]] = {}
    if not routing.fulfils_any:
        return found
    query = select(RecordRow).where(RecordRow.kind.in_(FULFILLED_KINDS), ~RecordRow.deleted)
    if patient_ids is not None:
        query = query.where(RecordRow.patient_id.in_(patient_ids))
    for row in s.scalars(query):
        connection = routing.fulfiller(parsed(row))
        if connection is not None and row.patient_id is not None:
            found.setdefault(row.patient_id, set()).add(connection)
    return found


def parsed(row: RecordRow) -> m.Record:
    return _RECORD.validate_python(row.data)
