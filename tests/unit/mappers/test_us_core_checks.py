"""What US Core asks of emitted resources, found before anything is sent: NPIs, directory
resources (Practitioner family name, Organization active, PractitionerRole contact), and codes
against the value sets the US Core packages ship."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import records_from_data
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import (
    MappingContext,
    _terminology,
    check_resource,
    party_entries,
    terminology_findings,
    terminology_warnings,
)
from fhir_bridge.mappers._refs import person_name
from fhir_bridge.mappers._us_core_terminology import BINDINGS
from tests.helpers import FIXTURES

CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize("npi", ["1234567893", "1000000004", "1000000178"])
def test_npis_with_their_check_digit_are_valid(npi: str) -> None:
    assert m.is_valid_npi(npi)
    assert m.npi_problem(npi) is None


@pytest.mark.parametrize(
    ("npi", "reason"),
    [
        ("1234567890", "check digit"),
        ("1000000001", "check digit"),
        ("24242", "10 digits"),
        ("12345678a3", "10 digits"),
    ],
)
def test_npis_without_a_valid_check_digit_are_not(npi: str, reason: str) -> None:
    assert not m.is_valid_npi(npi)
    problem = m.npi_problem(npi)
    assert problem is not None
    assert reason in problem
    assert npi not in problem


def test_every_npi_of_the_fixtures_is_valid() -> None:
    values = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("system") == m.NPI_SYSTEM:
                values.append(node["value"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for path in FIXTURES.rglob("*.json"):
        walk(json.loads(path.read_text()))
    assert values
    assert [v for v in values if not m.is_valid_npi(v)] == []


def test_an_invalid_npi_on_input_names_the_record_and_field() -> None:
    data = json.loads((FIXTURES / "cc-diabetes-heart-failure.json").read_text())
    careplan = data["care_plans"][0]
    careplan["author"]["identifiers"][0] = {"system": m.NPI_SYSTEM, "value": "1000000001"}
    with pytest.raises(MappingError) as caught:
        records_from_data(data, "plan.json")
    [problem] = caught.value.problems
    assert problem.path == (f"plan.json[careplan {careplan['id']}].author.identifiers[0].value"), (
        problem.path
    )
    assert "check digit" in problem.reason


def _party(kind: m.PartyKind, **fields: object) -> dict[str, object]:
    [entry] = party_entries(CTX, [m.Party(kind=kind, id="x1", **fields)])  # type: ignore[arg-type]
    return entry.resource


def test_directory_resources_declare_and_meet_their_us_core_profile() -> None:
    practitioner = _party(m.PartyKind.practitioner, name="Dr. Omar Haddad, MD (Nephrology)")
    organization = _party(m.PartyKind.organization, name="Eastside Pantry")
    role = _party(m.PartyKind.practitioner_role, name="Nephrologist", phone="555-0101")
    for resource, profile in [
        (practitioner, "us-core-practitioner"),
        (organization, "us-core-organization"),
        (role, "us-core-practitionerrole"),
    ]:
        assert resource["meta"]["profile"] == [
            f"http://hl7.org/fhir/us/core/StructureDefinition/{profile}"
        ]
        assert check_resource(resource, "R") == []
    assert practitioner["name"] == [
        {
            "text": "Dr. Omar Haddad, MD (Nephrology)",
            "family": "Haddad",
            "given": ["Omar"],
            "prefix": ["Dr."],
            "suffix": ["MD (Nephrology)"],
        }
    ]
    assert organization["active"] is True


def test_person_name_of_a_single_word_is_its_family() -> None:
    assert person_name("Cher") == {"text": "Cher", "family": "Cher"}


def test_what_us_core_asks_of_directory_resources_is_named() -> None:
    practitioner = _party(m.PartyKind.practitioner, name="Ana Lopez")
    practitioner["name"] = [{"text": "Ana Lopez"}]
    practitioner["identifier"].insert(0, {"system": m.NPI_SYSTEM, "value": "1000000001"})
    organization = _party(m.PartyKind.organization, name="Pantry")
    del organization["active"]
    role = _party(m.PartyKind.practitioner_role, name="Nurse")
    assert [str(p) for p in check_resource(practitioner, "P")] == [
        "P.identifier[0].value: not a valid NPI: the check digit (the 10th) does not match",
        "P.name[0].family: required by US Core (a family name)",
    ]
    assert [str(p) for p in check_resource(organization, "O")] == ["O.active: required by US Core"]
    assert [p.path for p in check_resource(role, "R")] == ["R.telecom"]


CONDITION = {
    "resourceType": "Condition",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                }
            ]
        }
    ],
    "code": {"text": "Food insecurity"},
    "subject": {"reference": "Patient/1"},
}


def test_a_problem_with_its_us_core_category_has_no_terminology_finding() -> None:
    assert terminology_findings(CONDITION, "Condition") == []


def test_a_problem_without_a_us_core_category_is_an_error_naming_both_versions() -> None:
    condition = copy.deepcopy(CONDITION)
    condition["category"][0]["coding"][0]["code"] = "symptom"
    [finding] = terminology_findings(condition, "Condition[c1]")
    assert finding.severity == "error"
    assert finding.path == "Condition[c1].category"
    assert "us-core-problem-or-health-concern" in finding.reason
    assert "6.1.0, 7.0.0" in finding.reason
    assert "Condition[c1].category" in [p.path for p in check_resource(condition, "Condition[c1]")]


def test_an_encounter_diagnosis_is_checked_against_its_own_profile() -> None:
    condition = copy.deepcopy(CONDITION)
    condition["category"][0]["coding"][0]["code"] = "encounter-diagnosis"
    assert [f for f in terminology_findings(condition, "C") if f.severity == "error"] == []


def test_a_required_code_outside_the_package_value_set_is_an_error() -> None:
    careplan = {"resourceType": "CarePlan", "text": {"status": "empty", "div": "<div/>"}}
    [finding] = terminology_findings(careplan, "CarePlan")
    assert (finding.path, finding.severity) == ("CarePlan.text.status", "error")
    assert terminology_warnings(careplan) == []


def test_an_extensible_code_outside_the_value_set_is_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes = {"http://example.org/cs": ["a"]}
    bindings = {
        "7.0.0": {"Goal": [("Goal.category", "extensible", 0, "http://x/ValueSet/vs", codes)]}
    }
    monkeypatch.setattr(_terminology, "BINDINGS", bindings)
    goal = {
        "resourceType": "Goal",
        "category": [
            {"coding": [{"system": "http://example.org/cs", "code": "a"}]},
            {"coding": [{"system": "http://example.org/cs", "code": "b"}]},
        ],
    }
    assert terminology_warnings(goal) == [
        "Goal.category[1]: not in the value set vs (extensible binding) of US Core 7.0.0"
    ]


def test_the_generated_bindings_are_those_of_the_packages() -> None:
    assert sorted(BINDINGS) == ["6.1.0", "7.0.0"]
    for version in BINDINGS:
        elements = {b[0] for b in BINDINGS[version]["Condition"]}
        assert "Condition.category:us-core" in elements
