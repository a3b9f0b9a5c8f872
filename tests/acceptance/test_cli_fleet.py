"""`fhir-bridge status` and `maintenance` on the default SQLite store."""

from __future__ import annotations

import json

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
    }


def test_maintenance_frees_nothing_when_nothing_is_stuck(cli: Run) -> None:
    done = cli("maintenance")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "freed 0 claims"


def test_worker_options_are_checked(cli: Run) -> None:
    done = cli("worker", "--claim-batch", "0")
    assert done.returncode == 2
    assert "--claim-batch" in done.stderr
