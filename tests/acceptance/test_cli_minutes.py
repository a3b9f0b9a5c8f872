"""`fhir-bridge minutes`: the month's care-management minutes from the loaded fixtures."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

MONTH = ("month-heart-failure-discharge.json", "month-diabetes-depression.json")


def _loaded(cli: Run) -> None:
    for name in MONTH:
        done = cli("load", FIXTURES / name)
        assert done.returncode == 0, done.stderr


def _fixture_minutes(patient_id: str) -> float:
    """What the fixture's finished contacts add up to (the hospital stay does not count)."""
    for name in MONTH:
        package = json.loads((FIXTURES / name).read_text())
        if package["patient"]["id"] == patient_id:
            return sum(
                e["length_minutes"]
                for e in package["encounters"]
                if e["encounter_class"] != "inpatient"
                and e["period"]["start"].startswith("2026-11")
            )
    raise AssertionError(patient_id)


def test_minutes_per_patient_and_care_manager(cli: Run) -> None:
    _loaded(cli)
    done = cli("minutes", "--month", "2026-11", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    patients = {p["patient_id"]: p for p in report["patients"]}
    assert patients["pat-brooks"]["minutes"] == _fixture_minutes("pat-brooks") == 93
    assert patients["pat-brooks"]["reached"] == 60
    assert patients["pat-mendes"]["minutes"] == _fixture_minutes("pat-mendes") == 41
    assert (patients["pat-mendes"]["reached"], patients["pat-mendes"]["to_next"]) == (40, 19)
    managers = {c["care_manager_id"]: c for c in report["care_managers"]}
    assert (managers["cm-ana-lopez"]["contacts"], managers["cm-ana-lopez"]["patients"]) == (6, 2)
    assert managers["cm-marcus-hill"]["minutes"] == 20
    text = cli("minutes", "--month", "2026-11", "--care-manager", "cm-marcus-hill").stdout
    assert "pat-mendes: 20 min in 2 contact(s), reached 20, 20 to 40" in text
    assert "pat-brooks" not in text


def test_a_bad_month_is_usage(cli: Run) -> None:
    done = cli("minutes", "--month", "2026-13")
    assert done.returncode == 2
    assert "YYYY-MM" in done.stderr
    assert "Traceback" not in done.stderr
