"""Reports: the month's care-management minutes per patient and per care manager."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from .._deps import Read, StoreDep
from .._report_responses import MinutesReport

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
ID = r"^[A-Za-z0-9\-.]{1,64}$"


@router.get("/minutes", dependencies=[Read])
def minutes(
    store: StoreDep,
    month: Annotated[str, Query(pattern=MONTH, description="YYYY-MM")],
    patient: Annotated[str | None, Query(pattern=ID, description="One patient")] = None,
    care_manager: Annotated[
        str | None, Query(max_length=200, description="Contacts this care manager made")
    ] = None,
) -> MinutesReport:
    """Finished check-ins' minutes of the month, per patient and per care manager, with the
    20/40/60-minute thresholds marked."""
    report = store.reports.minutes(month, patient_id=patient, care_manager_id=care_manager)
    return MinutesReport.of(report)
