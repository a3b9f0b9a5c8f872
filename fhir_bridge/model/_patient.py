from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._record import Record
from ._statuses import Sex
from ._types import Address, Concept, FhirDate, Identifier, Model, PersonName


class Caregiver(Model):
    """Someone who looks after the patient and can be contacted about the plan."""

    name: PersonName
    relationship: Concept | None = None
    phone: str | None = None
    email: str | None = None


class Patient(Record):
    kind: Literal["patient"] = "patient"
    identifiers: list[Identifier] = Field(
        default_factory=list, description="Identifiers per facility, e.g. hospital MRNs"
    )
    names: list[PersonName] = Field(default_factory=list, description="First is the usual name")
    birth_date: FhirDate | None = None
    sex: Sex | None = None
    phone: str | None = None
    email: str | None = None
    address: Address | None = None
    preferred_language: Concept | None = Field(
        default=None, description="BCP-47 code, e.g. {system: urn:ietf:bcp:47, code: es}"
    )
    caregivers: list[Caregiver] = Field(default_factory=list)
    active: bool | None = None
