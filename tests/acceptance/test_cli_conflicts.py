"""`fhir-bridge conflicts` lists what both sides changed; `resolve` settles one and queues it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from fhir_bridge.store import NewConflict, Store
from tests.acceptance.conftest import Run

NOW = datetime(2025, 3, 1, tzinfo=UTC)
BASE = {
    "kind": "goal",
    "id": "g1",
    "updated_at": "2025-03-01T00:00:00Z",
    "patient": {"id": "p1"},
    "description": {"text": "Walk daily"},
    "lifecycle_status": "active",
    "priority": "high",
}


def _store_with_conflict(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")
    store.apply_pull(
        "ehr",
        "Goal",
        records=[],
        links=[],
        conflicts=[
            NewConflict(
                "goal",
                "g1",
                ["priority"],
                BASE,
                BASE | {"priority": "low"},
                BASE | {"priority": "medium"},
            )
        ],
        watermark=None,
        now=NOW,
    )
    return store


def test_conflicts_lists_both_sides(cli: Run, tmp_path: Path) -> None:
    _store_with_conflict(tmp_path).close()
    done = cli("conflicts")
    assert done.returncode == 0, done.stderr
    assert "goal/g1" in done.stdout
    assert "'low'" in done.stdout
    assert "'medium'" in done.stdout
    assert "1 open conflicts" in done.stdout


def test_resolve_with_the_ehr_side_stores_it_and_queues_it(cli: Run, tmp_path: Path) -> None:
    _store_with_conflict(tmp_path).close()
    done = cli("resolve", "1", "--take", "ehr")
    assert done.returncode == 0, done.stderr
    assert "queued for ehr" in done.stdout
    store = Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")
    try:
        record = store.records.get("goal", "g1")
        assert record is not None
        assert record.model_dump()["priority"] == "medium"
        assert [e.record_id for e in store.outbox.due("ehr", datetime.now(UTC))] == ["g1"]
        assert store.conflicts.find() == []
    finally:
        store.close()
    assert cli("resolve", "1", "--take", "ehr").returncode == 2  # no longer open


def test_resolve_with_a_merged_file(cli: Run, tmp_path: Path) -> None:
    _store_with_conflict(tmp_path).close()
    merged = tmp_path / "merged.json"
    merged.write_text(json.dumps(BASE | {"priority": "medium", "lifecycle_status": "on_hold"}))
    assert cli("resolve", "1", "--take", "merged").returncode == 2  # needs the file
    done = cli("resolve", "1", "--take", "merged", str(merged))
    assert done.returncode == 0, done.stderr
    assert os.path.exists(tmp_path / "fhir-bridge.db")
    store = Store(f"sqlite:///{tmp_path / 'fhir-bridge.db'}")
    try:
        record = store.records.get("goal", "g1")
        assert record is not None
        assert record.model_dump()["lifecycle_status"] == "on_hold"
    finally:
        store.close()
