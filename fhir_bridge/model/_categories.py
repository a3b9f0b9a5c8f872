"""Category codes implied by a record's kind, kept in step with its category list.

A Referral's ``referral_kind`` and ``sdoh_category`` and a Problem's ``category`` and
``sdoh_category`` are each also a coding in the record's ``categories``: setting one adds the
other, and a list read from FHIR sets the field. So a record always says the same thing both
ways, and FHIR -> internal -> FHIR keeps the list as received.
"""

from __future__ import annotations

from typing import Any

SNOMED = "http://snomed.info/sct"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
SDOHCC_CODES = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"

US_CORE_CAREPLAN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"

SOCIAL_SERVICE = (SNOMED, "410606002", "Social service procedure")
PATIENT_REFERRAL = (SNOMED, "3457005", "Patient referral")
SDOH = (US_CORE_CATEGORY, "sdoh", "SDOH")

REFERRAL_KIND_CODES = {"community_resource": SOCIAL_SERVICE, "specialist": PATIENT_REFERRAL}
PROBLEM_CATEGORY_CODES = {
    "problem_list_item": (CONDITION_CATEGORY, "problem-list-item", "Problem List Item"),
    "health_concern": (US_CORE_CONDITION_CATEGORY, "health-concern", "Health Concern"),
    "encounter_diagnosis": (CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis"),
}


def _codings(raw: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a concept in any accepted input shape."""
    if hasattr(raw, "codings"):
        return [(c.system, c.code) for c in raw.codings]
    if isinstance(raw, dict):
        if "codings" in raw:
            return [
                (c.get("system"), c.get("code"))
                for c in raw["codings"] or []
                if isinstance(c, dict)
            ]
        return [(raw.get("system"), raw.get("code"))]
    return []


def _find(categories: list[Any], systems: tuple[str, ...]) -> str | None:
    for concept in categories:
        for system, code in _codings(concept):
            if system in systems and code:
                return code
    return None


def _has(categories: list[Any], system: str, code: str) -> bool:
    return any((system, code) in _codings(c) for c in categories)


def _concept(coding: tuple[str, str, str]) -> dict[str, Any]:
    system, code, display = coding
    return {"codings": [{"system": system, "code": code, "display": display}]}


def _sdoh(data: dict[str, Any], categories: list[Any]) -> None:
    found = _find(categories, (SDOHCC_CODES,))
    if found and data.get("sdoh_category") is None:
        data["sdoh_category"] = found
    wanted = data.get("sdoh_category")
    if wanted is None:
        return
    wanted = getattr(wanted, "value", wanted)
    if not _has(categories, *SDOH[:2]):
        categories.append(_concept(SDOH))
    if not _has(categories, SDOHCC_CODES, wanted):
        categories.append(_concept((SDOHCC_CODES, wanted, wanted.replace("-", " ").capitalize())))


def normalise_referral(data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("categories", []), list):
        return data
    data = dict(data)
    categories = list(data.get("categories") or [])
    _sdoh(data, categories)
    kind = getattr(data.get("referral_kind"), "value", data.get("referral_kind"))
    if kind in (None, "other"):
        for name, (system, code, _) in REFERRAL_KIND_CODES.items():
            if _has(categories, system, code):
                data["referral_kind"] = kind = name
                break
    if kind in REFERRAL_KIND_CODES and not _has(categories, *REFERRAL_KIND_CODES[kind][:2]):
        categories.append(_concept(REFERRAL_KIND_CODES[kind]))
    data["categories"] = categories
    return data


def normalise_problem(data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("categories", []), list):
        return data
    data = dict(data)
    categories = list(data.get("categories") or [])
    found = _find(categories, (CONDITION_CATEGORY, US_CORE_CONDITION_CATEGORY))
    if found and "category" not in data:
        data["category"] = found.replace("-", "_")
    category = getattr(data.get("category"), "value", data.get("category")) or "problem_list_item"
    data["category"] = category
    if category in PROBLEM_CATEGORY_CODES:
        _, code, _ = PROBLEM_CATEGORY_CODES[category]
        if not any(
            _has(categories, system, code)
            for system in (CONDITION_CATEGORY, US_CORE_CONDITION_CATEGORY)
        ):
            categories.append(_concept(PROBLEM_CATEGORY_CODES[category]))
    _sdoh(data, categories)
    data["categories"] = categories
    return data


def normalise_careplan(data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("categories", []), list):
        return data
    data = dict(data)
    categories = list(data.get("categories") or [])
    if not _has(categories, US_CORE_CAREPLAN_CATEGORY, "assess-plan"):
        categories.append(
            _concept((US_CORE_CAREPLAN_CATEGORY, "assess-plan", "Assessment and Plan of Treatment"))
        )
    data["categories"] = categories
    return data
