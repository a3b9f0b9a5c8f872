"""Adherence, coded: the R5 MedicationStatement.adherence cross-version extension; the old
free-text extension is still read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import MappingContext, from_fhir, to_entries

CTX = MappingContext("https://bridge.test/id", datetime(2026, 12, 1, tzinfo=UTC))
XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationStatement.adherence"
CODES = "http://hl7.org/fhir/CodeSystem/medication-statement-adherence"


def _statement(**changes: object) -> m.Medication:
    data: dict[str, object] = {
        "id": "med-1",
        "updated_at": datetime(2026, 11, 30, tzinfo=UTC),
        "patient": "pat-1",
        "medication": {"text": "metformin 500 mg"},
        "status": "active",
    }
    return m.Medication.model_validate(data | changes)


def _resource(record: m.Medication) -> dict[str, Any]:
    (entry,) = [e for e in to_entries([record], CTX) if e.record_id == record.id]
    return entry.resource


def _back(resource: dict[str, Any]) -> m.Medication:
    (record,) = from_fhir([(resource, None)], CTX).records
    assert isinstance(record, m.Medication)
    return record


def test_a_coded_adherence_is_the_r5_extension_with_its_reason() -> None:
    record = _statement(adherence_code="taking_not_as_directed", adherence="Skips evening dose")
    (extension,) = _resource(record)["extension"]
    assert extension == {
        "url": XVER,
        "extension": [
            {
                "url": "code",
                "valueCodeableConcept": {
                    "coding": [{"system": CODES, "code": "taking-not-as-directed"}]
                },
            },
            {"url": "reason", "valueCodeableConcept": {"text": "Skips evening dose"}},
        ],
    }
    assert _back(_resource(record)) == record


def test_words_alone_are_the_code_text() -> None:
    record = _statement(adherence="Daughter fills the pill box")
    (extension,) = _resource(record)["extension"]
    assert extension["extension"] == [
        {"url": "code", "valueCodeableConcept": {"text": "Daughter fills the pill box"}}
    ]
    assert _back(_resource(record)) == record


def test_the_legacy_extension_is_read_as_words() -> None:
    resource = _resource(_statement()) | {
        "extension": [
            {
                "url": "https://fhir-bridge.example/fhir/StructureDefinition/medication-adherence",
                "valueString": "Takes as prescribed",
            }
        ]
    }
    back = _back(resource)
    assert (back.adherence, back.adherence_code) == ("Takes as prescribed", None)
    assert _resource(back)["extension"][0]["url"] == XVER


def test_an_unknown_adherence_code_is_named() -> None:
    resource = _resource(_statement(adherence_code="taking"))
    resource["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "x"
    with pytest.raises(MappingError, match=r"extension\[adherence\]\.code"):
        from_fhir([(resource, None)], CTX)
