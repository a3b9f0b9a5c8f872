from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._categories import normalise_problem
from ._record import PatientRecord
from ._statuses import (
    CareTeamStatus,
    ClinicalStatus,
    MedicationStatus,
    ProblemCategory,
    SdohCategory,
    VerificationStatus,
)
from ._types import Concept, FhirDateTime, Model, Party, Period, Ref


class Problem(PatientRecord):
    """A problem-list item or health concern (a FHIR Condition)."""

    kind: Literal["problem"] = "problem"
    code: Concept = Field(description="SNOMED CT and/or ICD-10-CM")
    category: ProblemCategory = ProblemCategory.problem_list_item
    sdoh_category: SdohCategory | None = None
    categories: list[Concept] = Field(default_factory=list, description="Further categories")
    clinical_status: ClinicalStatus | None = None
    verification_status: VerificationStatus | None = None
    onset: FhirDateTime | None = None
    onset_period: Period | None = None
    abatement: FhirDateTime | None = None
    recorded_date: FhirDateTime | None = None
    recorder: Party | None = None
    asserter: Party | None = None

    _categories = model_validator(mode="before")(normalise_problem)


class Medication(PatientRecord):
    """A medication the patient takes or took (a FHIR MedicationStatement)."""

    kind: Literal["medication"] = "medication"
    medication: Concept = Field(description="RxNorm where possible")
    status: MedicationStatus
    dosage: str | None = None
    effective: FhirDateTime | None = None
    effective_period: Period | None = None
    date_asserted: FhirDateTime | None = None
    reasons: list[Ref] = Field(default_factory=list, description="Problems it treats")
    adherence: str | None = Field(default=None, description="How the patient keeps to it")
    information_source: Party | None = None


class CareTeamMember(Model):
    party: Party
    roles: list[Concept] = Field(default_factory=list)
    period: Period | None = None


class CareTeam(PatientRecord):
    kind: Literal["careteam"] = "careteam"
    name: str | None = None
    status: CareTeamStatus | None = None
    categories: list[Concept] = Field(default_factory=list)
    members: list[CareTeamMember] = Field(default_factory=list)
    period: Period | None = None
    managing_organizations: list[Party] = Field(default_factory=list)
    phone: str | None = None
