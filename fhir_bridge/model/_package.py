"""A patient package: one patient with everything the care manager holds for them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._careplan import CarePlan
from ._clinical import CareTeam, Medication, Problem
from ._encounter import Encounter
from ._goal import Goal
from ._patient import Patient
from ._record import PatientRecord
from ._referral import Referral, ReferralTask
from ._screening import Screening
from ._types import Model

AnyRecord = Annotated[
    Patient
    | CarePlan
    | Goal
    | Referral
    | ReferralTask
    | Problem
    | Medication
    | CareTeam
    | Encounter
    | Screening,
    Field(discriminator="kind"),
]


class Enrolment(Model):
    """The patient enrolled with one connection: their records go to that EHR."""

    connection: str = Field(min_length=1, description="A connection of fhir-bridge.toml")
    mrn: str | None = Field(
        default=None, min_length=1, description="The patient's MRN in that EHR, when known"
    )


RECORD_GROUPS = (
    "problems",
    "goals",
    "care_teams",
    "referrals",
    "referral_tasks",
    "medications",
    "care_plans",
    "encounters",
    "screenings",
)
"""The package's lists of records, in the order ``PatientPackage.records()`` gives them."""


class PatientPackage(Model):
    kind: Literal["package"] = "package"
    patient: Patient
    enrolments: list[Enrolment] = Field(
        default_factory=list,
        description="The connections the patient is enrolled with (not a record: stored "
        "beside the records, never sent)",
    )
    care_plans: list[CarePlan] = Field(default_factory=list)
    goals: list[Goal] = Field(default_factory=list)
    referrals: list[Referral] = Field(default_factory=list)
    referral_tasks: list[ReferralTask] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    medications: list[Medication] = Field(default_factory=list)
    care_teams: list[CareTeam] = Field(default_factory=list)
    encounters: list[Encounter] = Field(default_factory=list)
    screenings: list[Screening] = Field(default_factory=list)

    def records(self) -> list[Patient | PatientRecord]:
        """Every record of the package, patient first, then the groups in ``RECORD_GROUPS``
        order."""
        grouped: list[Patient | PatientRecord] = [
            r for group in RECORD_GROUPS for r in getattr(self, group)
        ]
        return [self.patient, *grouped]
