"""Every internal status has exactly one FHIR code and back; unknown codes are errors."""

from __future__ import annotations

from enum import StrEnum

import pytest

from fhir_bridge.errors import MappingError
from fhir_bridge.mappers import VOCABULARIES, Vocabulary

CASES = [(vocab, member) for vocab in VOCABULARIES for member in vocab.enum]


@pytest.mark.parametrize(("vocab", "member"), CASES, ids=[f"{v.name}:{m.value}" for v, m in CASES])
def test_status_maps_both_ways(vocab: Vocabulary[StrEnum], member: StrEnum) -> None:
    code = vocab.to_fhir(member)
    assert vocab.from_fhir(code, "x") is member


@pytest.mark.parametrize("vocab", VOCABULARIES, ids=[v.name for v in VOCABULARIES])
def test_every_member_has_a_distinct_code(vocab: Vocabulary[StrEnum]) -> None:
    codes = [vocab.to_fhir(member) for member in vocab.enum]
    assert len(set(codes)) == len(list(vocab.enum))


@pytest.mark.parametrize("vocab", VOCABULARIES, ids=[v.name for v in VOCABULARIES])
def test_unknown_code_is_an_error_naming_the_field(vocab: Vocabulary[StrEnum]) -> None:
    with pytest.raises(MappingError) as info:
        vocab.from_fhir("no-such-code", "Goal.lifecycleStatus")
    assert info.value.problems[0].path == "Goal.lifecycleStatus"
    assert "no-such-code" in info.value.problems[0].reason


@pytest.mark.parametrize(
    ("name", "internal", "fhir"),
    [
        ("CarePlan status", "cancelled", "revoked"),
        ("CarePlan status", "on_hold", "on-hold"),
        ("ServiceRequest status", "cancelled", "revoked"),
        ("Goal lifecycleStatus", "entered_in_error", "entered-in-error"),
        ("Goal achievementStatus", "not_attainable", "not-attainable"),
        ("Goal priority", "high", "high-priority"),
        ("Task status", "in_progress", "in-progress"),
        ("Task status", "rejected", "rejected"),
        ("ServiceRequest intent", "original_order", "original-order"),
        ("Condition clinicalStatus", "remission", "remission"),
        ("medication status", "not_taken", "not-taken"),
    ],
)
def test_known_pairs(name: str, internal: str, fhir: str) -> None:
    vocab = next(v for v in VOCABULARIES if v.name == name)
    assert vocab.to_fhir(vocab.enum(internal)) == fhir
    assert vocab.from_fhir(fhir, "x").value == internal


def test_task_statuses_cover_the_fhir_value_set() -> None:
    vocab = next(v for v in VOCABULARIES if v.name == "Task status")
    fhir_task_status = {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
    assert set(vocab.codes) == fhir_task_status
