"""Response models of the reports (``/v1/reports/...``) and of what is due (``/v1/due``),
beside ``_responses``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from fhir_bridge import store as s
from fhir_bridge.sync import DueItem as DueTask


class PatientMinutes(BaseModel):
    patient_id: str
    minutes: float
    contacts: int
    reached: int | None = Field(description="The highest threshold reached (20, 40, 60) or null")
    next_threshold: int | None = Field(description="The next threshold, null past the last")
    to_next: float | None = Field(description="Minutes still needed for the next threshold")


class CareManagerMinutes(BaseModel):
    care_manager_id: str | None = Field(description="The participant's id (PPRF, else first)")
    care_manager_name: str | None
    minutes: float
    contacts: int
    patients: int
    patients_reaching: dict[str, int] = Field(
        description="Per threshold, how many of these patients reached it in the month "
        "(their total, whoever made the contacts)"
    )


class MinutesReport(BaseModel):
    """A month's care-management minutes (finished check-ins: calls, messages, visits)."""

    month: str
    thresholds: list[int]
    patients: list[PatientMinutes]
    care_managers: list[CareManagerMinutes]

    @classmethod
    def of(cls, report: s.MinutesReport) -> MinutesReport:
        return cls(
            month=report.month,
            thresholds=list(report.thresholds),
            patients=[
                PatientMinutes(
                    patient_id=p.patient_id,
                    minutes=p.minutes,
                    contacts=p.contacts,
                    reached=p.reached,
                    next_threshold=p.next_threshold,
                    to_next=p.to_next,
                )
                for p in report.patients
            ],
            care_managers=[
                CareManagerMinutes(
                    care_manager_id=c.care_manager_id,
                    care_manager_name=c.care_manager_name,
                    minutes=c.minutes,
                    contacts=c.contacts,
                    patients=c.patients,
                    patients_reaching={str(t): n for t, n in c.patients_reaching.items()},
                )
                for c in report.care_managers
            ],
        )


class DueItem(BaseModel):
    """An open, time-boxed activity of an active transitional-care plan."""

    patient_id: str
    plan_id: str
    activity: int = Field(description="Its index in the plan's activities")
    what: str
    kind: str | None
    status: str
    due: str = Field(description="The last day it is on time (inclusive)")
    overdue: bool

    @classmethod
    def of(cls, d: DueTask) -> DueItem:
        return cls(
            patient_id=d.patient_id,
            plan_id=d.plan_id,
            activity=d.activity,
            what=d.what,
            kind=d.kind,
            status=d.status,
            due=d.due.isoformat(),
            overdue=d.overdue,
        )


class DuePage(BaseModel):
    today: str
    overdue: int
    items: list[DueItem]
