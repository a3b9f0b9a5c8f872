"""The readers of internal JSON and FHIR refuse what is not text, not JSON numbers, or nested
past MAX_JSON_DEPTH, naming the file and the field, without recursing into it."""

from __future__ import annotations

import json

import pytest

from fhir_bridge.documents import MAX_JSON_DEPTH, check_json, fhir_from_text, parse_json
from fhir_bridge.errors import InputError, MappingError


def test_nesting_up_to_the_limit_is_read_and_past_it_refused() -> None:
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "f.json") is not None
    deeper = MAX_JSON_DEPTH + 1
    with pytest.raises(MappingError, match="nested deeper than 64 levels"):
        parse_json("[" * deeper + "]" * deeper, "f.json")


def test_nesting_past_the_interpreter_recursion_limit_is_an_input_error() -> None:
    with pytest.raises((InputError, MappingError), match="nested deeper than 64 levels"):
        parse_json("[" * 200_000 + "]" * 200_000, "f.json")


def test_a_deep_first_ndjson_line_is_refused_not_a_recursion_error() -> None:
    line = '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises((InputError, MappingError)):
        fhir_from_text(f"{line}\n{line}\n", "deep.ndjson")


def test_lone_surrogates_in_values_and_names_are_named_by_field() -> None:
    text = json.dumps([{"a": "ok"}, {"b": {"c": ["x", "\udc80"]}, "\ud800": 1}])
    with pytest.raises(MappingError) as refused:
        parse_json(text, "f.json")
    assert [(p.path, p.reason) for p in refused.value.problems] == [
        ("f.json[1]", "a field name holds a lone surrogate"),
        ("f.json[1].b.c[1]", "holds a lone surrogate (not Unicode text)"),
    ]


def test_paired_surrogates_are_ordinary_text() -> None:
    assert parse_json(json.dumps({"t": "\U0001f600 é"}), "f.json") == {"t": "\U0001f600 é"}
    check_json({"t": "plain"}, "f.json")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"x": NaN}', "NaN is not a JSON number"),
        (b'{"x": -Infinity}', "-Infinity is not a JSON number"),
        ('{"x": "Müller"}'.encode("latin-1"), "not UTF-8 text (byte 8)"),
    ],
)
def test_bytes_that_are_not_json_text_are_input_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_json(raw, "body")
    assert str(refused.value) == f"body: {reason}"
