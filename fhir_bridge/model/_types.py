"""Value types shared by every internal record: codes, references, parties, dates."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

_DATE_RE = re.compile(r"^(\d{4})(-(\d{2})(-(\d{2}))?)?$")
_DATETIME_RE = re.compile(
    r"^(\d{4})(-(\d{2})(-(\d{2})(T(\d{2}):(\d{2})(:(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)?)?$"
)
ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"


def _check_date(value: str) -> str:
    m = _DATE_RE.match(value)
    if not m:
        raise ValueError("expected a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD")
    _check_calendar(value[:10])
    return value


def _check_datetime(value: str) -> str:
    m = _DATETIME_RE.match(value)
    if not m:
        raise ValueError(
            "expected a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz"
        )
    _check_calendar(value[:10])
    if "T" in value:
        time_part = value[11:19]
        hh, mm = int(time_part[0:2]), int(time_part[3:5])
        ss = int(time_part[6:8]) if len(time_part) >= 8 and time_part[5:6] == ":" else 0
        if hh > 23 or mm > 59 or ss > 59:
            raise ValueError(f"{value!r} is not a valid time of day")
    return value


def _check_calendar(prefix: str) -> None:
    parts = prefix.split("-")
    if len(parts) == 3:
        try:
            date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError as exc:
            raise ValueError(f"{prefix!r} is not a calendar date") from exc
    elif len(parts) == 2 and not 1 <= int(parts[1]) <= 12:
        raise ValueError(f"{prefix!r} has no month {parts[1]}")


FhirDate = Annotated[str, AfterValidator(_check_date)]
"""A FHIR ``date``: year, year-month or full date, kept as written."""

FhirDateTime = Annotated[str, AfterValidator(_check_datetime)]
"""A FHIR ``dateTime``: a date, or a date and time with a time zone, kept as written."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone (for example 2025-01-31T09:00:00Z)")
    return value


Timestamp = Annotated[datetime, AfterValidator(_aware)]
"""An instant with a time zone."""


class Model(BaseModel):
    """Base of every internal type: unknown fields are refused, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class Element(Model):
    """A value type that must hold something: FHIR has no empty elements."""

    @model_validator(mode="after")
    def _not_empty(self) -> Element:
        if all(getattr(self, name) in (None, []) for name in type(self).model_fields):
            raise ValueError(f"an empty {type(self).__name__} says nothing: leave it out")
        return self


class Code(Model):
    """One code from a code system, e.g. ``{system: http://snomed.info/sct, code: 44054006}``."""

    system: str | None = None
    code: str | None = None
    display: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Code:
        if self.code is None and self.display is None:
            raise ValueError("a code needs at least a code or a display")
        return self


class Concept(Model):
    """A coded concept: codes from one or more systems and/or a text."""

    codings: list[Code] = Field(default_factory=list)
    text: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_single_code(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and "codings" not in data
            and ("code" in data or "system" in data)
        ):
            return {"codings": [data]}
        if isinstance(data, str):
            return {"text": data}
        return data

    @model_validator(mode="after")
    def _something(self) -> Concept:
        if not self.codings and not self.text:
            raise ValueError("a concept needs a coding or a text")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Also accepted: one code ``{system, code, display}``, or a plain text."""
        single = {
            "type": "object",
            "properties": {k: {"type": "string"} for k in ("system", "code", "display")},
            "additionalProperties": False,
        }
        return {"anyOf": [handler(core_schema), single, {"type": "string", "minLength": 1}]}

    def has(self, system: str, code: str) -> bool:
        return any(c.system == system and c.code == code for c in self.codings)


class Identifier(Model):
    """A business identifier such as a hospital MRN or an NPI."""

    system: str | None = None
    value: str
    type: Concept | None = None
    use: str | None = None
    assigner: str | None = Field(default=None, description="Name of the issuing facility")


class Ref(Model):
    """A pointer to another record.

    ``id`` is the internal id of the target. ``reference`` is a literal FHIR reference kept
    verbatim from a FHIR source when the target was not part of the same input; it is written
    back unchanged. A bare string is read as ``{"id": ...}``.
    """

    id: str | None = Field(default=None, pattern=ID_PATTERN)
    reference: str | None = None
    display: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_string(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Also accepted: the target's internal id as a plain string."""
        return {"anyOf": [{"type": "string", "pattern": ID_PATTERN}, handler(core_schema)]}

    @model_validator(mode="after")
    def _something(self) -> Ref:
        if self.id is None and self.reference is None and self.display is None:
            raise ValueError("a reference needs an id, a reference or a display")
        return self


class PartyKind(StrEnum):
    practitioner = "practitioner"
    practitioner_role = "practitioner_role"
    organization = "organization"
    related_person = "related_person"
    patient = "patient"
    care_team = "care_team"
    device = "device"


class Party(Model):
    """A person or organisation acting in a record: author, requester, performer, team member.

    With an ``id`` it is a directory entry of the care-management system and is sent as its own
    FHIR resource (Practitioner, Organization, ...); otherwise it is a reference as received.
    """

    kind: PartyKind = PartyKind.practitioner
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    reference: str | None = None
    name: str | None = None
    identifiers: list[Identifier] = Field(default_factory=list)
    phone: str | None = None
    email: str | None = None
    fhir_extras: dict[str, Any] = Field(
        default_factory=dict,
        description="Elements of the directory resource this party was read from that it has "
        "no field for, restored when it is sent (see Record.fhir_extras)",
    )

    @model_validator(mode="after")
    def _something(self) -> Party:
        if not (self.id or self.reference or self.name or self.identifiers):
            raise ValueError("a party needs an id, a reference, a name or an identifier")
        return self


class Period(Element):
    start: FhirDateTime | None = None
    end: FhirDateTime | None = None


class Participation(Model):
    """A party taking part in something, in some roles, for a while: a care team's member, an
    encounter's participant."""

    party: Party
    roles: list[Concept] = Field(default_factory=list)
    period: Period | None = None


class Quantity(Model):
    value: float
    unit: str | None = None
    system: str | None = "http://unitsofmeasure.org"
    code: str | None = None
    comparator: str | None = Field(default=None, pattern=r"^(<|<=|>=|>)$")


class Range(Element):
    low: Quantity | None = None
    high: Quantity | None = None


class Note(Model):
    """A free-text note with optional author and time."""

    text: str
    time: FhirDateTime | None = None
    author: str | None = None


class PersonName(Element):
    family: str | None = None
    given: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)
    suffix: list[str] = Field(default_factory=list)
    text: str | None = None
    use: str | None = None

    def display(self) -> str:
        if self.text:
            return self.text
        return " ".join([*self.given, self.family or ""]).strip()


class Address(Element):
    lines: list[str] = Field(default_factory=list)
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    use: str | None = None
    text: str | None = None
