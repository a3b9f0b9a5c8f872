"""An encounter: a care manager's check-in (call, visit, message) or a hospital stay."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._record import PatientRecord
from ._statuses import EncounterClass, EncounterStatus
from ._types import Concept, Element, Participation, Party, Period, Ref

MINUTE_THRESHOLDS = (20, 40, 60)
"""Monthly minutes that chronic care management billing counts in (CPT 99490 at 20, 99439 for
each further 20, 99487 complex care at 60)."""

CONTACT_CLASSES = frozenset(
    {
        EncounterClass.virtual,
        EncounterClass.ambulatory,
        EncounterClass.home_health,
        EncounterClass.field,
    }
)
"""Classes of a care manager's contact (a call, a message, a visit); a hospital stay is not one."""

PRIMARY_PERFORMER = "PPRF"


class EncounterParticipant(Participation):
    """Who took part: the care manager who made a check-in, the attending physician (FHIR
    ``Encounter.participant``: ``individual``, ``type``; roles are v3 ParticipationType, e.g.
    PPRF, the primary performer)."""


class Hospitalization(Element):
    """The stay's admission and discharge details (set for inpatient and emergency stays)."""

    admit_source: Concept | None = None
    discharge_disposition: Concept | None = Field(
        default=None, description="Where the patient went on discharge, e.g. home"
    )


class Encounter(PatientRecord):
    """A contact with the patient (a FHIR Encounter, US Core Encounter).

    A care manager's check-in is an encounter of class ``virtual`` (a call or a message) or
    ``home_health`` / ``ambulatory`` (a visit) with its ``length_minutes``, the care manager as
    participant and what it addressed; a hospital stay is ``inpatient`` (or ``emergency``) with
    its ``hospitalization``. FHIR Encounter has no notes: ``notes`` stays empty.
    """

    kind: Literal["encounter"] = "encounter"
    status: EncounterStatus
    encounter_class: EncounterClass
    types: list[Concept] = Field(
        min_length=1,
        description="What kind of encounter (US Core Encounter Type: SNOMED CT or CPT), "
        "e.g. 185317003 Telephone encounter",
    )
    period: Period | None = None
    length_minutes: float | None = Field(
        default=None, ge=0, description="Time spent with or for the patient, in minutes"
    )
    participants: list[EncounterParticipant] = Field(default_factory=list)
    reasons: list[Ref] = Field(default_factory=list, description="Problems it addressed")
    reason_codes: list[Concept] = Field(
        default_factory=list, description="Reasons as codes when there is no problem record"
    )
    goals: list[Ref] = Field(default_factory=list, description="Goals it worked on")
    referrals: list[Ref] = Field(default_factory=list, description="Referrals it followed up")
    hospitalization: Hospitalization | None = None
    service_provider: Party | None = Field(
        default=None, description="The organisation responsible (the hospital, the practice)"
    )

    @model_validator(mode="after")
    def _no_notes(self) -> Encounter:
        if self.notes:
            raise ValueError("notes: an encounter holds none (FHIR Encounter has no note)")
        return self

    def counted_minutes(self) -> float | None:
        """The minutes this encounter adds to its month's care-management time: a finished
        contact (see ``CONTACT_CLASSES``) with a length and a start; None for anything else."""
        if (
            self.status is not EncounterStatus.finished
            or self.encounter_class not in CONTACT_CLASSES
            or self.length_minutes is None
            or self.period is None
            or self.period.start is None
        ):
            return None
        return self.length_minutes

    def month(self) -> str | None:
        """YYYY-MM of the start, as written (the care manager's own calendar)."""
        start = self.period.start if self.period else None
        return start[:7] if start is not None and len(start) >= 7 else None

    def care_manager(self) -> Party | None:
        """Who made the contact: the primary performer (PPRF), else the first participant."""
        for participant in self.participants:
            if any(c.code == PRIMARY_PERFORMER for r in participant.roles for c in r.codings):
                return participant.party
        return self.participants[0].party if self.participants else None
