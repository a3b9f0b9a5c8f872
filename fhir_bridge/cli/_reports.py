"""Reports: the month's care-management minutes."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from fhir_bridge.errors import InputError
from fhir_bridge.store import MinutesReport

from ._app import opened_store, print_json, reports_errors

_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def _number(value: float) -> str:
    return f"{value:g}"


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


def minutes_lines(report: MinutesReport) -> list[str]:
    """The report as a person reads it: one line per patient, then per care manager."""
    marks = "/".join(str(t) for t in report.thresholds)
    lines = [f"Care-management minutes, {report.month} (thresholds {marks} min)"]
    if not report.patients:
        return [*lines, "  no finished check-ins this month"]
    lines.append("  per patient:")
    for p in report.patients:
        reached = f"reached {p.reached}" if p.reached is not None else "below 20"
        ahead = f", {_number(p.to_next)} to {p.next_threshold}" if p.to_next is not None else ""
        lines.append(
            f"    {p.patient_id}: {_number(p.minutes)} min in {p.contacts} contact(s), "
            f"{reached}{ahead}"
        )
    lines.append("  per care manager:")
    for c in report.care_managers:
        who = c.care_manager_name or c.care_manager_id or "(not recorded)"
        reaching = ", ".join(f"{n} at {t}" for t, n in c.patients_reaching.items())
        lines.append(
            f"    {who}: {_number(c.minutes)} min in {c.contacts} contact(s) with "
            f"{c.patients} patient(s); patients reaching {reaching}"
        )
    return lines


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
        typer.echo("\n".join(minutes_lines(report)))
