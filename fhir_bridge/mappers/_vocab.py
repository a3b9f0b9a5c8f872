"""Exact, complete tables between internal status words and FHIR codes.

Every member of each internal enum has exactly one FHIR code and back; a code outside a
table is an error, never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError, Problem

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class Vocabulary(Generic[E]):
    """A bijection between an internal enum and the codes of one FHIR value set."""

    name: str
    enum: type[E]
    system: str | None
    to_code: dict[E, str]

    def __post_init__(self) -> None:
        missing = set(self.enum) - set(self.to_code)
        if missing:
            raise AssertionError(f"{self.name}: no FHIR code for {sorted(missing)}")
        if len(set(self.to_code.values())) != len(self.to_code):
            raise AssertionError(f"{self.name}: two members share a FHIR code")

    @property
    def codes(self) -> list[str]:
        return list(self.to_code.values())

    def to_fhir(self, value: E) -> str:
        return self.to_code[value]

    def from_fhir(self, code: object, path: str) -> E:
        for member, fhir_code in self.to_code.items():
            if fhir_code == code:
                return member
        raise MappingError(
            [
                Problem(
                    path, f"unknown {self.name} {code!r}; expected one of {', '.join(self.codes)}"
                )
            ]
        )


def _hyphenated(enum: type[E]) -> dict[E, str]:
    """Most FHIR status codes are the internal word with '-' for '_'."""
    return {member: member.value.replace("_", "-") for member in enum}


REQUEST_STATUS_SYSTEM = "http://hl7.org/fhir/request-status"

CAREPLAN_STATUS = Vocabulary(
    "CarePlan status",
    m.CarePlanStatus,
    REQUEST_STATUS_SYSTEM,
    {**_hyphenated(m.CarePlanStatus), m.CarePlanStatus.cancelled: "revoked"},
)
CAREPLAN_INTENT = Vocabulary(
    "CarePlan intent", m.PlanIntent, "http://hl7.org/fhir/request-intent", _hyphenated(m.PlanIntent)
)
GOAL_LIFECYCLE = Vocabulary(
    "Goal lifecycleStatus",
    m.GoalLifecycle,
    "http://hl7.org/fhir/goal-status",
    _hyphenated(m.GoalLifecycle),
)
GOAL_ACHIEVEMENT = Vocabulary(
    "Goal achievementStatus",
    m.GoalAchievement,
    "http://terminology.hl7.org/CodeSystem/goal-achievement",
    _hyphenated(m.GoalAchievement),
)
GOAL_PRIORITY = Vocabulary(
    "Goal priority",
    m.GoalPriority,
    "http://terminology.hl7.org/CodeSystem/goal-priority",
    {p: f"{p.value}-priority" for p in m.GoalPriority},
)
REFERRAL_STATUS = Vocabulary(
    "ServiceRequest status",
    m.ReferralStatus,
    REQUEST_STATUS_SYSTEM,
    {**_hyphenated(m.ReferralStatus), m.ReferralStatus.cancelled: "revoked"},
)
REFERRAL_INTENT = Vocabulary(
    "ServiceRequest intent",
    m.ReferralIntent,
    "http://hl7.org/fhir/request-intent",
    _hyphenated(m.ReferralIntent),
)
REFERRAL_PRIORITY = Vocabulary(
    "ServiceRequest priority",
    m.ReferralPriority,
    "http://hl7.org/fhir/request-priority",
    _hyphenated(m.ReferralPriority),
)
TASK_STATUS = Vocabulary(
    "Task status",
    m.TrackingStatus,
    "http://hl7.org/fhir/task-status",
    _hyphenated(m.TrackingStatus),
)
ACTIVITY_STATUS = Vocabulary(
    "CarePlan activity status",
    m.ActivityStatus,
    "http://hl7.org/fhir/care-plan-activity-status",
    _hyphenated(m.ActivityStatus),
)
PROBLEM_CATEGORY = Vocabulary(
    "Condition category",
    m.ProblemCategory,
    "http://terminology.hl7.org/CodeSystem/condition-category",
    _hyphenated(m.ProblemCategory),
)
CLINICAL_STATUS = Vocabulary(
    "Condition clinicalStatus",
    m.ClinicalStatus,
    "http://terminology.hl7.org/CodeSystem/condition-clinical",
    _hyphenated(m.ClinicalStatus),
)
VERIFICATION_STATUS = Vocabulary(
    "Condition verificationStatus",
    m.VerificationStatus,
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    _hyphenated(m.VerificationStatus),
)
MEDICATION_STATUS = Vocabulary(
    "medication status",
    m.MedicationStatus,
    "http://hl7.org/fhir/CodeSystem/medication-statement-status",
    _hyphenated(m.MedicationStatus),
)
MEDICATION_INTENT = Vocabulary(
    "MedicationRequest intent",
    m.MedicationIntent,
    "http://hl7.org/fhir/CodeSystem/medicationrequest-intent",
    _hyphenated(m.MedicationIntent),
)
CARETEAM_STATUS = Vocabulary(
    "CareTeam status",
    m.CareTeamStatus,
    "http://hl7.org/fhir/care-team-status",
    _hyphenated(m.CareTeamStatus),
)
ENCOUNTER_STATUS = Vocabulary(
    "Encounter status",
    m.EncounterStatus,
    "http://hl7.org/fhir/encounter-status",
    {**_hyphenated(m.EncounterStatus), m.EncounterStatus.on_leave: "onleave"},
)
ENCOUNTER_CLASS = Vocabulary(
    "Encounter class",
    m.EncounterClass,
    "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    {
        m.EncounterClass.ambulatory: "AMB",
        m.EncounterClass.emergency: "EMER",
        m.EncounterClass.field: "FLD",
        m.EncounterClass.home_health: "HH",
        m.EncounterClass.inpatient: "IMP",
        m.EncounterClass.acute: "ACUTE",
        m.EncounterClass.non_acute: "NONAC",
        m.EncounterClass.observation: "OBSENC",
        m.EncounterClass.pre_admission: "PRENC",
        m.EncounterClass.short_stay: "SS",
        m.EncounterClass.virtual: "VR",
    },
)
SCREENING_STATUS = Vocabulary(
    "QuestionnaireResponse status",
    m.ScreeningStatus,
    "http://hl7.org/fhir/questionnaire-answers-status",
    _hyphenated(m.ScreeningStatus),
)
GENDER = Vocabulary(
    "Patient gender", m.Sex, "http://hl7.org/fhir/administrative-gender", _hyphenated(m.Sex)
)

ALL: tuple[Vocabulary[StrEnum], ...] = (
    CAREPLAN_STATUS,
    CAREPLAN_INTENT,
    GOAL_LIFECYCLE,
    GOAL_ACHIEVEMENT,
    GOAL_PRIORITY,
    REFERRAL_STATUS,
    REFERRAL_INTENT,
    REFERRAL_PRIORITY,
    TASK_STATUS,
    ACTIVITY_STATUS,
    PROBLEM_CATEGORY,
    CLINICAL_STATUS,
    VERIFICATION_STATUS,
    MEDICATION_STATUS,
    MEDICATION_INTENT,
    CARETEAM_STATUS,
    ENCOUNTER_STATUS,
    ENCOUNTER_CLASS,
    SCREENING_STATUS,
    GENDER,
)  # type: ignore[assignment]
