"""`load`, `get`, `dead-letters`, `retry` and `push` argument handling, as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fhir_bridge.store import Store
from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

PACKAGE = FIXTURES / "cc-diabetes-heart-failure.json"


def test_load_stores_and_a_second_load_changes_nothing(cli: Run) -> None:
    first = cli("load", PACKAGE)
    assert first.returncode == 0, first.stderr
    package = json.loads(PACKAGE.read_text())
    total = 1 + sum(len(v) for v in package.values() if isinstance(v, list))
    assert f"loaded {total} records: {total} new or changed, 0 unchanged" in first.stdout
    second = cli("load", PACKAGE)
    assert f"loaded {total} records: 0 new or changed, {total} unchanged" in second.stdout


def test_get_prints_the_stored_record(cli: Run) -> None:
    cli("load", PACKAGE)
    done = cli("get", "goal", "goal-rivera-a1c")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    expected = next(
        g for g in json.loads(PACKAGE.read_text())["goals"] if g["id"] == "goal-rivera-a1c"
    )
    assert record["description"]["text"] == expected["description"]["text"]
    assert record["targets"][0]["due_date"] == expected["targets"][0]["due_date"]


def test_get_unknown_kind_is_usage_and_unknown_id_is_failure(cli: Run) -> None:
    cli("load", PACKAGE)
    assert cli("get", "gaol", "x").returncode == 2
    missing = cli("get", "goal", "no-such-goal")
    assert missing.returncode == 1
    assert "no goal 'no-such-goal'" in missing.stderr


def test_delete_deletes_once_and_says_where_its_deletion_goes(cli: Run) -> None:
    cli("load", PACKAGE)
    done = cli("delete", "goal", "goal-rivera-a1c")
    assert done.returncode == 0, done.stderr
    assert "deleted goal 'goal-rivera-a1c'" in done.stdout
    again = cli("delete", "goal", "goal-rivera-a1c")
    assert again.returncode == 1
    assert "was deleted already" in again.stderr
    gone = cli("get", "goal", "goal-rivera-a1c")
    assert gone.returncode == 1
    assert "was deleted" in gone.stderr
    assert cli("delete", "gaol", "x").returncode == 2
    missing = cli("delete", "goal", "no-such-goal")
    assert missing.returncode == 1
    assert "no goal 'no-such-goal'" in missing.stderr


def test_a_patient_with_records_is_deleted_only_with_them(cli: Run) -> None:
    cli("load", PACKAGE)
    refused = cli("delete", "patient", "pat-rivera")
    assert refused.returncode == 1
    assert "still has" in refused.stderr
    assert "--with-records" in refused.stderr
    assert cli("get", "goal", "goal-rivera-a1c").returncode == 0  # nothing deleted
    assert cli("get", "patient", "pat-rivera").returncode == 0
    done = cli("delete", "patient", "pat-rivera", "--with-records")
    assert done.returncode == 0, done.stderr
    assert re.search(r"deleted patient 'pat-rivera' and \d+ of its records", done.stdout)
    assert "was deleted" in cli("get", "goal", "goal-rivera-a1c").stderr


def test_dead_letters_start_empty_and_retry_needs_ids(cli: Run) -> None:
    listed = cli("dead-letters")
    assert listed.returncode == 0, listed.stderr
    assert "0 dead letters" in listed.stdout
    assert cli("retry").returncode == 2
    assert "requeued 0" in cli("retry", "--all").stdout


def test_push_needs_a_connection(cli: Run) -> None:
    done = cli("push")
    assert done.returncode == 2
    assert "--connection" in done.stderr
    assert "Traceback" not in done.stderr
    bad_url = cli("push", "--fhir-url", "ftp://nowhere")
    assert bad_url.returncode == 2


def test_a_broken_config_file_is_reported(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "fhir-bridge.toml").write_text("[connections.x]\nbase_url = 5\n")
    done = cli("push", "--connection", "x")
    assert done.returncode == 2
    assert "fhir-bridge.toml" in done.stderr
    assert "connections.x.base_url" in done.stderr


def test_apikey_create_prints_a_key_once(cli: Run, tmp_path: Path) -> None:
    done = cli("apikey", "create", "--name", "platform", "--scope", "write", "--scope", "read")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("fbk_")
    store = Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")
    try:
        assert store.api_keys.scopes(key) == ["write", "read"]
    finally:
        store.close()
    assert cli("apikey", "create", "--scope", "superuser").returncode == 2
