"""The audit trail: every write through the API, the CLI, the dashboard and the worker.

Who (``apikey:<name>``, ``cli:<os user>``, ``worker:<id>``, ``webhook:<connection>``), what
(an action, the record kind and id or the connection it touched), when, from where (the
client address or the host) and how it ended. ``detail`` holds counts and ids only: never
PHI, never a request body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ._clock import utc
from ._database import Database
from ._tables import AuditRow

_LIMITS = {"actor": 200, "action": 100, "kind": 64, "record_id": 200, "connection": 100}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One write, as it is recorded (``id`` 0 before it is)."""

    actor: str
    action: str
    at: datetime
    kind: str | None = None
    record_id: str | None = None
    connection: str | None = None
    source: str | None = None
    outcome: str = "ok"  # ok, or failed (a refusal answered 4xx/5xx is not recorded)
    detail: dict[str, Any] = field(default_factory=dict)
    id: int = 0


class AuditTrail:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, event: AuditEvent) -> int:
        """Record one event; its id."""
        with self._db.session() as s:
            row = AuditRow(
                at=event.at,
                actor=event.actor[: _LIMITS["actor"]],
                action=event.action[: _LIMITS["action"]],
                kind=_cut(event.kind, "kind"),
                record_id=_cut(event.record_id, "record_id"),
                connection=_cut(event.connection, "connection"),
                source=None if event.source is None else event.source[:200],
                outcome=event.outcome[:16],
                detail=dict(event.detail),
            )
            s.add(row)
            s.flush()
            return row.id

    def query(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        record: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events after id ``after``, oldest first; ``record`` is a record id or
        ``kind/id``, ``actor`` the whole actor or its part before ``:`` (``cli``)."""
        query = select(AuditRow).where(AuditRow.id > after)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        if actor is not None:
            query = query.where(
                AuditRow.actor == actor if ":" in actor else AuditRow.actor.startswith(actor + ":")
            )
        if record is not None:
            kind, _, record_id = record.rpartition("/")
            query = query.where(AuditRow.record_id == record_id)
            if kind:
                query = query.where(AuditRow.kind == kind)
        with self._db.session() as s:
            rows = s.scalars(query.order_by(AuditRow.id).limit(limit))
            return [
                AuditEvent(
                    actor=r.actor,
                    action=r.action,
                    at=utc(r.at),
                    kind=r.kind,
                    record_id=r.record_id,
                    connection=r.connection,
                    source=r.source,
                    outcome=r.outcome,
                    detail=dict(r.detail),
                    id=r.id,
                )
                for r in rows
            ]


def _cut(value: str | None, column: str) -> str | None:
    return None if value is None else value[: _LIMITS[column]]
