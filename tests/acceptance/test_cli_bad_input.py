"""Bad input ends with exit 2 and a message naming file, record and field; never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.conftest import Run

GOAL = {
    "kind": "goal",
    "id": "g1",
    "updated_at": "2025-03-01T10:00:00Z",
    "patient": "p1",
    "description": {"text": "Walk 20 minutes a day"},
    "lifecycle_status": "active",
}
FHIR_GOAL = {
    "resourceType": "Goal",
    "id": "g1",
    "lifecycleStatus": "active",
    "description": {"text": "Walk"},
    "subject": {"reference": "Patient/p1"},
}


def _write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _assert_refused(done: object, *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in done.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in done.stderr, done.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["map", "import"])
def test_malformed_json_names_file_and_line(cli: Run, tmp_path: Path, command: str) -> None:
    path = _write(tmp_path, "broken.json", '{\n  "kind": "goal",\n  "id": "g1"\n  "x": 1\n}\n')
    _assert_refused(cli(command, path), "broken.json:4", "malformed JSON")


def test_malformed_ndjson_line_is_named(cli: Run, tmp_path: Path) -> None:
    good = json.dumps(FHIR_GOAL)
    path = _write(tmp_path, "goals.ndjson", f"{good}\n{good}\n{good[:-5]}\n")
    _assert_refused(cli("import", path), "goals.ndjson:3")


def test_unknown_resource_type(cli: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", {"resourceType": "CarePlane", "status": "active"})
    _assert_refused(cli("import", path), "x.json", "unknown resourceType 'CarePlane'")


def test_missing_patient_internal(cli: Run, tmp_path: Path) -> None:
    goal = {k: v for k, v in GOAL.items() if k != "patient"}
    path = _write(tmp_path, "goal.json", goal)
    _assert_refused(cli("map", path), "goal.json.patient", "Field required")


def test_missing_patient_fhir(cli: Run, tmp_path: Path) -> None:
    goal = {k: v for k, v in FHIR_GOAL.items() if k != "subject"}
    path = _write(tmp_path, "goal.json", goal)
    _assert_refused(cli("import", path), "goal.json Goal[g1].subject", "required")


def test_invalid_date_internal(cli: Run, tmp_path: Path) -> None:
    goal = GOAL | {"targets": [{"due_date": "2025-02-30"}]}
    path = _write(tmp_path, "goal.json", [GOAL | {"id": "ok"}, goal])
    _assert_refused(cli("map", path), "goal.json[1].targets[0].due_date", "not a calendar date")


def test_invalid_date_fhir(cli: Run, tmp_path: Path) -> None:
    goal = FHIR_GOAL | {"startDate": "2025-13-01"}
    path = _write(tmp_path, "goal.json", goal)
    _assert_refused(
        cli("import", path), "Goal[g1].start_date", "'2025-13-01' is not a calendar date"
    )


def test_unknown_status_internal(cli: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "goal.json", GOAL | {"lifecycle_status": "finished"})
    _assert_refused(cli("map", path), "goal.json.lifecycle_status", "'finished'")


def test_unknown_status_fhir(cli: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "goal.json", FHIR_GOAL | {"lifecycleStatus": "finished"})
    _assert_refused(cli("import", path), "Goal[g1].lifecycleStatus", "unknown Goal lifecycleStatus")


def test_every_problem_is_listed_not_just_the_first(cli: Run, tmp_path: Path) -> None:
    goal = GOAL | {"lifecycle_status": "finished", "start_date": "yesterday"}
    done = cli("map", _write(tmp_path, "goal.json", goal))
    _assert_refused(done, "lifecycle_status", "start_date", "2 problems")


def test_record_without_kind(cli: Run, tmp_path: Path) -> None:
    goal = {k: v for k, v in GOAL.items() if k != "kind"}
    _assert_refused(cli("map", _write(tmp_path, "goal.json", goal)), "goal.json.kind", "required")


def test_package_reference_to_missing_record(cli: Run, tmp_path: Path) -> None:
    package = {
        "kind": "package",
        "patient": {
            "id": "p1",
            "updated_at": "2025-03-01T10:00:00Z",
            "names": [{"family": "Doe"}],
            "sex": "female",
        },
        "goals": [GOAL | {"addresses": ["no-such-problem"]}],
    }
    _assert_refused(
        cli("map", _write(tmp_path, "pkg.json", package)),
        "pkg.json.goals[0].addresses[0]",
        "no problem 'no-such-problem'",
    )


def test_missing_file(cli: Run) -> None:
    _assert_refused(cli("import", "nowhere.json"), "nowhere.json", "no such file")


def test_usage_error_is_exit_2(cli: Run) -> None:
    done = cli("map")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
