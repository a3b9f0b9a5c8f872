"""`apikey list|revoke|rotate`, expiry, and `audit`: as an operator runs them."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhir_bridge.store import Store
from tests.acceptance.conftest import Run
from tests.helpers import FIXTURES

PACKAGE = FIXTURES / "cc-diabetes-heart-failure.json"


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")


def test_keys_are_listed_without_secrets_revoked_and_rotated(cli: Run, tmp_path: Path) -> None:
    ops = cli("apikey", "create", "--name", "ops", "--scope", "write").stdout.strip()
    viewer = cli("apikey", "create", "--name", "viewer", "--expires-in", "30d").stdout.strip()
    listed = cli("apikey", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert ops not in listed.stdout
    assert viewer not in listed.stdout
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["scopes"], r["state"]) for r in rows] == [
        ("ops", ["write"], "active"),
        ("viewer", ["read"], "active"),
    ]
    assert rows[0]["expires_at"] is None
    expiry = datetime.fromisoformat(rows[1]["expires_at"])
    assert timedelta(days=29) < expiry - datetime.now(UTC) <= timedelta(days=30)

    rotated = cli("apikey", "rotate", "--name", "ops", "--expires-in", "12h")
    assert rotated.returncode == 0, rotated.stderr
    new_ops = rotated.stdout.strip()
    assert new_ops.startswith("fbk_")
    assert new_ops != ops
    revoked = cli("apikey", "revoke", "--name", "viewer")
    assert revoked.returncode == 0, revoked.stderr
    store = _store(tmp_path)
    try:
        assert store.api_keys.scopes(ops) is None
        assert store.api_keys.scopes(new_ops) == ["write"]
        assert store.api_keys.scopes(viewer) is None
    finally:
        store.close()
    text = cli("apikey", "list").stdout
    assert "revoked" in text
    assert "active" in text
    assert new_ops not in text

    assert cli("apikey", "revoke", "--name", "viewer").returncode == 2  # none working left
    assert cli("apikey", "rotate").returncode == 2  # --name needed
    assert cli("apikey", "create", "--expires-in", "soon").returncode == 2
    assert cli("apikey", "delete", "--name", "ops").returncode == 2


def test_writes_are_audited_with_the_os_user(cli: Run, tmp_path: Path) -> None:
    assert cli("load", PACKAGE).returncode == 0
    cli("apikey", "create", "--name", "ops")
    cli("apikey", "list")
    cli("retry", "--all")
    done = cli("audit", "--json")
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)
    assert [e["action"] for e in events] == ["load", "apikey.create", "retry"]
    assert {e["actor"] for e in events} == {f"cli:{getpass.getuser()}"}
    assert all(e["source"] and e["outcome"] == "ok" for e in events)
    assert json.loads(cli("audit", "--json", "--actor", "apikey").stdout) == []
    assert len(json.loads(cli("audit", "--json", "--since", "1h").stdout)) == 3
    assert json.loads(cli("audit", "--json", "--since", "2999-01-01").stdout) == []
    assert "apikey.create" in cli("audit").stdout
    assert cli("audit", "--since", "last week").returncode == 2
