"""Checks every emitted resource passes: the R4B model, plus what fhir.resources does not check.

fhir.resources validates structure and cardinality; it does not check required bindings
(status codes), US Core's mandatory elements, or that a narrative is present.
"""

from __future__ import annotations

from collections.abc import Callable

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import Problem

from . import _vocab as v
from ._datatypes import Json
from ._refs import identifiers_of
from ._terminology import terminology_findings

_REQUIRED_CODES: dict[str, dict[str, list[str]]] = {
    "CarePlan": {"status": v.CAREPLAN_STATUS.codes, "intent": v.CAREPLAN_INTENT.codes},
    "Goal": {"lifecycleStatus": v.GOAL_LIFECYCLE.codes},
    "ServiceRequest": {
        "status": v.REFERRAL_STATUS.codes,
        "intent": v.REFERRAL_INTENT.codes,
        "priority": v.REFERRAL_PRIORITY.codes,
    },
    "Task": {
        "status": v.TASK_STATUS.codes,
        "intent": [
            "unknown",
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ],
    },
    "MedicationStatement": {
        "status": [
            v.MEDICATION_STATUS.to_fhir(s) for s in m.MedicationStatus if s not in m.REQUEST_ONLY
        ]
    },
    "MedicationRequest": {
        "status": [
            v.MEDICATION_STATUS.to_fhir(s) for s in m.MedicationStatus if s not in m.STATEMENT_ONLY
        ],
        "intent": v.MEDICATION_INTENT.codes,
    },
    "CareTeam": {"status": v.CARETEAM_STATUS.codes},
    "Encounter": {"status": v.ENCOUNTER_STATUS.codes},
    "QuestionnaireResponse": {"status": v.SCREENING_STATUS.codes},
    "Observation": {
        "status": [
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ]
    },
    "Patient": {"gender": v.GENDER.codes},
}
_REQUIRED_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Patient": ("identifier", "name", "gender"),
    "CarePlan": ("status", "intent", "subject", "category"),
    "Goal": ("lifecycleStatus", "description", "subject"),
    "ServiceRequest": ("status", "intent", "code", "subject"),
    "Task": ("status", "intent", "code", "focus", "for"),
    "Condition": ("category", "code", "subject"),
    "CareTeam": ("subject", "participant"),
    "Encounter": ("status", "class", "type", "subject"),
    "QuestionnaireResponse": ("questionnaire", "status", "subject", "authored"),
    "Observation": ("status", "category", "code", "subject"),
    "MedicationStatement": ("status", "subject"),
    "Practitioner": ("identifier", "name"),
    "Organization": ("active", "name"),
    "MedicationRequest": ("status", "intent", "subject", "requester"),
}
ASSESS_PLAN = ("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan")


def check_resource(resource: Json, path: str) -> list[Problem]:
    """Every problem of one emitted resource, located under ``path``."""
    problems: list[Problem] = []
    resource_type = str(resource.get("resourceType"))
    problems += _structure(resource, resource_type, path)
    for element, codes in _REQUIRED_CODES.get(resource_type, {}).items():
        value = resource.get(element)
        if value is not None and value not in codes:
            problems.append(
                Problem(f"{path}.{element}", f"{value!r} is not in the required value set")
            )
    for element in _REQUIRED_ELEMENTS.get(resource_type, ()):
        if resource.get(element) in (None, [], {}):
            problems.append(Problem(f"{path}.{element}", "required by US Core"))
    text = resource.get("text") or {}
    if text.get("status") not in ("generated", "additional", "extensions") or not str(
        text.get("div", "")
    ).startswith("<div"):
        problems.append(Problem(f"{path}.text", "a narrative (generated XHTML div) is required"))
    for check in _SPECIFIC.get(resource_type, ()):
        problems += check(resource, path)
    problems += [
        Problem(f.path, f.reason)
        for f in terminology_findings(resource, path)
        if f.severity == "error"
    ]
    return problems


def _structure(resource: Json, resource_type: str, path: str) -> list[Problem]:
    try:
        model_class = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return [Problem(f"{path}.resourceType", f"unknown resource type {resource_type!r}")]
    try:
        model_class.model_validate(resource)
    except ValidationError as exc:
        return [
            Problem(f"{path}.{'.'.join(str(p) for p in e['loc'])}", e["msg"]) for e in exc.errors()
        ]
    return []


def _medication_choice(resource: Json, path: str) -> list[Problem]:
    if resource.get("medicationCodeableConcept") or resource.get("medicationReference"):
        return []
    return [Problem(f"{path}.medication[x]", "required by US Core")]


def _careplan_assess_plan(resource: Json, path: str) -> list[Problem]:
    for concept in resource.get("category") or []:
        for coding in concept.get("coding") or []:
            if (coding.get("system"), coding.get("code")) == ASSESS_PLAN:
                return []
    return [Problem(f"{path}.category", "US Core 6.1/7.0 requires the assess-plan category")]


def _goal_target_measure(resource: Json, path: str) -> list[Problem]:
    return [
        Problem(f"{path}.target[{i}].measure", "required when the target has a detail (gol-1)")
        for i, target in enumerate(resource.get("target") or [])
        if any(k.startswith("detail") for k in target) and "measure" not in target
    ]


def _npis(resource: Json, path: str) -> list[Problem]:
    """us-core-16/17: an NPI identifier is 10 digits with a valid check digit."""
    problems = []
    for i, identifier in enumerate(identifiers_of(resource)):
        if identifier.get("system") != m.NPI_SYSTEM:
            continue
        reason = m.npi_problem(str(identifier.get("value") or ""))
        if reason is not None:
            problems.append(Problem(f"{path}.identifier[{i}].value", reason))
    return problems


def _practitioner_family(resource: Json, path: str) -> list[Problem]:
    return [
        Problem(f"{path}.name[{i}].family", "required by US Core (a family name)")
        for i, name in enumerate(resource.get("name") or [])
        if not name.get("family")
    ]


def _role_contact(resource: Json, path: str) -> list[Problem]:
    if resource.get("telecom") or resource.get("endpoint"):
        return []
    return [Problem(f"{path}.telecom", "US Core requires a phone/email or an endpoint (pd-1)")]


_SPECIFIC: dict[str, tuple[Callable[[Json, str], list[Problem]], ...]] = {
    "MedicationRequest": (_medication_choice,),
    "CarePlan": (_careplan_assess_plan,),
    "Goal": (_goal_target_measure,),
    "Practitioner": (_npis, _practitioner_family),
    "Organization": (_npis,),
    "PractitionerRole": (_role_contact,),
}
