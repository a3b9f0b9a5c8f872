"""The dashboard's due page: the open activities of transitional-care plans, per patient.

The same items as ``GET /v1/due`` (``sync.open_due_items``), soonest first, overdue marked;
patients are listed by their soonest due item. Behind the dashboard's sign-in like every
other page; it shows patient and plan ids only, as the rest of the dashboard does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fhir_bridge.sync import DueItem, open_due_items

from ._dashboard import SHOWN, OperatorDep, _page, _state, _to
from ._dashboard_sessions import COOKIE
from ._deps import StoreDep

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@dataclass
class PatientDue:
    """One patient's open items, soonest first."""

    patient_id: str
    items: list[DueItem] = field(default_factory=list)

    @property
    def overdue(self) -> int:
        return sum(i.overdue for i in self.items)


def by_patient(items: list[DueItem]) -> list[PatientDue]:
    """Items (soonest first) grouped per patient, patients in the order of their soonest item."""
    groups: dict[str, PatientDue] = {}
    for item in items:
        groups.setdefault(item.patient_id, PatientDue(item.patient_id)).items.append(item)
    return list(groups.values())


@router.get("/due")
async def due_page(
    request: Request,
    store: StoreDep,
    operator: OperatorDep,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if operator is None:
        return _to(request, "/dashboard/login")
    now = datetime.now(UTC)
    items = await run_in_threadpool(open_due_items, store, now.date(), patient_id or None)
    patients = by_patient(items)
    return _page(
        request,
        "due.html",
        operator=operator,
        csrf=_state(request).sessions.csrf_of(request.cookies.get(COOKIE)),
        now=now,
        today=now.date().isoformat(),
        patient_id=patient_id or None,
        items=len(items),
        overdue=sum(i.overdue for i in items),
        patients=patients[:SHOWN],
        more=max(0, len(patients) - SHOWN),
    )
