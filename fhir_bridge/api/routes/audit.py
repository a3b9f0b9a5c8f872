"""The audit trail: who wrote what, when and from where (ids only), for admin keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from fhir_bridge.store import AuditEvent

from .._deps import MAX_ROW_ID, StoreDep, require

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditEntry(BaseModel):
    """One write: who, what, when, from where, how it ended (ids and counts only)."""

    id: int
    at: str
    actor: str = Field(description="apikey:NAME, dashboard:NAME, cli:USER, worker:ID, webhook:CONN")
    action: str
    kind: str | None
    record_id: str | None
    connection: str | None
    source: str | None = Field(description="Client address (API) or host (CLI, worker)")
    outcome: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEntry:
        return cls(
            id=e.id,
            at=e.at.isoformat(),
            actor=e.actor,
            action=e.action,
            kind=e.kind,
            record_id=e.record_id,
            connection=e.connection,
            source=e.source,
            outcome=e.outcome,
            detail=e.detail,
        )


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: int = Field(description="Ask again with after=next_cursor")


@router.get("", dependencies=[Depends(require("admin"))])
def audit(
    store: StoreDep,
    since: Annotated[AwareDatetime | None, Query(description="Only events at or after")] = None,
    actor: Annotated[
        str | None, Query(max_length=200, description="An actor, or its kind (apikey, cli)")
    ] = None,
    record: Annotated[
        str | None, Query(max_length=270, description="A record id, or kind/id")
    ] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="The last id seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Writes through the API, CLI, dashboard and worker, oldest first; page with ``after``."""
    when: datetime | None = since
    items = [
        AuditEntry.of(e)
        for e in store.audit.query(since=when, actor=actor, record=record, after=after, limit=limit)
    ]
    return AuditPage(items=items, next_cursor=items[-1].id if items else after)
