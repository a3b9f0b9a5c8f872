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
