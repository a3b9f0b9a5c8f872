"""Screenings: the QuestionnaireResponse and the Observations derived from it, both ways; a
positive screen's health concern names it as evidence."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import MappingContext, from_fhir, to_bundle, to_entries
from tests.helpers import FIXTURES

CTX = MappingContext("https://bridge.test/id", datetime(2025, 3, 1, tzinfo=UTC))
LOINC = "http://loinc.org"
PACKAGE = FIXTURES / "month-diabetes-depression.json"
Json = dict[str, Any]


def _package() -> m.PatientPackage:
    return m.PatientPackage.model_validate_json(PACKAGE.read_text(encoding="utf-8"))


def _screening(package: m.PatientPackage, instrument: m.ScreeningInstrument) -> m.Screening:
    (found,) = [s for s in package.screenings if s.instrument is instrument]
    return found


def _resources(records: list[m.Record], resource_type: str) -> list[Json]:
    return [
        e.resource for e in to_entries(records, CTX) if e.resource["resourceType"] == resource_type
    ]


def _codes(concepts: list[Json]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for concept in concepts for c in concept.get("coding", [])}


def test_an_sdoh_screening_is_a_questionnaire_response_with_one_observation_per_answer() -> None:
    package = _package()
    hrsn = _screening(package, m.ScreeningInstrument.ahc_hrsn)
    entries = to_entries([hrsn], CTX)
    (response,) = [
        e.resource for e in entries if e.resource["resourceType"] == "QuestionnaireResponse"
    ]
    observations = [e.resource for e in entries if e.resource["resourceType"] == "Observation"]

    assert response["questionnaire"] == "http://loinc.org/q/96777-8"
    assert response["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse"
    ]
    assert response["identifier"] == CTX.identifier("screening", hrsn.id)  # one, not a list
    assert [i["linkId"] for i in response["item"]] == [f"/{a.question.code}" for a in hrsn.answers]
    assert response["item"][1]["answer"] == [
        {"valueCoding": {"system": LOINC, "code": "LA28397-0", "display": "Often true"}}
    ]
    # one per answer, and the one that groups them
    assert len(observations) == len(hrsn.answers) + 1
    response_url = next(e.full_url for e in entries if e.resource is response)
    for observation in observations:
        assert observation["derivedFrom"][0]["reference"] == response_url
        assert ("http://hl7.org/fhir/us/core/CodeSystem/us-core-category", "sdoh") in _codes(
            observation["category"]
        )
    *answers, group = observations
    assert group["code"]["coding"][0]["code"] == "96777-8"
    member_urls = {e.full_url for e in entries if e.resource in answers}
    assert {r["reference"] for r in group["hasMember"]} == member_urls
    food = [o for o in answers if o["code"]["coding"][0]["code"] == "88122-7"]
    (food_answer,) = food
    assert (
        "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
        "food-insecurity",
    ) in _codes(food_answer["category"])
    assert food_answer["interpretation"][0]["coding"][0]["code"] == "POS"
    housing = next(o for o in answers if o["code"]["coding"][0]["code"] == "71802-3")
    assert housing["interpretation"][0]["coding"][0]["code"] == "NEG"


def test_phq9_total_score_is_an_observation_with_the_items_as_members() -> None:
    package = _package()
    phq = _screening(package, m.ScreeningInstrument.phq_9)
    assert phq.score == 13
    observations = _resources([phq], "Observation")
    total = observations[-1]
    assert total["code"]["coding"][0]["code"] == "44261-6"
    assert total["valueInteger"] == 13
    assert len(total["hasMember"]) == len(phq.answers)
    assert all("valueCodeableConcept" in o for o in observations[:-1])
    (response,) = _resources([phq], "QuestionnaireResponse")
    links = [i["linkId"] for i in response["item"]]
    # the total sits where the LOINC form has it: before the difficulty question
    assert links[-2:] == ["/44261-6", "/69722-7"]
    assert response["item"][-2]["answer"] == [{"valueDecimal": 13}]


def test_the_health_concern_a_positive_screen_raised_names_it_as_evidence() -> None:
    package = _package()
    (concern,) = [p for p in package.problems if p.evidence]
    (goal,) = [g for g in package.goals if any(r.id == concern.id for r in g.addresses)]
    entries = to_entries(package.records(), CTX)
    by_url = {e.full_url: e.resource for e in entries}
    (condition,) = [
        e.resource
        for e in entries
        if e.resource["resourceType"] == "Condition" and e.record_id == concern.id
    ]
    (detail,) = condition["evidence"][0]["detail"]
    evidence = by_url[detail["reference"]]
    assert evidence["resourceType"] == "Observation"
    assert evidence["code"]["coding"][0]["code"] == "96777-8"  # the grouping Observation
    (goal_resource,) = [
        e.resource
        for e in entries
        if e.resource["resourceType"] == "Goal" and e.record_id == goal.id
    ]
    assert by_url[goal_resource["addresses"][0]["reference"]] is condition


def test_the_month_package_comes_back_the_same_records() -> None:
    package = _package()
    bundle = to_bundle(package.records(), CTX)
    back = from_fhir([(e["resource"], e["fullUrl"]) for e in bundle["entry"]], CTX)
    assert "Observation" not in back.skipped  # read with their response
    got = {(r.kind, r.id): r for r in back.records}
    for record in [*package.screenings, *package.problems]:
        assert got[(record.kind, record.id)] == record


def test_a_response_alone_gives_the_answers_without_domains_or_findings() -> None:
    hrsn = _screening(_package(), m.ScreeningInstrument.ahc_hrsn)
    (response,) = _resources([hrsn], "QuestionnaireResponse")
    (record,) = from_fhir([(response, None)], CTX).records
    assert isinstance(record, m.Screening)
    assert [a.question.code for a in record.answers] == [a.question.code for a in hrsn.answers]
    assert [a.answer for a in record.answers] == [a.answer for a in hrsn.answers]
    assert all(a.domain is None for a in record.answers)
    assert record.findings == []


def test_a_response_to_a_form_we_do_not_know_is_refused_naming_the_element() -> None:
    hrsn = _screening(_package(), m.ScreeningInstrument.ahc_hrsn)
    (response,) = _resources([hrsn], "QuestionnaireResponse")
    response = copy.deepcopy(response) | {"questionnaire": "http://forms.example/Questionnaire/x"}
    with pytest.raises(MappingError) as caught:
        from_fhir([(response, None)], CTX)
    assert [p.path for p in caught.value.problems] == ["QuestionnaireResponse[#1].questionnaire"]


def test_grouped_items_and_a_form_of_its_own_are_read() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://hl7.org/fhir/us/core/Questionnaire/prapare-example",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2026-11-03",
        "item": [
            {
                "linkId": "/93042-0",
                "text": "Family and home",
                "item": [
                    {
                        "linkId": "/93042-0/63512-8",
                        "answer": [{"valueInteger": 4}],
                    },
                    {"linkId": "/93042-0/93033-9"},  # left unanswered
                ],
            }
        ],
    }
    (record,) = from_fhir([(response, None)], CTX).records
    assert isinstance(record, m.Screening)
    assert record.instrument is m.ScreeningInstrument.prapare
    assert record.questionnaire == response["questionnaire"]
    assert [(a.question.code, a.value) for a in record.answers] == [("63512-8", 4)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"instrument": "ahc_hrsn", "score": 3}, "ahc_hrsn has no total score"),
        ({"score": 28}, "at most 27"),
        ({"findings": [{"domain": "stress", "positive": True}]}, "no answer screens stress"),
        (
            {"answers": [{"question": {"code": "44261-6"}, "value": 3}]},
            "the screening's score, not an answer",
        ),
        (
            {
                "answers": [
                    {"question": {"system": "http://snomed.info/sct", "code": "1"}, "value": 1}
                ]
            },
            "a LOINC code",
        ),
        ({"answers": [{"question": {"code": "44250-9"}}]}, "exactly one of answer"),
    ],
)
def test_what_a_screening_cannot_say_is_refused(change: Json, message: str) -> None:
    data: Json = {
        "id": "s1",
        "updated_at": "2026-11-03T10:00:00Z",
        "patient": "p1",
        "instrument": "phq_9",
        "status": "completed",
        "authored": "2026-11-03",
        "answers": [{"question": {"code": "44250-9"}, "answer": {"code": "LA6568-5"}}],
    }
    with pytest.raises(ValidationError, match=message):
        m.Screening.model_validate(data | change)
