"""Reports: the month's care-management minutes."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from fhir_bridge.errors import InputError
from fhir_bridge.store import MinutesReport

from ._app import opened_store, print_json, reports_errors

_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def minutes_json(report: MinutesReport) -> dict[str, object]:
    return {
        "month": report.month,
        "thresholds": list(report.thresholds),
        "patients": [
            {
                "patient_id": p.patient_id,
                "minutes": p.minutes,
                "contacts": p.contacts,
                "reached": p.reached,
                "next_threshold": p.next_threshold,
                "to_next": p.to_next,
            }
            for p in report.patients
        ],
        "care_managers": [
            {
                "care_manager_id": c.care_manager_id,
                "care_manager_name": c.care_manager_name,
                "minutes": c.minutes,
                "contacts": c.contacts,
                "patients": c.patients,
                "patients_reaching": {str(t): n for t, n in c.patients_reaching.items()},
            }
            for c in report.care_managers
        ],
    }


@reports_errors
def minutes(
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM")],
    patient: Annotated[str | None, typer.Option("--patient", help="One patient's id")] = None,
    care_manager: Annotated[
        str | None, typer.Option("--care-manager", help="Only contacts this care manager made")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The month's care-management minutes (finished calls, messages and visits) per patient
    and per care manager, with the 20/40/60-minute thresholds marked."""
    if not _MONTH.match(month):
        raise InputError("--month", f"{month!r} is not a month: give YYYY-MM, e.g. 2026-11")
    with opened_store() as store:
        report = store.reports.minutes(month, patient_id=patient, care_manager_id=care_manager)
    if as_json:
        print_json(minutes_json(report))
    else:
        typer.echo("\n".join(report.lines()))
