"""Encounters: a care manager's check-in with its minutes, a hospital stay with its discharge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import MappingContext, from_fhir, to_entries

CTX = MappingContext("https://bridge.test/id", datetime(2026, 12, 1, tzinfo=UTC))
STAMP = datetime(2026, 11, 30, tzinfo=UTC)
SNOMED = "http://snomed.info/sct"


def _check_in(**changes: object) -> m.Encounter:
    data: dict[str, object] = {
        "id": "enc-1",
        "updated_at": STAMP,
        "patient": "pat-1",
        "status": "finished",
        "encounter_class": "virtual",
        "types": [{"system": SNOMED, "code": "185317003", "display": "Telephone encounter"}],
        "period": {"start": "2026-11-03T10:00:00-05:00", "end": "2026-11-03T10:22:00-05:00"},
        "length_minutes": 22,
        "participants": [
            {
                "party": {"kind": "practitioner", "id": "cm-1", "name": "Ana Lopez, RN"},
                "roles": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "PPRF",
                    }
                ],
            }
        ],
        "reasons": ["prob-1"],
        "goals": ["goal-1"],
        "referrals": ["ref-1"],
    }
    return m.Encounter.model_validate(data | changes)


def _resource(record: m.Encounter) -> dict[str, Any]:
    (resource,) = [e.resource for e in to_entries([record], CTX) if e.record_id == record.id]
    return resource


def test_a_check_in_is_a_us_core_encounter_with_its_minutes() -> None:
    resource = _resource(_check_in())
    assert resource["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
    ]
    assert resource["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "VR",
    }
    assert resource["length"] == {
        "value": 22,
        "unit": "min",
        "system": "http://unitsofmeasure.org",
        "code": "min",
    }
    assert resource["participant"][0]["individual"]["display"] == "Ana Lopez, RN"
    assert resource["reasonReference"][0]["type"] == "Condition"
    assert resource["basedOn"][0]["type"] == "ServiceRequest"
    assert resource["extension"] == [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
            "valueReference": {
                "reference": CTX.full_url("goal", "goal-1"),
                "type": "Goal",
                "identifier": CTX.identifier("goal", "goal-1"),
            },
        }
    ]


def test_a_check_in_comes_back_as_the_same_record() -> None:
    record = _check_in()
    back = from_fhir([(e.resource, e.full_url) for e in to_entries([record], CTX)], CTX).records
    (again,) = [r for r in back if isinstance(r, m.Encounter)]
    assert again == record


def test_a_discharge_keeps_its_disposition_and_provider() -> None:
    stay = _check_in(
        id="stay-1",
        encounter_class="inpatient",
        types=[{"system": SNOMED, "code": "32485007", "display": "Hospital admission"}],
        length_minutes=None,
        hospitalization={
            "discharge_disposition": {
                "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                "code": "home",
            }
        },
        service_provider={"kind": "organization", "id": "county-hospital", "name": "County"},
    )
    resource = _resource(stay)
    assert resource["class"]["code"] == "IMP"
    assert resource["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "home"
    assert resource["serviceProvider"]["type"] == "Organization"
    back = from_fhir([(e.resource, e.full_url) for e in to_entries([stay], CTX)], CTX).records
    (again,) = [r for r in back if isinstance(r, m.Encounter)]
    assert again == stay


@pytest.mark.parametrize(("code", "value", "minutes"), [("h", 1.5, 90.0), ("s", 600, 10.0)])
def test_a_length_in_other_units_is_read_in_minutes(
    code: str, value: float, minutes: float
) -> None:
    resource = _resource(_check_in()) | {"length": {"value": value, "code": code}}
    (record,) = from_fhir([(resource, None)], CTX).records
    assert isinstance(record, m.Encounter)
    assert record.length_minutes == minutes


def test_an_unknown_class_and_unit_are_named() -> None:
    resource = _resource(_check_in()) | {
        "class": {"code": "XYZ"},
        "length": {"value": 3, "code": "wk"},
    }
    with pytest.raises(MappingError) as caught:
        from_fhir([(resource, None)], CTX)
    where = " ".join(p.path for p in caught.value.problems)
    assert "class.code" in where
    assert "length.code" in where


def test_notes_and_negative_minutes_are_refused() -> None:
    with pytest.raises(ValidationError, match="holds none"):
        _check_in(notes=[{"text": "talked about meals"}])
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        _check_in(length_minutes=-5)
