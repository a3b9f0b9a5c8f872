"""`fhir-bridge status` and `maintenance` on the default SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Run


def test_status_of_a_store_with_no_workers(cli: Run) -> None:
    done = cli("status")
    assert done.returncode == 0, done.stderr
    assert "workers alive: 0" in done.stdout
    report = json.loads(cli("status", "--json").stdout)
    assert report == {
        "alive": [],
        "queue": {},
        "enrolled": {},
        "throttled": {},
        "orphaned_claims": 0,
        "patients": {},
    }


def test_held_patients_and_match_decisions_with_none_yet(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "fhir-bridge.toml").write_text(
        '[connections.county]\nbase_url = "https://ehr.example.org/fhir"\n'
    )
    held = cli("held")
    assert held.returncode == 0, held.stderr
    assert held.stdout.strip() == "held: 0"
    assert json.loads(cli("held", "--json").stdout) == []
    status = json.loads(cli("status", "--json").stdout)
    # not on this machine: match mode unless configured otherwise
    assert status["patients"] == {"county": {"mode": "match", "matched": 0, "held": 0}}
    unknown = cli("match", "pat-1", "--connection", "county")
    assert unknown.returncode == 2
    assert "no match decision for 'pat-1' on county" in unknown.stderr
    both = cli("match", "pat-1", "--connection", "county", "--accept", "x", "--retry")
    assert both.returncode == 2
    assert "give one of them" in both.stderr
    absent = cli("match", "pat-1", "--connection", "county", "--accept", "x")
    assert absent.returncode == 2
    assert "no patient 'pat-1' in the store" in absent.stderr


def test_maintenance_frees_nothing_when_nothing_is_stuck(cli: Run) -> None:
    done = cli("maintenance")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "freed 0 claims"


def test_worker_options_are_checked(cli: Run) -> None:
    done = cli("worker", "--claim-batch", "0")
    assert done.returncode == 2
    assert "--claim-batch" in done.stderr
