"""Handoffs: each transition-of-care package built, its findings, and where it went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ._clock import utc
from ._database import Database
from ._tables import HandoffRow


@dataclass(frozen=True, slots=True)
class HandoffSummary:
    id: int
    package_id: str
    patient_id: str
    handoff_type: str  # transfer, referral or summary
    author: str | None
    destination: str | None  # None: built, not sent
    findings: list[dict[str, Any]]
    delivery: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Handoff(HandoffSummary):
    """A handoff with the document Bundle that was built."""

    document: dict[str, Any] | None


def _fields(row: HandoffRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "package_id": row.package_id,
        "patient_id": row.patient_id,
        "handoff_type": row.handoff_type,
        "author": row.author,
        "destination": row.destination,
        "findings": row.findings,
        "delivery": row.delivery,
        "created_at": utc(row.created_at),
    }


class Handoffs:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
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
        """Keep one handoff; its id."""
        with self._db.session() as s:
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

    def recent(self, limit: int = 50) -> list[HandoffSummary]:
        """The newest handoffs, newest first (without their documents)."""
        with self._db.session() as s:
            rows = s.scalars(select(HandoffRow).order_by(HandoffRow.id.desc()).limit(limit))
            return [HandoffSummary(**_fields(r)) for r in rows]

    def get(self, handoff_id: int) -> Handoff | None:
        """One handoff with the document Bundle that was built."""
        with self._db.session() as s:
            row = s.get(HandoffRow, handoff_id)
            return None if row is None else Handoff(**_fields(row), document=row.document)
