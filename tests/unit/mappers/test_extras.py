"""Elements the model has no field for survive import and export, and never override the record."""

from __future__ import annotations

import copy

from fhir_bridge.mappers._extras import apply_residual, residual_of


def test_missing_keys_are_kept_and_restored() -> None:
    received = {"a": 1, "b": {"c": 2, "d": [1, 2]}, "ext": [{"url": "u", "valueString": "v"}]}
    rendered = {"a": 1, "b": {"c": 2}}
    residual = residual_of(received, rendered)
    assert apply_residual(copy.deepcopy(rendered), residual) == received


def test_rendered_values_win_over_kept_ones() -> None:
    residual = residual_of({"status": "active", "note": [{"text": "x"}]}, {"status": "active"})
    out = apply_residual({"status": "completed"}, residual)
    assert out == {"status": "completed", "note": [{"text": "x"}]}


def test_array_items_get_their_own_missing_keys_by_position() -> None:
    received = {"coding": [{"code": "1", "version": "v1"}, {"code": "2"}]}
    rendered = {"coding": [{"code": "1"}, {"code": "2"}]}
    out = apply_residual(copy.deepcopy(rendered), residual_of(received, rendered))
    assert out == received


def test_choice_element_is_not_doubled() -> None:
    residual = residual_of({"occurrencePeriod": {"start": "2020"}}, {})
    out = apply_residual({"occurrenceDateTime": "2021-01-01"}, residual)
    assert out == {"occurrenceDateTime": "2021-01-01"}


def test_id_and_version_are_never_kept() -> None:
    received = {"id": "x", "meta": {"versionId": "3", "lastUpdated": "t", "tag": [{"code": "a"}]}}
    assert residual_of(received, {}) == {"add": {"meta": {"tag": [{"code": "a"}]}}}


def test_removed_element_does_not_come_back_as_fragment() -> None:
    received = {"period": {"start": "2020", "extension": [{"url": "u"}]}}
    residual = residual_of(received, {"period": {"start": "2020"}})
    assert apply_residual({}, residual) == {}


def test_a_hospitals_identifier_is_kept_beside_ours_not_merged_into_it() -> None:
    hospital = {"use": "official", "system": "urn:oid:2.16.840.1.113883.19.5", "value": "G-77"}
    ours = {"system": "https://bridge.test/id/goal", "value": "g1"}
    residual = residual_of({"identifier": [hospital]}, {"identifier": [ours]})
    out = apply_residual({"identifier": [dict(ours)]}, residual)
    assert out["identifier"] == [hospital, ours]  # ours stays last


def test_a_changed_code_is_not_contradicted_by_the_kept_one() -> None:
    received = {"clinicalStatus": {"coding": [{"system": "s", "code": "active", "version": "1"}]}}
    rendered = copy.deepcopy(received)
    del rendered["clinicalStatus"]["coding"][0]["version"]
    residual = residual_of(received, rendered)
    edited = {"clinicalStatus": {"coding": [{"system": "s", "code": "resolved"}]}}
    out = apply_residual(edited, residual)
    assert [c["code"] for c in out["clinicalStatus"]["coding"]] == ["resolved"]


def test_a_narrative_the_source_wrote_replaces_ours_a_generated_one_does_not() -> None:
    theirs = {"status": "additional", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
    ours = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">y</div>'}
    kept = residual_of({"text": theirs}, {"text": ours})
    assert apply_residual({"text": dict(ours)}, kept) == {"text": theirs}
    generated = residual_of({"text": {**theirs, "status": "generated"}}, {"text": ours})
    assert apply_residual({"text": dict(ours)}, generated) == {"text": ours}
