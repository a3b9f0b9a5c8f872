"""What fhir.resources does not check: required bindings, US Core elements, narrative, gol-1."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fhir_bridge import model as m
from fhir_bridge.mappers import check_resource

GOAL = {
    "resourceType": "Goal",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "lifecycleStatus": "active",
    "description": {"text": "Walk"},
    "subject": {"reference": "Patient/1"},
}


def _reasons(resource: dict[str, object]) -> list[str]:
    return [f"{p.path}: {p.reason}" for p in check_resource(resource, "Goal")]


def test_a_valid_goal_passes() -> None:
    assert _reasons(GOAL) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"lifecycleStatus": "done"},
            "Goal.lifecycleStatus: 'done' is not in the required value set",
        ),
        ({"subject": None}, "Goal.subject"),
        ({"text": None}, "Goal.text: a narrative (generated XHTML div) is required"),
        (
            {"target": [{"detailString": "less"}]},
            "Goal.target[0].measure: required when the target",
        ),
    ],
)
def test_each_gap_is_named(change: dict[str, object], expected: str) -> None:
    resource = {k: v for k, v in (GOAL | change).items() if v is not None}
    assert any(reason.startswith(expected) for reason in _reasons(resource)), _reasons(resource)


def test_the_model_refuses_a_target_value_without_measure() -> None:
    with pytest.raises(ValidationError, match="gol-1"):
        m.GoalTarget(text="less salt")
