"""Handoff packages: invariants of the document, the completeness check, the HTML summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_bridge import model as m
from fhir_bridge.handoff import (
    build_document,
    check,
    match_patient,
    read_package,
    rekey,
    render_html,
)
from fhir_bridge.mappers import MappingContext
from tests.helpers import FIXTURES, fixture_files

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
CTX = MappingContext("https://bridge.test/id", NOW)
CUSTODIAN = m.Party(kind=m.PartyKind.organization, id="custodian", name="Riverside Care Management")


def _package(path: Path) -> m.PatientPackage:
    return m.PatientPackage.model_validate(json.loads(path.read_text()))


def _document(package: m.PatientPackage, kind: str = "transfer") -> dict[str, Any]:
    author = package.care_plans[0].author or m.Party(name="Care manager")
    return build_document(package, kind, CTX, author=author, custodian=CUSTODIAN, now=NOW)  # type: ignore[arg-type]


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("kind", "loinc"), [("transfer", "18761-7"), ("referral", "57133-1"), ("summary", "34133-9")]
)
def test_document_bundle_invariants(path: Path, kind: str, loinc: str) -> None:
    """Identifier, timestamp, Composition first, unique fullUrls, every reference inside."""
    document = _document(_package(path), kind)
    Bundle.model_validate(document)
    assert document["type"] == "document"
    assert document["identifier"]["value"]
    assert document["timestamp"] == "2025-03-03T09:00:00Z"
    composition = document["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["type"]["coding"][0]["code"] == loinc
    full_urls = [e["fullUrl"] for e in document["entry"]]
    assert len(full_urls) == len(set(full_urls))
    assert all("request" not in e for e in document["entry"])
    references = set(_references(document["entry"]))
    contained = {
        "#" + str(c["id"]) for e in document["entry"] for c in e["resource"].get("contained", [])
    }
    # a "#id" reference names a resource contained in the same entry (adherence)
    assert references <= set(full_urls) | contained
    sections = {s["code"]["coding"][0]["code"] for s in composition["section"]}
    assert {
        "18776-5",
        "61146-7",
        "11450-4",
        "42349-1",
        "10160-0",
        "48765-2",
        "29762-2",
        "85847-2",
    } <= sections
    assert all(s["text"]["status"] == "generated" for s in composition["section"])


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_complete_fixtures_pass_the_check(path: Path) -> None:
    assert [f.code for f in check(_package(path)) if f.severity == "error"] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "no-problems-no-meds-no-followup.json",
            {
                "no-active-problems",
                "no-medication-list",
                "no-care-team-phone",
                "no-follow-up",
                "referral-without-performer",
                "goal-without-target",
            },
        ),
        (
            "sdoh-need-without-referral-no-identifier.json",
            {"no-patient-identifier", "no-follow-up", "sdoh-need-without-referral"},
        ),
    ],
)
def test_each_gap_of_the_incomplete_fixtures_is_found(name: str, expected: set[str]) -> None:
    findings = check(_package(FIXTURES / "incomplete" / name))
    assert {f.code for f in findings} == expected
    assert findings[0].severity == "error"  # errors first


def test_explicit_no_current_medications_counts_as_a_list() -> None:
    findings = check(
        _package(FIXTURES / "incomplete" / "sdoh-need-without-referral-no-identifier.json")
    )
    assert "no-medication-list" not in {f.code for f in findings}


def test_html_summary_shows_every_section_escaped() -> None:
    package = _package(FIXTURES / "older-adult-caregiver.json")
    package.patient.names[0].family = "Garcia <b>"
    page = render_html(package, "transfer", check(package))
    for title in (
        "Problems and health concerns",
        "Goals",
        "Plan of care",
        "Referrals",
        "Medications",
        "Care team",
        "Completeness check",
    ):
        assert f"<h2>{title}</h2>" in page
    assert "Garcia &lt;b&gt;" in page
    assert "555-0160" in page  # the caregiver's phone


def test_markup_in_record_text_is_shown_as_text_never_run() -> None:
    """Free text from records (a goal, a plan, a care-team member, a caregiver) is escaped."""
    package = _package(FIXTURES / "older-adult-caregiver.json")
    script = '<script>alert("x")</script>'
    package.goals[0].description = m.Concept(text=f"Walk daily {script}")
    package.care_plans[0].title = "Plan <img src=x onerror=alert(1)>"
    package.care_teams[0].members[0].party.name = "Dr. <i>Who</i> & Co"
    package.patient.caregivers[0].phone = "555 <b>"
    page = render_html(package, "transfer", check(package))
    assert "<script" not in page
    assert "<img" not in page
    assert "<i>" not in page
    assert "555 <b>" not in page
    assert "Walk daily &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "Plan &lt;img src=x onerror=alert(1)&gt;" in page
    assert "Dr. &lt;i&gt;Who&lt;/i&gt; &amp; Co" in page
    assert "555 &lt;b&gt;" in page


def _as_received(record: m.Record) -> m.Record:
    """What a document can carry: a reference to a resource outside it travels as its text."""
    if isinstance(record, m.Referral) and record.tracking is not None:
        outputs = [
            o.model_copy(update={"reference": None, "text": o.reference}) if o.reference else o
            for o in record.tracking.outputs
        ]
        return record.model_copy(
            update={"tracking": record.tracking.model_copy(update={"outputs": outputs})}
        )
    return record


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_received_document_gives_back_the_records(path: Path) -> None:
    """Handoff from one store, received into another: the same records, field by field."""
    package = _package(path)
    patient, records, skipped = read_package(_document(package), CTX)
    assert set(skipped) <= {"Organization", "Practitioner"}  # directory resources of parties
    assert patient == package.patient
    sent = {
        (r.kind, r.id): _covered(_as_received(r))
        for r in package.records()
        if not isinstance(r, m.Patient)
    }
    assert {(r.kind, r.id): _covered(r) for r in records} == sent


def _covered(record: m.Record) -> dict[str, Any]:
    """The fields the model covers (fhir_extras is what a receiver keeps beyond them)."""
    return record.model_dump(mode="json", exclude={"fhir_extras"})


def test_patient_matching_prefers_identifiers_and_flags_name_matches() -> None:
    package = _package(FIXTURES / "transitional-care-copd.json")
    incoming = package.patient
    same_mrn = incoming.model_copy(
        update={"id": "local-77", "names": [m.PersonName(family="Okafor-Ike")]}
    )
    assert match_patient(incoming, [same_mrn]) == (same_mrn, "identifier")
    same_person = incoming.model_copy(update={"id": "local-78", "identifiers": []})
    found, how = match_patient(incoming, [same_person])
    assert found == same_person
    assert "uncertain" in how
    assert match_patient(incoming, []) == (None, "new patient")
    (goal,) = rekey([package.goals[0]], "local-77")
    assert isinstance(goal, m.Goal)
    assert goal.patient.id == "local-77"


def test_transitional_care_timing_is_checked() -> None:
    """Contact later than 2 business days, or a visit later than 14 days, is a warning."""
    package = _package(FIXTURES / "transitional-care-copd.json")
    assert not {f.code for f in check(package)} & {"contact-late", "visit-late"}
    plan = package.care_plans[0]
    for activity in plan.activities:
        if activity.planned and activity.planned.scheduled_period:
            activity.planned.scheduled_period = m.Period(start="2025-03-31")
    assert {"contact-late", "visit-late"} <= {f.code for f in check(package)}


def test_encounters_have_their_section_in_the_document_and_the_page() -> None:
    package = _package(FIXTURES / "month-heart-failure-discharge.json")
    document = _document(package)
    composition = document["entry"][0]["resource"]
    (section,) = [s for s in composition["section"] if s["code"]["coding"][0]["code"] == "46240-8"]
    assert len(section["entry"]) == len(package.encounters)
    page = render_html(package, "transfer", check(package))
    assert "Hospital admission" in page
    assert ">45<" in page  # the home visit's minutes
    assert "Skips the evening dose when dizzy" in page
