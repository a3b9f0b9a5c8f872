"""Response models of the handoffs (``/v1/handoffs``), beside ``_responses``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from fhir_bridge import store as s

from ._responses import FhirBundle


class Finding(BaseModel):
    """One gap the completeness check found."""

    code: str
    severity: Literal["error", "warning"]
    record: str | None = Field(description="kind/id of the record it is about")
    message: str


class HandoffMade(BaseModel):
    id: int
    package_id: str
    findings: list[Finding]
    delivery: str | None = Field(description="What happened to the delivery; null: not sent")
    document: FhirBundle


class HandoffRefusal(BaseModel):
    detail: str
    findings: list[Finding]


class HandoffSummary(BaseModel):
    id: int
    package_id: str
    patient_id: str
    type: Literal["transfer", "referral", "summary"]
    author: str | None
    destination: str | None
    findings: list[Finding]
    delivery: str | None
    created_at: str

    @classmethod
    def of(cls, h: s.HandoffSummary) -> HandoffSummary:
        return cls.model_validate(_summary(h))


class Handoffs(BaseModel):
    items: list[HandoffSummary]


class HandoffOut(HandoffSummary):
    document: FhirBundle

    @classmethod
    def of_stored(cls, h: s.Handoff) -> HandoffOut:
        return cls.model_validate({**_summary(h), "document": h.document})


def _summary(h: s.HandoffSummary) -> dict[str, Any]:
    return {
        "id": h.id,
        "package_id": h.package_id,
        "patient_id": h.patient_id,
        "type": h.handoff_type,
        "author": h.author,
        "destination": h.destination,
        "findings": h.findings,
        "delivery": h.delivery,
        "created_at": h.created_at.isoformat(),
    }
