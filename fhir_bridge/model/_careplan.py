from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._categories import normalise_careplan
from ._record import PatientRecord
from ._statuses import ActivityStatus, CarePlanStatus, PlanIntent
from ._types import Concept, Element, Model, Note, Party, Period, Ref, Timestamp


class Schedule(Element):
    """When a planned activity happens: e.g. every 1 week, 20 minutes each."""

    frequency: int | None = Field(default=None, ge=1)
    period: float | None = Field(default=None, gt=0)
    period_unit: Literal["min", "h", "d", "wk", "mo", "a"] | None = None
    duration: float | None = Field(default=None, gt=0)
    duration_unit: Literal["min", "h", "d", "wk", "mo", "a"] | None = None
    bounds: Period | None = None


class PlannedActivity(Model):
    """An intervention the plan schedules itself: a check-in call, adherence monitoring, a visit."""

    kind: (
        Literal[
            "Appointment",
            "CommunicationRequest",
            "DeviceRequest",
            "MedicationRequest",
            "NutritionOrder",
            "Task",
            "ServiceRequest",
            "VisionPrescription",
        ]
        | None
    ) = None
    code: Concept | None = None
    status: ActivityStatus
    description: str | None = None
    schedule: Schedule | None = None
    scheduled_period: Period | None = None
    scheduled_text: str | None = None
    performers: list[Party] = Field(default_factory=list)
    goals: list[Ref] = Field(default_factory=list)
    reasons: list[Ref] = Field(default_factory=list, description="Problems this activity treats")
    location: str | None = None

    @model_validator(mode="after")
    def _one_schedule(self) -> PlannedActivity:
        given = [x for x in (self.schedule, self.scheduled_period, self.scheduled_text) if x]
        if len(given) > 1:
            raise ValueError("give one of schedule, scheduled_period or scheduled_text")
        return self


class Activity(Model):
    """One line of the plan: a referral (or another request) by reference, or planned work."""

    referral: Ref | None = Field(default=None, description="A Referral record of this patient")
    reference: str | None = Field(
        default=None, description="Another FHIR resource the activity points at, kept verbatim"
    )
    planned: PlannedActivity | None = None
    progress: list[Note] = Field(default_factory=list)

    @model_validator(mode="after")
    def _exactly_one(self) -> Activity:
        given = [x for x in (self.referral, self.reference, self.planned) if x is not None]
        if len(given) != 1:
            raise ValueError("an activity is exactly one of referral, reference or planned")
        return self


class CarePlan(PatientRecord):
    kind: Literal["careplan"] = "careplan"
    title: str | None = None
    description: str | None = None
    status: CarePlanStatus
    intent: PlanIntent = PlanIntent.plan
    categories: list[Concept] = Field(
        default_factory=list,
        description="assess-plan is always present (US Core); add e.g. chronic care "
        "management, transitional care, SDOH, behavioural health",
    )
    period: Period | None = None
    author: Party | None = Field(default=None, description="The care manager")
    contributors: list[Party] = Field(default_factory=list)
    care_teams: list[Ref] = Field(default_factory=list)
    addresses: list[Ref] = Field(default_factory=list, description="Problems the plan addresses")
    goals: list[Ref] = Field(default_factory=list)
    activities: list[Activity] = Field(default_factory=list)
    created_at: Timestamp | None = None

    _categories = model_validator(mode="before")(normalise_careplan)
