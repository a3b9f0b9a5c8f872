"""`fhir-bridge status` and `maintenance` on the default SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fhir_bridge.documents import read_records
from fhir_bridge.store import Store
from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


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
        "limits": {},
        "patients": {},
    }


def test_capabilities_lists_what_servers_refused_and_forgets_on_request(
    cli: Run, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")
    try:
        store.put_records(read_records(FIXTURES / "cc-diabetes-heart-failure.json"), ["ehr"], NOW)
        goals = [e for e in store.outbox.due("ehr", NOW) if e.kind == "goal"]
        for entry in goals:
            store.outbox.mark_blocked(entry, "Goal", "Goal writes refused", NOW)
        store.refusals.remember(
            "ehr", "Goal:write", source="run-time", statement="s", now=NOW, status=405
        )
        store.refusals.remember(
            "ehr", "transaction", source="run-time", statement="s", now=NOW, status=501
        )
    finally:
        store.close()

    listed = cli("capabilities")
    assert listed.returncode == 0, listed.stderr
    assert (
        f"ehr: Goal not sent ({len(goals)} waiting): Goal writes refused by the server with "
        "HTTP 405 on 2025-03-01" in listed.stdout
    )
    assert "ehr: transaction Bundles refused by the server with HTTP 501" in listed.stdout
    status = cli("status")
    assert f"not sent to ehr: Goal ({len(goals)} waiting)" in status.stdout
    report = json.loads(cli("capabilities", "--json").stdout)
    assert [x["type"] for x in report["ehr"]["not_sent"]] == ["Goal"]

    refused = cli("capabilities", "--forget")
    assert refused.returncode == 2
    assert "--forget needs a CONNECTION" in refused.stderr
    forgot = cli("capabilities", "ehr", "--forget")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip() == f"forgot 2 refusals of ehr; {len(goals)} records due again"
    assert cli("capabilities").stdout.strip() == "nothing refused"


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
