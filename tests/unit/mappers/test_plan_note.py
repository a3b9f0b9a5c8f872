"""The plan-of-care note: a care plan as a US Core DocumentReference, for EHRs where CarePlan
or Goal are read-only."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.mappers import (
    Entry,
    MappingContext,
    check_resource,
    plan_note_entries,
    resources_of,
)
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = MappingContext(namespace="https://bridge.test/id", now=NOW)


def _entries(records: list[m.Record]) -> list[Entry]:
    return [e for r in records for e in resources_of(CTX, r)]


def _records() -> list[m.Record]:
    return read_records(FIXTURES / "cc-diabetes-heart-failure.json")


def _html(note: dict[str, Any]) -> str:
    return base64.b64decode(note["content"][0]["attachment"]["data"]).decode()


def test_one_note_per_plan_keyed_by_our_identifier_and_conformant() -> None:
    entries = _entries(_records())
    (note_entry,) = plan_note_entries(CTX, entries)
    note = note_entry.resource
    assert (note_entry.kind, note_entry.record_id) == ("careplan", "cp-rivera-ccm")
    assert note["identifier"] == [
        {"system": "https://bridge.test/id/careplan_note", "value": "cp-rivera-ccm"}
    ]
    assert note_entry.full_url == CTX.full_url("careplan_note", "cp-rivera-ccm")
    assert note["type"]["coding"][0]["code"] == "18776-5"
    assert note["category"][0]["coding"][0]["code"] == "clinical-note"
    assert note["content"][0]["attachment"]["contentType"] == "text/html"
    plan = next(e.resource for e in entries if e.resource["resourceType"] == "CarePlan")
    assert note["subject"] == plan["subject"]
    assert check_resource(note, "DocumentReference") == []


def test_the_note_carries_the_plan_its_goals_and_is_the_same_for_the_same_records() -> None:
    records = _records()
    entries = _entries(records)
    (first,) = plan_note_entries(CTX, entries)
    (again,) = plan_note_entries(CTX, _entries(_records()))
    assert first.resource == again.resource  # pure: same input, same note
    html = _html(first.resource)
    goals = [r for r in records if isinstance(r, m.Goal)]
    for goal in goals:
        assert goal.description.text is not None
        assert goal.description.text in html

    goal = goals[0]
    goal.achievement_status = m.GoalAchievement.improving
    (changed,) = plan_note_entries(CTX, _entries(records))
    assert changed.resource["identifier"] == first.resource["identifier"]
    assert _html(changed.resource) != html


def test_no_note_without_a_plan() -> None:
    records = [r for r in _records() if not isinstance(r, m.CarePlan)]
    assert plan_note_entries(CTX, _entries(records)) == []
