"""Due items: the open, time-boxed activities of active transitional-care plans."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from fhir_bridge.sync import open_due_items

from .._deps import Read, StoreDep
from .._report_responses import DueItem, DuePage

router = APIRouter(prefix="/v1/due", tags=["records", "due"])


@router.get("", dependencies=[Read])
def due(
    store: StoreDep,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    today: Annotated[
        date | None, Query(description="The day to judge overdue by (UTC today)")
    ] = None,
) -> DuePage:
    """Open activities of active transitional-care plans with a due date, soonest first."""
    day = today or datetime.now(UTC).date()
    items = [DueItem.of(d) for d in open_due_items(store, day, patient_id)]
    return DuePage(today=day.isoformat(), items=items, overdue=sum(i.overdue for i in items))
