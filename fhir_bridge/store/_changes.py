"""The change feed (records changed by pulls, in the order applied) and pull watermarks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ._clock import utc
from ._database import Database
from ._engine import FEED_LOCK
from ._tables import ChangeRow, WatermarkRow


@dataclass(frozen=True, slots=True)
class Change:
    cursor: int  # a reader asks for the changes after the last cursor it has seen
    connection: str
    kind: str
    record_id: str
    patient_id: str | None
    record_version: int
    change: str  # created, updated or deleted
    at: datetime


class ChangeFeed:
    def __init__(self, db: Database) -> None:
        self._db = db

    def since(self, cursor: int = 0, limit: int = 100) -> list[Change]:
        """Changes after ``cursor``, oldest first."""
        with self._db.session() as s:
            rows = s.scalars(
                select(ChangeRow).where(ChangeRow.id > cursor).order_by(ChangeRow.id).limit(limit)
            )
            return [
                Change(
                    r.id,
                    r.connection,
                    r.kind,
                    r.record_id,
                    r.patient_id,
                    r.record_version,
                    r.change,
                    utc(r.at),
                )
                for r in rows
            ]


class Watermarks:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, connection: str, resource_type: str) -> str | None:
        """Up to when (the server's ``lastUpdated``) this type has been pulled."""
        with self._db.session() as s:
            row = s.get(WatermarkRow, (connection, resource_type))
            return None if row is None else row.last_updated


def lock_feed(s: Session) -> None:
    """Serialise writers of the feed until the transaction ends (PostgreSQL), so feed ids
    commit in increasing order and a reader following the cursor never skips a row."""
    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})


def append(
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


def advance(s: Session, connection: str, resource_type: str, watermark: str) -> None:
    """Move a watermark forward (never back)."""
    row = s.get(WatermarkRow, (connection, resource_type))
    if row is None:
        s.add(
            WatermarkRow(connection=connection, resource_type=resource_type, last_updated=watermark)
        )
    elif watermark > row.last_updated:
        row.last_updated = watermark
