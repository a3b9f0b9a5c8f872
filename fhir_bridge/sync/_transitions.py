"""Transitional care after a hospital discharge: the windows, and the plan they make (pure).

One definition of the time boxes of transitional care management, used both by the
discharge trigger (pull and subscriptions: ``_discharges``) and by the handoff completeness
check (``fhir_bridge.handoff``):

- an **interactive contact** within 2 business days after the discharge day;
- a **face-to-face visit** within 7 calendar days (high complexity) or 14 (moderate);
- **medication reconciliation** no later than the face-to-face visit.

Business days skip Saturdays and Sundays; holidays are the caller's (``holidays``, a set of
dates; none by default: a discharge before a public holiday gets a window one day short,
never one too long). Complexity is a proxy the care manager can overrule by editing the
plan's visit activity: high when the patient was discharged before within the last 30 days
(a readmission) or carries 3 or more active problems, moderate otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fhir_bridge import model as m

Json = dict[str, Any]
CONTACT_BUSINESS_DAYS = 2
VISIT_DAYS_HIGH = 7
VISIT_DAYS_MODERATE = 14
READMISSION_DAYS = 30
COMPLEX_PROBLEMS = 3
CATEGORY_TEXT = "Transitional care management"
_SNOMED = "http://snomed.info/sct"
_ACTIVE = (None, m.ClinicalStatus.active, m.ClinicalStatus.recurrence, m.ClinicalStatus.relapse)


@dataclass(frozen=True, slots=True)
class Windows:
    """The due dates of one discharge's transitional care (each inclusive)."""

    discharge: date
    contact_by: date
    visit_by: date
    reconcile_by: date
    high_complexity: bool


def add_business_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The ``days``-th business day after ``start`` (weekends and ``holidays`` skipped)."""
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            left -= 1
    return current


def business_days_between(start: date, end: date, holidays: Collection[date] = ()) -> int:
    """Business days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``)."""
    days, current = 0, start
    while current < end:
        current += timedelta(days=1)
        days += current.weekday() < 5 and current not in holidays
    return days


def windows(discharge: date, *, high_complexity: bool, holidays: Collection[date] = ()) -> Windows:
    visit_by = discharge + timedelta(
        days=VISIT_DAYS_HIGH if high_complexity else VISIT_DAYS_MODERATE
    )
    return Windows(
        discharge=discharge,
        contact_by=add_business_days(discharge, CONTACT_BUSINESS_DAYS, holidays),
        visit_by=visit_by,
        reconcile_by=visit_by,
        high_complexity=high_complexity,
    )


def is_high_complexity(
    discharge: date, records: Sequence[m.Record], *, exclude_plan: str | None = None
) -> bool:
    """The proxy for high complexity (module docstring), from the patient's records."""
    active = sum(1 for r in records if isinstance(r, m.Problem) and r.clinical_status in _ACTIVE)
    if active >= COMPLEX_PROBLEMS:
        return True
    for r in records:
        if not isinstance(r, m.CarePlan) or r.id == exclude_plan or not is_transitional(r):
            continue
        before = _day(r.period.start if r.period else None)
        if before is not None and timedelta(0) < discharge - before <= timedelta(
            days=READMISSION_DAYS
        ):
            return True
    return False


def is_transitional(plan: m.CarePlan) -> bool:
    words = " ".join(
        (c.text or "") + " " + " ".join(x.display or "" for x in c.codings) for c in plan.categories
    )
    return "transitional" in words.lower()


# ------------------------------------------------------------------ the discharge


@dataclass(frozen=True, slots=True)
class Discharge:
    """A finished hospital stay read from an Encounter."""

    encounter_id: str  # the server's id
    day: date
    disposition: str | None  # the disposition's code or text, for the plan's description


def discharge_of(encounter: Json, today: date) -> Discharge | None:
    """The discharge an Encounter records: status finished with a discharge disposition
    (``period.end`` is the day; without one, ``today``); None for anything else."""
    if encounter.get("resourceType") != "Encounter" or encounter.get("status") != "finished":
        return None
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition")
    if not isinstance(disposition, dict) or not disposition:
        return None
    codings = disposition.get("coding") or []
    said = next((c.get("code") for c in codings if isinstance(c, dict) and c.get("code")), None)
    day = _day((encounter.get("period") or {}).get("end")) or today
    return Discharge(str(encounter.get("id")), day, said or disposition.get("text"))


