"""NDJSON read a line at a time: every line parsed once, errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_bridge.documents import is_ndjson, loaded_ndjson, ndjson_lines
from fhir_bridge.errors import InputError, MappingError
from tests.helpers import FIXTURES


def test_lines_are_numbered_as_in_the_file_and_blank_ones_skipped(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\r\n{"a": 3}')
    assert list(ndjson_lines(path)) == [(1, {"a": 1}), (4, {"a": 2}), (5, {"a": 3})]


def test_reading_is_lazy_so_a_later_bad_line_fails_only_when_reached(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text('{"a": 1}\n{"a": \n')
    lines = ndjson_lines(path)
    assert next(lines) == (1, {"a": 1})
    with pytest.raises(InputError) as failed:
        next(lines)
    assert (failed.value.source, failed.value.line) == (str(path), 2)
    assert "malformed JSON" in failed.value.reason


def test_bad_bytes_and_missing_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(InputError, match=r"x\.ndjson:2: not UTF-8"):
        list(ndjson_lines(path))
    with pytest.raises(InputError, match="no such file"):
        list(ndjson_lines(tmp_path / "missing.ndjson"))


def test_records_and_packages_per_line_with_problems_located(tmp_path: Path) -> None:
    package = json.loads((FIXTURES / "cc-diabetes-heart-failure.json").read_text())
    goal = dict(package["goals"][0], kind="goal")
    path = tmp_path / "panel.ndjson"
    path.write_text(json.dumps(package) + "\n" + json.dumps(goal) + "\n")
    loaded = list(loaded_ndjson(path))
    assert len(loaded[0].records) > 5
    assert [r.id for r in loaded[1].records] == [goal["id"]]

    del goal["description"]
    path.write_text(json.dumps(goal) + "\n[1, 2]\n")
    with pytest.raises(MappingError) as failed:
        list(loaded_ndjson(path))
    assert [p.path for p in failed.value.problems] == [f"{path}:1.description"]
    path.write_text("[1, 2]\n")
    with pytest.raises(InputError, match="one record or package per line"):
        list(loaded_ndjson(path))


def test_ndjson_is_told_by_the_file_name() -> None:
    assert is_ndjson(Path("a.ndjson"))
    assert is_ndjson(Path("a.JSONL"))
    assert not is_ndjson(Path("a.json"))
