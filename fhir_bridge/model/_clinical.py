from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from ._categories import normalise_problem
from ._record import PatientRecord
from ._statuses import (
    REQUEST_ONLY,
    STATEMENT_ONLY,
    CareTeamStatus,
    ClinicalStatus,
    MedicationIntent,
    MedicationStatus,
    ProblemCategory,
    SdohCategory,
    VerificationStatus,
)
from ._types import Concept, FhirDateTime, Model, Participation, Party, Period, Ref


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
    evidence: list[Ref] = Field(
        default_factory=list,
        description="Screenings that found it (a positive SDOH screen raising a health concern)",
    )

    _categories = model_validator(mode="before")(normalise_problem)


class Adherence(Model):
    """Whether the patient takes a medication as directed (USCDI v4 Medication Adherence).

    An older internal format gave adherence as free text (``"adherence": "Takes as prescribed"``);
    that text is still accepted and kept as the concept's text.
    """

    code: Concept = Field(
        description="From VSAC 2.16.840.1.113762.1.4.1240.8 where possible: SNOMED CT "
        "1156699004 Complies with drug therapy, 275928001 Drugs - partial non-compliance, "
        "702565001 Non-compliance of drug therapy; the text says how"
    )
    asserted: FhirDateTime | None = Field(
        default=None, description="When it was reported (required on a medication request)"
    )
    sources: list[Concept] = Field(
        default_factory=list,
        description="Who reported it, coded (e.g. SNOMED CT 116154003 Patient, v3-RoleCode "
        "DAU daughter); a medication request only: a statement's informant is its "
        "information_source",
    )


def _adherence_text(value: Any) -> Any:
    """The older internal format's free text, read as the concept's text."""
    return {"code": {"text": value}} if isinstance(value, str) else value


AdherenceOrText = Annotated[
    Adherence, BeforeValidator(_adherence_text, json_schema_input_type=Adherence | str)
]


class MedicationRequestDetails(Model):
    """What a medication request (US Core MedicationRequest) says beyond the list entry."""

    intent: MedicationIntent
    authored_on: FhirDateTime | None = None
    requester: Party | None = None
    reported: bool | None = Field(
        default=None,
        description="True when the request was reported by someone else, not ordered here "
        "(the informant, if known, is information_source)",
    )
    medication_reference: str | None = Field(
        default=None,
        description="Literal reference to the Medication resource the request names "
        "(e.g. Medication/123 or #med1 for a contained one); medication holds its code or text",
    )


class Medication(PatientRecord):
    """A medication the patient takes or took.

    Without ``request`` it is a FHIR MedicationStatement; with ``request`` it is a
    MedicationRequest (US Core's medication list): ``dosage`` is its dosage instruction text and
    ``information_source`` its ``reportedReference``.
    """

    kind: Literal["medication"] = "medication"
    medication: Concept = Field(description="RxNorm where possible")
    status: MedicationStatus
    dosage: str | None = None
    effective: FhirDateTime | None = None
    effective_period: Period | None = None
    date_asserted: FhirDateTime | None = None
    reasons: list[Ref] = Field(default_factory=list, description="Problems it treats")
    adherence: AdherenceOrText | None = Field(
        default=None, description="Whether the patient takes it as directed (text accepted)"
    )
    information_source: Party | None = None
    request: MedicationRequestDetails | None = Field(
        default=None, description="Set when the medication is a request (a MedicationRequest)"
    )

    @model_validator(mode="after")
    def _statement_or_request(self) -> Medication:
        if self.request is None:
            if self.status in REQUEST_ONLY:
                raise ValueError(f"status {self.status.value} needs request (a MedicationRequest)")
            if self.adherence is not None and self.adherence.sources:
                raise ValueError(
                    "adherence.sources: not held by a medication statement "
                    "(its informant is information_source)"
                )
            return self
        if self.status in STATEMENT_ONLY:
            raise ValueError(f"status {self.status.value} is not a medication request's status")
        held = [
            name
            for name in ("effective", "effective_period", "date_asserted")
            if getattr(self, name) is not None
        ]
        if held:
            raise ValueError(f"{', '.join(held)}: not held by a medication request")
        if self.adherence is not None and self.adherence.asserted is None:
            raise ValueError("adherence.asserted: required on a medication request")
        return self


class CareTeamMember(Participation):
    """A member of a care team (FHIR ``CareTeam.participant``: ``member``, ``role``)."""


class CareTeam(PatientRecord):
    kind: Literal["careteam"] = "careteam"
    name: str | None = None
    status: CareTeamStatus | None = None
    categories: list[Concept] = Field(default_factory=list)
    members: list[CareTeamMember] = Field(default_factory=list)
    period: Period | None = None
    managing_organizations: list[Party] = Field(default_factory=list)
    phone: str | None = None
