"""Medication adherence, coded: US Core's extension on a request, a contained LOINC 71799-1
Observation on a statement, the older free text still read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import MappingContext, from_fhir, to_entries
from tests.unit.strategies import ADHERENCE, ADHERENCE_CODES, CONCEPTS, DATETIMES

CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))
STAMP = datetime(2025, 2, 1, tzinfo=UTC)
US_CORE_ADHERENCE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication-adherence"
PARTIAL = {
    "codings": [
        {
            "system": "http://snomed.info/sct",
            "code": "275928001",
            "display": "Drugs - partial non-compliance (finding)",
        }
    ],
    "text": "Misses the evening dose",
}
PATIENT = {"codings": [{"system": "http://snomed.info/sct", "code": "116154003"}]}


def _medication(request: bool = False, **changes: Any) -> m.Medication:
    data: dict[str, Any] = {
        "id": "med-1",
        "updated_at": STAMP,
        "patient": "pat-1",
        "medication": {"text": "metformin 500 mg"},
        "status": "active",
    }
    if request:
        data["request"] = {
            "intent": "order",
            "requester": {"kind": "practitioner", "id": "dr-1", "name": "Dr One"},
        }
    return m.Medication.model_validate(data | changes)


def _resource(record: m.Medication) -> dict[str, Any]:
    (entry,) = [e for e in to_entries([record], CTX) if e.record_id == record.id]
    return entry.resource


def _back(resource: dict[str, Any]) -> m.Medication:
    (record,) = [r for r in from_fhir([(resource, None)], CTX).records if r.kind == "medication"]
    assert isinstance(record, m.Medication)
    return record


def test_a_request_says_adherence_in_the_us_core_extension() -> None:
    record = _medication(
        request=True,
        adherence={"code": PARTIAL, "asserted": "2025-01-30", "sources": [PATIENT]},
    )
    resource = _resource(record)
    (extension,) = resource["extension"]
    assert extension["url"] == US_CORE_ADHERENCE
    parts = {p["url"]: p for p in extension["extension"]}
    assert parts["medicationAdherence"]["valueCodeableConcept"]["coding"][0]["code"] == "275928001"
    assert parts["dateAsserted"]["valueDateTime"] == "2025-01-30"
    assert parts["informationSource"]["valueCodeableConcept"]["coding"][0]["code"] == "116154003"
    assert "contained" not in resource
    assert _back(resource) == record


def test_a_statement_says_adherence_in_a_contained_observation() -> None:
    record = _medication(adherence={"code": PARTIAL, "asserted": "2025-01-30"})
    resource = _resource(record)
    assert "extension" not in resource
    (observation,) = resource["contained"]
    assert resource["derivedFrom"] == [{"reference": "#" + observation["id"]}]
    assert observation["resourceType"] == "Observation"
    assert observation["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-simple-observation"
    ]
    assert observation["code"]["coding"][0]["system"] == "http://loinc.org"
    assert observation["code"]["coding"][0]["code"] == "71799-1"
    assert observation["valueCodeableConcept"]["coding"][0]["code"] == "275928001"
    assert observation["effectiveDateTime"] == "2025-01-30"
    assert observation["subject"] == resource["subject"]
    assert _back(resource) == record


def test_the_older_free_text_is_accepted_and_kept_as_the_concepts_text() -> None:
    record = _medication(adherence="Takes as prescribed")
    assert record.adherence == m.Adherence(code=m.Concept(text="Takes as prescribed"))
    observation = _resource(record)["contained"][0]
    assert observation["valueCodeableConcept"] == {"text": "Takes as prescribed"}


def test_the_older_extension_is_still_read_on_import() -> None:
    resource = _resource(_medication())
    resource["extension"] = [
        {
            "url": "https://fhir-bridge.example/fhir/StructureDefinition/medication-adherence",
            "valueString": "Skips on days with outings",
        }
    ]
    back = _back(resource)
    assert back.adherence == m.Adherence(code=m.Concept(text="Skips on days with outings"))
    # sent again, it goes the standard way and the old extension is not written
    again = _resource(back)
    assert again["contained"][0]["valueCodeableConcept"] == {"text": "Skips on days with outings"}
    assert not any("medication-adherence" in e["url"] for e in again.get("extension", []))


def test_a_contained_observation_of_another_code_is_not_adherence() -> None:
    resource = _resource(_medication(adherence={"code": PARTIAL}))
    resource["contained"][0]["code"]["coding"][0]["code"] = "8867-4"
    assert _back(resource).adherence is None


def test_an_adherence_extension_without_its_code_is_named() -> None:
    resource = _resource(
        _medication(request=True, adherence={"code": PARTIAL, "asserted": "2025-01-30"})
    )
    resource["extension"][0]["extension"] = [
        p for p in resource["extension"][0]["extension"] if p["url"] != "medicationAdherence"
    ]
    with pytest.raises(MappingError, match="medicationAdherence"):
        _back(resource)


def test_a_request_needs_the_date_asserted() -> None:
    with pytest.raises(ValidationError, match=r"adherence\.asserted: required"):
        _medication(request=True, adherence={"code": PARTIAL})


def test_coded_sources_on_a_statement_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"adherence\.sources"):
        _medication(adherence={"code": PARTIAL, "sources": [PATIENT]})


@given(ADHERENCE)
def test_a_statements_adherence_comes_back_whole(adherence: m.Adherence) -> None:
    record = _medication(adherence=adherence)
    assert _back(_resource(record)) == record


@given(
    st.builds(
        m.Adherence,
        code=ADHERENCE_CODES,
        asserted=DATETIMES,
        sources=st.lists(CONCEPTS, max_size=3),
    )
)
def test_a_requests_adherence_comes_back_whole(adherence: m.Adherence) -> None:
    record = _medication(request=True, adherence=adherence)
    assert _back(_resource(record)) == record
