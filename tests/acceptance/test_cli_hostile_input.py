"""Input built to break the readers (binary, non-UTF-8, nested 900 deep, lone surrogates,
duplicate ids, references to nothing) ends with exit 2 and one clear message naming the file,
the record and the field: never a traceback, never a half-done load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.conftest import Run

PATIENT = {
    "kind": "patient",
    "id": "p1",
    "updated_at": "2025-03-01T10:00:00Z",
    "names": [{"family": "Ng", "given": ["Ann"]}],
    "birth_date": "1950-01-01",
}
GOAL = {
    "kind": "goal",
    "id": "g1",
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "p1",
    "description": {"text": "Walk 20 minutes a day"},
    "lifecycle_status": "active",
}


def _refused(done: object, *needles: str) -> str:
    stderr: str = done.stderr  # type: ignore[attr-defined]
    assert done.returncode == 2, (done.stdout, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert "RecursionError" not in stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


def _nothing_stored(cli: Run) -> None:
    assert cli("get", "patient", "p1").returncode == 1


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("binary.json", b"\x00\xff\xfe\x89PNG\r\n", "not UTF-8 text"),
        ("latin1.json", '{"kind": "goal", "id": "Müller"}'.encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_receive_names_an_unreadable_file(
    cli: Run, tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    (tmp_path / name).write_bytes(content)
    stderr = _refused(cli("receive", tmp_path / name), name, needle)
    assert stderr.count("\n") == 1  # one line


def test_receive_names_a_directory_and_a_missing_file(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    _refused(cli("receive", tmp_path / "folder"), "folder", "a directory")
    _refused(cli("receive", tmp_path / "missing.json"), "missing.json", "no such file")


@pytest.mark.parametrize("command", ["load", "map", "import", "receive"])
def test_nesting_900_deep_is_refused_not_recursed(cli: Run, tmp_path: Path, command: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 900 + "]" * 900)
    _refused(cli(command, path), "deep.json", "nested deeper than 64 levels")


def test_deep_fhir_extras_are_refused_naming_the_field(cli: Run, tmp_path: Path) -> None:
    nested: object = {"url": "x"}
    for _ in range(100):
        nested = {"extension": [nested]}
    path = tmp_path / "goal.json"
    path.write_text(json.dumps([PATIENT, GOAL | {"fhir_extras": nested}]))
    _refused(cli("load", path), "goal.json[1].fhir_extras", "nested deeper than 64")
    _nothing_stored(cli)


def test_nan_is_not_a_number_we_take(cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "goal.json"
    path.write_text(json.dumps(GOAL).replace('"lifecycle_status"', '"x": NaN, "lifecycle_status"'))
    _refused(cli("load", path), "goal.json", "NaN is not a JSON number")


@pytest.mark.parametrize("command", ["load", "import"])
def test_a_lone_surrogate_is_refused_naming_file_record_and_field(
    cli: Run, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "records.json"
    if command == "load":
        goal = GOAL | {"description": {"text": "Walk \ud800 daily"}}
        path.write_text(json.dumps([PATIENT, goal]))  # ensure_ascii: "\\ud800" in the file
        _refused(cli(command, path), "records.json[1].description.text", "lone surrogate")
        _nothing_stored(cli)
    else:
        goal = {"resourceType": "Goal", "description": {"text": "\ud800"}}
        path.write_text(json.dumps(goal))
        _refused(cli(command, path), "records.json.description.text", "lone surrogate")


def test_load_refuses_a_record_id_given_twice_naming_both_places(cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "twice.json"
    later = GOAL | {"lifecycle_status": "cancelled"}
    path.write_text(json.dumps([PATIENT, GOAL, later]))
    _refused(cli("load", path), "twice.json[2]", "goal 'g1' again (as ", "twice.json[1])")
    _nothing_stored(cli)


def test_load_refuses_a_reference_to_a_record_nowhere(cli: Run, tmp_path: Path) -> None:
    orphan = tmp_path / "orphan.json"
    orphan.write_text(json.dumps(GOAL | {"addresses": ["prob-none"]}))
    _refused(
        cli("load", orphan),
        "orphan.json.patient: no patient 'p1' in the file or the store",
        "orphan.json.addresses[0]: no problem 'prob-none' in the file or the store",
    )
    _nothing_stored(cli)


def test_load_takes_a_reference_to_a_record_already_stored(cli: Run, tmp_path: Path) -> None:
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(PATIENT))
    goal = tmp_path / "goal.json"
    goal.write_text(json.dumps(GOAL))
    assert cli("load", patient).returncode == 0
    done = cli("load", goal)
    assert done.returncode == 0, done.stderr
    assert "loaded 1 records" in done.stdout
