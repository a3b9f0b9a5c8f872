"""Due items: the open, time-boxed activities of active transitional-care plans."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from fhir_bridge import model as m
from fhir_bridge.sync import due_items

from .._deps import Read, StoreDep
from .._report_responses import DueItem, DuePage

router = APIRouter(prefix="/v1/due", tags=["records", "due"])
_PAGE = 500


@router.get("", dependencies=[Read])
def due(
    store: StoreDep,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    today: Annotated[
        date | None, Query(description="The day to judge overdue by (UTC today)")
    ] = None,
) -> DuePage:
    """Open activities of active transitional-care plans with a due date, soonest first."""
    plans: list[m.CarePlan] = []
    offset = 0
    while True:
        page = store.records.page("careplan", patient_id, _PAGE, offset)
        plans += [r for r, _ in page if isinstance(r, m.CarePlan)]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    day = today or datetime.now(UTC).date()
    items = [DueItem.of(d) for d in due_items(plans, day)]
    return DuePage(today=day.isoformat(), items=items, overdue=sum(i.overdue for i in items))
