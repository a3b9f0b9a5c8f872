"""Conflicts: a field changed both locally and in the EHR, kept for a person to decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ._clock import utc
from ._database import Database
from ._tables import ConflictRow


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


class Conflicts:
    """Reading conflicts (pulls add them, resolving one stores a record: see ``Store``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def find(self, status: str | None = "open") -> list[Conflict]:
        """The conflicts in ``status`` (every one when None), oldest first."""
        with self._db.session() as s:
            query = select(ConflictRow).order_by(ConflictRow.id)
            if status is not None:
                query = query.where(ConflictRow.status == status)
            return [_conflict(r) for r in s.scalars(query)]

    def get(self, conflict_id: int) -> Conflict | None:
        with self._db.session() as s:
            row = s.get(ConflictRow, conflict_id)
            return None if row is None else _conflict(row)


def add(s: Session, connection: str, conflict: NewConflict, now: datetime) -> None:
    s.add(
        ConflictRow(
            connection=connection,
            kind=conflict.kind,
            record_id=conflict.record_id,
            fields=conflict.fields,
            base=conflict.base,
            local=conflict.local,
            remote=conflict.remote,
            status="open",
            created_at=now,
        )
    )


def close(s: Session, conflict_id: int, resolution: str, now: datetime) -> str:
    """Mark an open conflict resolved; its connection. KeyError unless it is open."""
    row = s.get(ConflictRow, conflict_id)
    if row is None or row.status != "open":
        raise KeyError(conflict_id)
    row.status, row.resolution, row.resolved_at = "resolved", resolution, now
    return row.connection
