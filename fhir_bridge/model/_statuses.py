"""Status vocabularies of the internal records.

Each enum is the care-management system's own word list. ``mappers`` holds the exact,
complete tables to and from the FHIR codes.
"""

from enum import StrEnum


class CarePlanStatus(StrEnum):
    draft = "draft"
    active = "active"
    on_hold = "on_hold"
    cancelled = "cancelled"
    completed = "completed"
    entered_in_error = "entered_in_error"
    unknown = "unknown"


class PlanIntent(StrEnum):
    proposal = "proposal"
    plan = "plan"
    order = "order"
    option = "option"


class GoalLifecycle(StrEnum):
    proposed = "proposed"
    planned = "planned"
    accepted = "accepted"
    active = "active"
    on_hold = "on_hold"
    completed = "completed"
    cancelled = "cancelled"
    entered_in_error = "entered_in_error"
    rejected = "rejected"


class GoalAchievement(StrEnum):
    in_progress = "in_progress"
    improving = "improving"
    worsening = "worsening"
    no_change = "no_change"
    achieved = "achieved"
    sustaining = "sustaining"
    not_achieved = "not_achieved"
    no_progress = "no_progress"
    not_attainable = "not_attainable"


class GoalPriority(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


class ReferralStatus(StrEnum):
    draft = "draft"
    active = "active"
    on_hold = "on_hold"
    cancelled = "cancelled"
    completed = "completed"
    entered_in_error = "entered_in_error"
    unknown = "unknown"


class ReferralIntent(StrEnum):
    proposal = "proposal"
    plan = "plan"
    directive = "directive"
    order = "order"
    original_order = "original_order"
    reflex_order = "reflex_order"
    filler_order = "filler_order"
    instance_order = "instance_order"
    option = "option"


class ReferralPriority(StrEnum):
    routine = "routine"
    urgent = "urgent"
    asap = "asap"
    stat = "stat"


class ReferralKind(StrEnum):
    specialist = "specialist"
    community_resource = "community_resource"
    other = "other"


class TrackingStatus(StrEnum):
    """Where the performer says the referral stands (the FHIR Task status)."""

    draft = "draft"
    requested = "requested"
    received = "received"
    accepted = "accepted"
    rejected = "rejected"
    ready = "ready"
    cancelled = "cancelled"
    in_progress = "in_progress"
    on_hold = "on_hold"
    failed = "failed"
    completed = "completed"
    entered_in_error = "entered_in_error"


class ActivityStatus(StrEnum):
    not_started = "not_started"
    scheduled = "scheduled"
    in_progress = "in_progress"
    on_hold = "on_hold"
    completed = "completed"
    cancelled = "cancelled"
    stopped = "stopped"
    unknown = "unknown"
    entered_in_error = "entered_in_error"


class ProblemCategory(StrEnum):
    problem_list_item = "problem_list_item"
    health_concern = "health_concern"
    encounter_diagnosis = "encounter_diagnosis"


class ClinicalStatus(StrEnum):
    active = "active"
    recurrence = "recurrence"
    relapse = "relapse"
    inactive = "inactive"
    remission = "remission"
    resolved = "resolved"


class VerificationStatus(StrEnum):
    unconfirmed = "unconfirmed"
    provisional = "provisional"
    differential = "differential"
    confirmed = "confirmed"
    refuted = "refuted"
    entered_in_error = "entered_in_error"


class MedicationStatus(StrEnum):
    """intended and not_taken belong to a statement only; cancelled and draft to a request only."""

    active = "active"
    completed = "completed"
    entered_in_error = "entered_in_error"
    intended = "intended"
    stopped = "stopped"
    on_hold = "on_hold"
    unknown = "unknown"
    not_taken = "not_taken"
    cancelled = "cancelled"
    draft = "draft"


STATEMENT_ONLY = frozenset({MedicationStatus.intended, MedicationStatus.not_taken})
REQUEST_ONLY = frozenset({MedicationStatus.cancelled, MedicationStatus.draft})


class MedicationIntent(StrEnum):
    proposal = "proposal"
    plan = "plan"
    order = "order"
    original_order = "original_order"
    reflex_order = "reflex_order"
    filler_order = "filler_order"
    instance_order = "instance_order"
    option = "option"


class CareTeamStatus(StrEnum):
    proposed = "proposed"
    active = "active"
    suspended = "suspended"
    inactive = "inactive"
    entered_in_error = "entered_in_error"


class Sex(StrEnum):
    male = "male"
    female = "female"
    other = "other"
    unknown = "unknown"


class SdohCategory(StrEnum):
    """Gravity SDOH Clinical Care categories (SDOHCC-CodeSystemTemporaryCodes)."""

    food_insecurity = "food-insecurity"
    housing_instability = "housing-instability"
    homelessness = "homelessness"
    inadequate_housing = "inadequate-housing"
    transportation_insecurity = "transportation-insecurity"
    financial_insecurity = "financial-insecurity"
    material_hardship = "material-hardship"
    educational_attainment = "educational-attainment"
    employment_status = "employment-status"
    veteran_status = "veteran-status"
    stress = "stress"
    social_connection = "social-connection"
    intimate_partner_violence = "intimate-partner-violence"
    elder_abuse = "elder-abuse"
    personal_health_literacy = "personal-health-literacy"
    health_insurance_coverage_status = "health-insurance-coverage-status"
    medical_cost_burden = "medical-cost-burden"
    digital_literacy = "digital-literacy"
    digital_access = "digital-access"
    utility_insecurity = "utility-insecurity"
    incarceration_status = "incarceration-status"
    language_access = "language-access"
    protective_factor = "protective-factor"
    sdoh_category_unspecified = "sdoh-category-unspecified"


class EncounterStatus(StrEnum):
    planned = "planned"
    arrived = "arrived"
    triaged = "triaged"
    in_progress = "in_progress"
    on_leave = "on_leave"
    finished = "finished"
    cancelled = "cancelled"
    entered_in_error = "entered_in_error"
    unknown = "unknown"


class EncounterClass(StrEnum):
    """The kind of contact (HL7 v3 ActCode, the R4 Encounter.class value set)."""

    ambulatory = "ambulatory"
    emergency = "emergency"
    field = "field"
    home_health = "home_health"
    inpatient = "inpatient"
    acute = "acute"
    non_acute = "non_acute"
    observation = "observation"
    pre_admission = "pre_admission"
    short_stay = "short_stay"
    virtual = "virtual"


class ScreeningInstrument(StrEnum):
    """The instruments a screening can be (LOINC panels; see ``mappers._instruments``)."""

    ahc_hrsn = "ahc_hrsn"
    prapare = "prapare"
    phq_9 = "phq_9"
    gad_7 = "gad_7"


class ScreeningStatus(StrEnum):
    """Where the administered instrument stands (the QuestionnaireResponse status)."""

    in_progress = "in_progress"
    completed = "completed"
    amended = "amended"
    entered_in_error = "entered_in_error"
    stopped = "stopped"
