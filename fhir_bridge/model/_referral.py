from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._categories import SDOHCC_CODES, normalise_referral
from ._record import PatientRecord
from ._statuses import (
    ReferralIntent,
    ReferralKind,
    ReferralPriority,
    ReferralStatus,
    SdohCategory,
    TrackingStatus,
)
from ._types import Concept, FhirDateTime, Model, Note, Party, Period, Ref

RESULTING_ACTIVITY = {
    "system": SDOHCC_CODES,
    "code": "resulting-activity",
    "display": "Resulting Activity",
}


class Output(Model):
    """What the performer reports as the result, e.g. the Procedure that was done."""

    type: Concept = Field(default_factory=lambda: Concept.model_validate(RESULTING_ACTIVITY))
    reference: str | None = None
    text: str | None = None


class Tracking(Model):
    """The referral as the performer reports it (Gravity: the Task for referral management)."""

    status: TrackingStatus
    reason: str | None = Field(default=None, description="Why rejected, cancelled or on hold")
    outputs: list[Output] = Field(default_factory=list)
    owner: Party | None = Field(default=None, description="Who fulfils the referral")
    authored_on: FhirDateTime | None = None
    last_modified: FhirDateTime | None = None
    business_status: str | None = None
    notes: list[Note] = Field(
        default_factory=list,
        description="Notes on the performer's Task (Task.note), the organisation's included",
    )


class Referral(PatientRecord):
    kind: Literal["referral"] = "referral"
    status: ReferralStatus
    intent: ReferralIntent = ReferralIntent.order
    priority: ReferralPriority | None = None
    referral_kind: ReferralKind = ReferralKind.other
    sdoh_category: SdohCategory | None = None
    categories: list[Concept] = Field(
        default_factory=list,
        description="Categories besides those implied by referral_kind and sdoh_category",
    )
    service: Concept = Field(description="What is requested (SNOMED CT procedure, LOINC, ...)")
    reasons: list[Ref] = Field(default_factory=list, description="Problems behind the referral")
    reason_codes: list[Concept] = Field(default_factory=list)
    requester: Party | None = None
    performer: Party | None = None
    occurrence: FhirDateTime | None = None
    occurrence_period: Period | None = None
    authored_on: FhirDateTime | None = None
    goals: list[Ref] = Field(default_factory=list, description="Goals the referral pertains to")
    consent: str | None = Field(default=None, description="Literal reference to a Consent")
    tracking: Tracking | None = None

    _categories = model_validator(mode="before")(normalise_referral)

    @model_validator(mode="after")
    def _one_occurrence(self) -> Referral:
        if self.occurrence and self.occurrence_period:
            raise ValueError("give occurrence or occurrence_period, not both")
        return self


class ReferralTask(PatientRecord):
    """Performer tracking of a referral that is not itself in this set of records."""

    kind: Literal["referral_task"] = "referral_task"
    referral: Ref
    requester: Party | None = None
    tracking: Tracking
