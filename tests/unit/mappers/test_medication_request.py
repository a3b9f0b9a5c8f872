"""Medication records that are requests: US Core MedicationRequest both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import MappingContext, from_fhir, to_entries

CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))
STAMP = datetime(2025, 2, 1, tzinfo=UTC)


def _request(**changes: object) -> m.Medication:
    data: dict[str, object] = {
        "id": "rx-1",
        "updated_at": STAMP,
        "patient": "pat-1",
        "medication": {
            "codings": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]
        },
        "status": "active",
        "dosage": "one tablet daily",
        "request": {
            "intent": "order",
            "authored_on": "2025-01-20",
            "requester": {"kind": "practitioner", "id": "dr-1", "name": "Dr One"},
        },
    }
    return m.Medication.model_validate(data | changes)


def test_a_request_is_sent_as_a_us_core_medication_request() -> None:
    entries = to_entries([_request()], CTX)
    (resource,) = [e.resource for e in entries if e.record_id == "rx-1"]
    assert resource["resourceType"] == "MedicationRequest"
    assert resource["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"
    ]
    assert (resource["status"], resource["intent"]) == ("active", "order")
    assert resource["dosageInstruction"] == [{"text": "one tablet daily"}]
    assert resource["authoredOn"] == "2025-01-20"
    assert resource["requester"]["display"] == "Dr One"
    assert any(e.resource["resourceType"] == "Practitioner" for e in entries)


def test_a_request_comes_back_as_the_same_record() -> None:
    record = _request(status="draft")
    entries = to_entries([record], CTX)
    back = from_fhir([(e.resource, e.full_url) for e in entries], CTX).records
    (again,) = [r for r in back if isinstance(r, m.Medication)]
    assert again == record


def test_a_statement_status_on_a_request_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a medication request's status"):
        _request(status="not_taken")
    with pytest.raises(ValidationError, match="effective: not held by a medication request"):
        _request(effective="2025-01-01")
    with pytest.raises(ValidationError, match="needs request"):
        _request(status="cancelled", request=None)


def test_an_unknown_intent_names_the_resource_and_element() -> None:
    resource = {
        "resourceType": "MedicationRequest",
        "id": "mr-9",
        "status": "active",
        "intent": "wish",
        "medicationCodeableConcept": {"text": "aspirin"},
        "subject": {"reference": "Patient/p"},
    }
    with pytest.raises(MappingError) as info:
        from_fhir([(resource, None)], CTX)
    assert [p.path for p in info.value.problems] == ["MedicationRequest[mr-9].intent"]
