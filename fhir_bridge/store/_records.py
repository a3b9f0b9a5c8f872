"""Internal records: JSON with a version that grows on every change; deletes are marks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_bridge import model as m

from ._changes import append
from ._database import Database
from ._outbox import enqueue
from ._reports import forget_contact, track_contact
from ._routed import destinations
from ._routing import Routing
from ._tables import RecordRow

_RECORD = TypeAdapter(m.AnyRecord)


def content_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PutResult:
    kind: str
    id: str
    version: int
    changed: bool


class Records:
    """Reading records, and deleting them (writes queue outbox work: see ``Store``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, kind: str, record_id: str) -> m.Record | None:
        with self._db.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            return None if row is None or row.deleted else _RECORD.validate_python(row.data)

    def get_with_version(self, kind: str, record_id: str) -> tuple[m.Record, int] | None:
        with self._db.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            if row is None or row.deleted:
                return None
            return _RECORD.validate_python(row.data), row.version

    def is_deleted(self, kind: str, record_id: str) -> bool:
        """True for a record the EHR deleted (kept, marked, never pushed again)."""
        with self._db.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            return row is not None and row.deleted

    def deleted(self, kind: str, record_id: str) -> m.Record | None:
        """A deleted record as it was last stored (None: none, or not deleted)."""
        with self._db.session() as s:
            row = s.get(RecordRow, (kind, record_id))
            return _RECORD.validate_python(row.data) if row is not None and row.deleted else None

    def of_patient(self, patient_id: str) -> list[m.Record]:
        with self._db.session() as s:
            rows = s.scalars(
                select(RecordRow).where(RecordRow.patient_id == patient_id, ~RecordRow.deleted)
            )
            return [_RECORD.validate_python(r.data) for r in rows]

    def of_patient_with_versions(self, patient_id: str) -> list[tuple[m.Record, int]]:
        """The patient's records, each with its stored version (read in one transaction)."""
        with self._db.session() as s:
            rows = s.scalars(
                select(RecordRow).where(RecordRow.patient_id == patient_id, ~RecordRow.deleted)
            )
            return [(_RECORD.validate_python(r.data), r.version) for r in rows]

    def of_patients_with_versions(
        self, patient_ids: Sequence[str]
    ) -> dict[str, list[tuple[m.Record, int]]]:
        """Several patients' records with their versions (one query), by patient."""
        found: dict[str, list[tuple[m.Record, int]]] = {pid: [] for pid in patient_ids}
        if not patient_ids:
            return found
        with self._db.session() as s:
            rows = s.scalars(
                select(RecordRow).where(
                    RecordRow.patient_id.in_(list(patient_ids)), ~RecordRow.deleted
                )
            )
            for r in rows:
                found.setdefault(r.patient_id or r.id, []).append(
                    (_RECORD.validate_python(r.data), r.version)
                )
        return found

    def patient_ids(self) -> list[str]:
        return list(self.iter_patient_ids())

    def iter_patient_ids(self, page_size: int = 1000) -> Iterator[str]:
        """Every patient's id, in id order, page by page (keyset paging)."""
        after: str | None = None
        while True:
            with self._db.session() as s:
                query = select(RecordRow.id).where(RecordRow.kind == "patient")
                if after is not None:
                    query = query.where(RecordRow.id > after)
                page = list(s.scalars(query.order_by(RecordRow.id).limit(page_size)))
            yield from page
            if len(page) < page_size:
                return
            after = page[-1]

    def page(
        self, kind: str, patient_id: str | None, limit: int, offset: int
    ) -> list[tuple[m.Record, int]]:
        """Records of one kind (of one patient), by id, with their versions."""
        with self._db.session() as s:
            query = select(RecordRow).where(RecordRow.kind == kind, ~RecordRow.deleted)
            if patient_id is not None:
                query = query.where(RecordRow.patient_id == patient_id)
            rows = s.scalars(query.order_by(RecordRow.id).limit(limit).offset(offset))
            return [(_RECORD.validate_python(r.data), r.version) for r in rows]

    def delete(self, kind: str, record_id: str, now: datetime) -> bool:
        """Mark a record deleted (kept, never pushed again); False when there was none."""
        with self._db.session() as s:
            return mark_deleted(s, kind, record_id, now) is not None


def put_noted(
    s: Session, source: str, record: m.Record, connections: Sequence[str], now: datetime
) -> PutResult:
    """``put``, and when the record changed a change-feed row from ``source`` (created at
    version 1, else updated)."""
    result = put(s, record, connections, now)
    if result.changed:
        append(
            s,
            source,
            kind=record.kind,
            record_id=record.id,
            patient_id=patient_of(record),
            version=result.version,
            change="created" if result.version == 1 else "updated",
            now=now,
        )
    return result


def put(
    s: Session, record: m.Record, connections: Sequence[str] | Routing, now: datetime
) -> PutResult:
    """Store a record; when it changed, queue it for each of ``connections`` (with a
    :class:`Routing`: for each connection it routes the record to)."""
    kind = record.kind
    data = record.model_dump(mode="json", exclude_none=True)
    patient_id = patient_of(record)
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
    track_contact(s, record)
    if isinstance(connections, Routing):
        connections = destinations(s, record, patient_id, connections)
    for connection in connections:
        enqueue(
            s,
            connection=connection,
            kind=kind,
            record_id=record.id,
            patient_id=patient_id,
            version=row.version,
            now=now,
        )
    return PutResult(kind, record.id, row.version, changed=True)


def stored_version(s: Session, kind: str, record_id: str) -> int | None:
    """The version of a stored, undeleted record (None: none)."""
    row = s.get(RecordRow, (kind, record_id))
    return None if row is None or row.deleted else row.version


def mark_deleted(s: Session, kind: str, record_id: str, now: datetime) -> RecordRow | None:
    """Mark a stored record deleted; its row, or None when there was nothing to delete."""
    row = s.get(RecordRow, (kind, record_id))
    if row is None or row.deleted:
        return None
    row.deleted, row.version, row.updated_at = True, row.version + 1, now
    forget_contact(s, kind, record_id)
    return row


def patient_of(record: m.Record) -> str:
    return record.id if record.kind == "patient" else record.patient.id  # type: ignore[attr-defined]
