"""Pure: how a resource says it was entered in error, per FHIR R4 type.

A local deletion reaches an EHR as an update of the resource to ``entered-in-error`` where
its type has such a status (the server's own copy, with only that element changed, so
nothing a clinician added is lost), else as a ``DELETE``. Condition says it in
``verificationStatus`` (and then carries no ``clinicalStatus``: invariant con-5), Goal in
``lifecycleStatus``, DocumentReference and the other types we write in ``status``. Patient,
Practitioner, PractitionerRole and Organization have no such status.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]
CODE = "entered-in-error"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# the element holding the status, per type that has entered-in-error among its codes
STATUS_ELEMENT: dict[str, str] = {
    "Condition": "verificationStatus",
    "Goal": "lifecycleStatus",
    "CarePlan": "status",
    "ServiceRequest": "status",
    "Task": "status",
    "MedicationStatement": "status",
    "MedicationRequest": "status",
    "CareTeam": "status",
    "Encounter": "status",
    "DocumentReference": "status",
    "Observation": "status",
    "QuestionnaireResponse": "status",
    "Communication": "status",
    "Procedure": "status",
}


def has_status(resource_type: str) -> bool:
    """Whether the type can say entered-in-error (else a deletion is a DELETE)."""
    return resource_type in STATUS_ELEMENT


def is_entered_in_error(resource: Json) -> bool:
    """Whether the resource already says it was entered in error."""
    element = STATUS_ELEMENT.get(str(resource.get("resourceType")))
    if element is None:
        return False
    value = resource.get(element)
    if isinstance(value, dict):
        return any(c.get("code") == CODE for c in value.get("coding") or [])
    return value == CODE


def entered_in_error(resource: Json) -> Json:
    """The resource as entered in error: a copy with only its status element changed (and,
    for a Condition, no clinical status). KeyError for a type without such a status."""
    resource_type = str(resource.get("resourceType"))
    element = STATUS_ELEMENT[resource_type]
    out = copy.deepcopy(resource)
    out.pop("meta", None)
    out.pop("text", None)  # the narrative would still tell the old status
    if resource_type == "Condition":
        out[element] = {"coding": [{"system": VERIFICATION, "code": CODE}]}
        out.pop("clinicalStatus", None)
    else:
        out[element] = CODE
    return out
