"""Push planning: actions, kept clinician additions, dependency order, bundles."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext, to_entries
from fhir_bridge.store import Link
from fhir_bridge.sync._plan import (
    LEVELS,
    bundle_of,
    bundles,
    identifier_of,
    keep_server_additions,
    plan,
    point_references,
)

CTX = MappingContext(namespace="https://bridge.test/id", now=datetime(2025, 3, 1, tzinfo=UTC))
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def records() -> list[m.Record]:
    patient = m.Patient(
        id="p1", updated_at=NOW, names=[m.PersonName(family="Doe")], sex=m.Sex.female
    )
    problem = m.Problem(id="c1", updated_at=NOW, patient="p1", code=m.Concept(text="Diabetes"))
    goal = m.Goal(
        id="g1",
        updated_at=NOW,
        patient="p1",
        description=m.Concept(text="A1c < 7"),
        lifecycle_status=m.GoalLifecycle.active,
        addresses=[m.Ref(id="c1")],
    )
    plan_ = m.CarePlan(
        id="cp1",
        updated_at=NOW,
        patient="p1",
        status=m.CarePlanStatus.active,
        goals=[m.Ref(id="g1")],
        addresses=[m.Ref(id="c1")],
    )
    return [plan_, goal, problem, patient]


def test_new_resources_are_created_in_dependency_order() -> None:
    """Patients and problems come before goals, goals before care plans."""
    writes = plan(to_entries(records(), CTX), {})
    assert {w.action for w in writes} == {"create"}
    levels = [LEVELS[w.resource_type] for w in writes]
    assert levels == sorted(levels)
    assert [w.resource_type for w in writes][-1] == "CarePlan"


def test_what_was_sent_before_is_unchanged() -> None:
    """Same rendering as last time: no write."""
    first = plan(to_entries(records(), CTX), {})
    links = {
        (w.resource_type, w.identifier): Link(
            "c",
            w.resource_type,
            w.identifier,
            None,
            None,
            "1",
            "1",
            None,
            w.sent_hash,
            w.body,
            None,
        )
        for w in first
    }
    again = plan(to_entries(records(), CTX), links)
    assert {w.action for w in again} == {"unchanged"}


def test_a_changed_record_is_an_update_with_field_changes() -> None:
    """The dry-run diff names the fields that changed."""
    entries = to_entries(records(), CTX)
    goal = next(e for e in entries if e.resource["resourceType"] == "Goal")
    sent = {**goal.resource, "lifecycleStatus": "proposed"}
    link = Link(
        "c", "Goal", identifier_of(goal.resource), "goal", "g1", "42", "3", None, "old", sent, None
    )
    (write,) = [
        w for w in plan([goal], {("Goal", link.identifier): link}) if w.resource_type == "Goal"
    ]
    assert write.action == "update"
    assert "~ lifecycleStatus" in write.changes


def test_clinician_additions_on_the_server_survive_our_update() -> None:
    """An extension and a note added on the server are kept; our own fields win."""
    ours = {"resourceType": "Goal", "lifecycleStatus": "active", "note": [{"text": "ours"}]}
    sent = {"resourceType": "Goal", "lifecycleStatus": "proposed", "note": [{"text": "ours"}]}
    server = {
        "resourceType": "Goal",
        "id": "42",
        "lifecycleStatus": "proposed",
        "note": [{"text": "ours"}, {"text": "clinician note"}],
        "extension": [{"url": "http://example.org/x", "valueString": "y"}],
    }
    body = keep_server_additions(ours, sent, server)
    assert body["lifecycleStatus"] == "active"
    assert body["note"] == [{"text": "ours"}, {"text": "clinician note"}]
    assert body["extension"] == server["extension"]
    assert "id" not in body


def test_an_element_we_removed_is_not_brought_back() -> None:
    """What we sent before and now leave out stays out."""
    body = keep_server_additions({"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2})
    assert body == {"a": 1}


def test_references_outside_the_bundle_point_at_server_ids() -> None:
    """urn:uuid references resolve inside the bundle, else to Type/id, else stay logical."""
    body = {
        "subject": {"reference": "urn:uuid:p", "identifier": {"value": "p1"}},
        "goal": [{"reference": "urn:uuid:g"}, {"reference": "urn:uuid:x", "display": "X"}],
        "addresses": [{"reference": "Condition/9"}],
    }
    before = copy.deepcopy(body)
    out = point_references(body, inside={"urn:uuid:g"}, known={"urn:uuid:p": "Patient/7"})
    assert out["subject"] == {"reference": "Patient/7", "identifier": {"value": "p1"}}
    assert out["goal"][0]["reference"] == "urn:uuid:g"
    assert out["goal"][1] == {"display": "X"}
    assert out["addresses"][0]["reference"] == "Condition/9"
    assert body == before  # the body is never changed: what changes is new
    assert out["addresses"] is body["addresses"]  # and what does not is shared
    assert out["goal"][0] is body["goal"][0]
    untouched = {"code": {"text": "A1c"}, "subject": {"reference": "urn:uuid:g"}}
    assert point_references(untouched, {"urn:uuid:g"}, {}) is untouched


def test_bundles_are_bounded_and_batches_hold_one_level() -> None:
    """Transactions mix levels up to the size; batches never mix levels."""
    writes = plan(to_entries(records(), CTX), {})
    transaction_groups = bundles(writes, size=2)
    assert all(len(g) <= 2 for g in transaction_groups)
    assert sum(len(g) for g in transaction_groups) == len(writes)
    for group in bundles(writes, size=50, kind="batch"):
        assert len({LEVELS[w.resource_type] for w in group}) == 1


def test_new_resources_are_conditional_updates_known_ones_versioned_updates() -> None:
    """Re-sending a bundle cannot create a duplicate; a known version guards concurrent edits."""
    writes = plan(to_entries(records(), CTX), {})
    bundle = bundle_of(writes, "transaction", {})
    for entry, write in zip(bundle["entry"], writes, strict=True):
        assert entry["request"]["method"] == "PUT"
        assert entry["request"]["url"] == f"{write.resource_type}?identifier={write.identifier}"
        assert "ifMatch" not in entry["request"]
    goal = next(w for w in writes if w.resource_type == "Goal")
    link = Link("c", "Goal", goal.identifier, "goal", "g1", "42", "5", None, "x", {}, None)
    (update,) = plan([goal.entry], {("Goal", goal.identifier): link})
    entry = bundle_of([update], "transaction", {})["entry"][0]
    assert entry["request"] == {"method": "PUT", "url": "Goal/42", "ifMatch": 'W/"5"'}
    assert entry["resource"]["id"] == "42"
