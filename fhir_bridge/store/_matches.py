"""Patient matches: which Patient of a connection's EHR is ours (matched), or why none is yet
(held: the patient's outbox entries wait until a person settles it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ._clock import utc
from ._database import Database
from ._tables import OutboxRow, OutboxStatus, PatientMatchRow

MatchState = Literal["matched", "held"]


@dataclass(frozen=True, slots=True)
class PatientMatch:
    """One patient on one connection.

    ``step`` is how it was decided (``identifier``, ``$match``, ``demographics``, ``link``,
    ``accepted``); ``reason`` says why a patient is held, in ids and counts only (no PHI);
    ``candidates`` and ``score`` are what the deciding step found.
    """

    connection: str
    patient_id: str
    state: MatchState
    server_id: str | None
    step: str | None
    reason: str | None
    candidates: int
    score: float | None
    decided_at: datetime
    decided_by: str


def _match(row: PatientMatchRow) -> PatientMatch:
    state: MatchState = "held" if row.state == "held" else "matched"
    return PatientMatch(
        row.connection,
        row.patient_id,
        state,
        row.server_id,
        row.step,
        row.reason,
        row.candidates,
        row.score,
        utc(row.decided_at),
        row.decided_by,
    )


class PatientMatches:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, connection: str, patient_id: str) -> PatientMatch | None:
        with self._db.session() as s:
            row = s.get(PatientMatchRow, (connection, patient_id))
            return None if row is None else _match(row)

    def save(self, match: PatientMatch) -> None:
        """Record a decision. A held patient's pending entries for the connection are held
        with it (they wait, neither retried nor dead-lettered); a matched one's are released."""
        with self._db.session() as s:
            s.merge(PatientMatchRow(**{name: getattr(match, name) for name in _FIELDS}))
            if match.state == "held":
                _move(s, match.connection, match.patient_id, OutboxStatus.held, match.decided_at)
            else:
                _move(s, match.connection, match.patient_id, OutboxStatus.pending, match.decided_at)

    def hold_entries(self, connection: str, patient_id: str, now: datetime) -> int:
        """Hold the patient's pending entries for the connection (queued again after a change
        while the patient is held); how many."""
        with self._db.session() as s:
            return _move(s, connection, patient_id, OutboxStatus.held, now)

    def forget(self, connection: str, patient_id: str, now: datetime) -> bool:
        """Drop the decision so the next push matches again; held entries are released."""
        with self._db.session() as s:
            row = s.get(PatientMatchRow, (connection, patient_id))
            if row is None:
                return False
            s.delete(row)
            _move(s, connection, patient_id, OutboxStatus.pending, now)
            return True

    def held(self, connection: str | None = None) -> list[PatientMatch]:
        """The held patients (of one connection, or of all), oldest decision first."""
        with self._db.session() as s:
            query = select(PatientMatchRow).where(PatientMatchRow.state == "held")
            if connection is not None:
                query = query.where(PatientMatchRow.connection == connection)
            rows = s.scalars(query.order_by(PatientMatchRow.decided_at))
            return [_match(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per connection: how many patients are matched and how many held."""
        with self._db.session() as s:
            query = select(
                PatientMatchRow.connection, PatientMatchRow.state, func.count()
            ).group_by(PatientMatchRow.connection, PatientMatchRow.state)
            out: dict[str, dict[str, int]] = {}
            for connection, state, count in s.execute(query):
                out.setdefault(str(connection), {"matched": 0, "held": 0})[str(state)] = int(count)
            return out


def _move(s: Session, connection: str, patient_id: str, target: OutboxStatus, now: datetime) -> int:
    """Pending entries of a patient become held (``target`` held), or held ones pending and
    due now (``target`` pending)."""
    source = OutboxStatus.pending if target == OutboxStatus.held else OutboxStatus.held
    values: dict[str, object] = {"status": target, "updated_at": now}
    if target == OutboxStatus.pending:
        values["next_attempt_at"] = now
    result = s.execute(
        update(OutboxRow)
        .where(
            OutboxRow.connection == connection,
            OutboxRow.patient_id == patient_id,
            OutboxRow.status == source,
        )
        .values(**values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


_FIELDS = tuple(PatientMatch.__dataclass_fields__)
