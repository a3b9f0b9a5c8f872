"""Dead letters: records that failed permanently, and queueing them for another push."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from .._deps import Read, RowId, StoreDep, Write
from .._responses import DeadLetter, DeadLetters, Requeued

router = APIRouter(prefix="/v1/dead-letters", tags=["sync"])


@router.get("", dependencies=[Read])
def dead_letters(
    store: StoreDep,
    connection: Annotated[str | None, Query(description="Only this connection")] = None,
) -> DeadLetters:
    """Records that failed permanently, with the server's reason."""
    return DeadLetters(items=[DeadLetter.of(e) for e in store.outbox.dead_letters(connection)])


@router.post("/{entry_id}/retry", dependencies=[Write])
def retry_dead_letter(entry_id: RowId, store: StoreDep) -> Requeued:
    """Queue one dead letter for another push."""
    if not store.outbox.requeue([entry_id], datetime.now(UTC)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {entry_id}")
    return Requeued(id=entry_id, status="pending")
