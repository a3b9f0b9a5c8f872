"""The base every internal record shares."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._types import ID_PATTERN, Model, Note, Ref, Timestamp


class Record(Model):
    """A record the care-management system owns: a stable id and when it last changed.

    ``fhir_extras`` keeps, per FHIR resource type, the elements of a resource this record
    was imported from that the model has no field for, so that writing the record back to
    FHIR restores them.
    """

    kind: str
    id: str = Field(
        pattern=ID_PATTERN,
        description="Stable internal id; also the value of "
        "the record's identifier on the FHIR side",
    )
    updated_at: Timestamp
    source: str | None = Field(
        default=None,
        description="Set when the record did not start in the care-management system, "
        "e.g. ehr:county-hospital for one a clinician created in that EHR",
    )
    fhir_extras: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PatientRecord(Record):
    """A record that belongs to one patient."""

    patient: Ref
    notes: list[Note] = Field(default_factory=list)