def plan_id(connection: str, encounter_id: str) -> str:
    """The transitional-care plan's id: the same for the same Encounter, however often seen."""
    digest = hashlib.sha256(f"{connection}|Encounter/{encounter_id}".encode()).hexdigest()
    return f"tcm-{digest[:16]}"


def transitional_plan(
    patient_id: str,
    connection: str,
    discharge: Discharge,
    due: Windows,
    now: datetime,
) -> m.CarePlan:
    """The plan a discharge starts: its three time-boxed activities, not started."""

    def activity(kind: str, code: str, display: str, text: str, by: date) -> m.Activity:
        return m.Activity(
            planned=m.PlannedActivity.model_validate(
                {
                    "kind": kind,
                    "code": {
                        "codings": [{"system": _SNOMED, "code": code, "display": display}],
                        "text": text,
                    },
                    "status": "not_started",
                    "description": f"{text}, due by {by.isoformat()}",
                    "scheduled_period": {
                        "start": due.discharge.isoformat(),
                        "end": by.isoformat(),
                    },
                }
            )
        )

    visit_days = VISIT_DAYS_HIGH if due.high_complexity else VISIT_DAYS_MODERATE
    return m.CarePlan.model_validate(
        {
            "id": plan_id(connection, discharge.encounter_id),
            "updated_at": now,
            "patient": patient_id,
            "source": f"ehr:{connection}",
            "title": "Transitional care after discharge",
            "description": (
                f"Started by the discharge of {due.discharge.isoformat()} (Encounter "
                f"{discharge.encounter_id}); {'high' if due.high_complexity else 'moderate'} "
                f"complexity: visit within {visit_days} days."
            ),
            "status": "active",
            "intent": "plan",
            "categories": [{"text": CATEGORY_TEXT}],
            "period": {
                "start": due.discharge.isoformat(),
                "end": (due.discharge + timedelta(days=30)).isoformat(),
            },
            "activities": [
                activity(
                    "CommunicationRequest",
                    "185317003",
                    "Telephone encounter",
                    "Interactive contact",
                    due.contact_by,
                ),
                activity(
                    "Appointment",
                    "390906007",
                    "Follow-up encounter",
                    "Face-to-face visit",
                    due.visit_by,
                ),
                activity(
                    "Task",
                    "430193006",
                    "Medication reconciliation",
                    "Medication reconciliation",
                    due.reconcile_by,
                ),
            ],
        }
    )


# ------------------------------------------------------------------ due items


@dataclass(frozen=True, slots=True)
class DueItem:
    """One open, time-boxed activity of a transitional-care plan."""

    patient_id: str
    plan_id: str
    activity: int  # its index in the plan's activities
    what: str
    kind: str | None
    status: str
    due: date
    overdue: bool


def due_items(plans: Sequence[m.CarePlan], today: date) -> list[DueItem]:
    """Open activities of active transitional-care plans that have a due date, soonest first."""
    out: list[DueItem] = []
    for plan in plans:
        if plan.status != m.CarePlanStatus.active or not is_transitional(plan):
            continue
        for index, a in enumerate(plan.activities):
            planned = a.planned
            if planned is None or planned.status not in _OPEN:
                continue
            by = _day(planned.scheduled_period.end if planned.scheduled_period else None)
            if by is None:
                continue
            what = (planned.code.text if planned.code else None) or planned.description or ""
            out.append(
                DueItem(
                    plan.patient.id or "",
                    plan.id,
                    index,
                    what,
                    planned.kind,
                    planned.status.value,
                    by,
                    by < today,
                )
            )
    return sorted(out, key=lambda d: (d.due, d.patient_id, d.plan_id, d.activity))


_OPEN = (
    m.ActivityStatus.not_started,
    m.ActivityStatus.scheduled,
    m.ActivityStatus.in_progress,
    m.ActivityStatus.on_hold,
)


def _day(value: str | None) -> date | None:
    if not value or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
