"""The store itself: its schema, its lifecycle, and the writes spanning several repositories."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from fhir_bridge.errors import LeaseLost, StoreUnavailable
from fhir_bridge.store import Link, NewConflict, QueueDepth, Store
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal, patient


def test_migrations_match_the_tables(database_url: str) -> None:
    """The Alembic history produces exactly the tables the code declares."""
    Store(database_url).close()
    config = Config()
    config.set_main_option("script_location", "fhir_bridge/store/migrations")
    config.set_main_option("sqlalchemy.url", database_url)
    command.check(config)


def test_opening_twice_is_harmless(database_url: str) -> None:
    """Migrating an up-to-date database does nothing."""
    Store(database_url).close()
    second = Store(database_url)
    assert second.outbox.depth() == QueueDepth()
    second.close()


def test_several_processes_migrating_a_fresh_database_at_once(database_url: str) -> None:
    """Migrations are serialised: four processes creating the schema together all succeed."""
    code = "import sys; from fhir_bridge.store import Store; Store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    store = Store(database_url, migrate=False)
    assert store.outbox.depth() == QueueDepth()
    store.close()


def test_an_unreachable_database_is_store_unavailable(tmp_path: Path) -> None:
    """Failures for want of a database surface as the project's error, naming the driver's."""
    store = Store(f"sqlite:///{tmp_path / 'missing' / 'bridge.db'}", migrate=False)
    with pytest.raises(StoreUnavailable) as failed:
        store.ping()
    assert failed.value.error_type == "OperationalError"
    with pytest.raises(StoreUnavailable):
        store.outbox.due("a", NOW)
    store.close()


def test_ping_answers_on_a_reachable_database(store: Store) -> None:
    store.ping()


def test_a_connection_dropped_mid_transaction_is_store_unavailable_then_recovers(
    postgres_url: str,
) -> None:
    """As in a PostgreSQL restart: the transaction in flight fails as StoreUnavailable (and
    records nothing); idle pooled connections that died are replaced, so the next calls work."""
    store = Store(postgres_url)
    store.put_records([goal()], ["a"], NOW)
    store.ping()  # a pooled connection, idle when its session is killed below

    def cut_off_mid_transaction() -> None:
        with store._db.session() as s:
            s.execute(text("DELETE FROM outbox"))
            _kill_sessions(postgres_url)
            s.execute(text("SELECT 1"))

    with pytest.raises(StoreUnavailable) as failed:
        cut_off_mid_transaction()
    assert failed.value.error_type == "OperationalError"
    _kill_sessions(postgres_url)
    assert store.outbox.depth() == QueueDepth(pending=1)
    store.close()


def _kill_sessions(url: str) -> None:
    """End every other session on the test's database, as a server restart would."""
    admin = create_engine(url, poolclass=NullPool)
    with admin.connect() as c:
        c.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()


def test_put_records_queues_changed_records_in_one_transaction(memory_store: MemoryStore) -> None:
    """Each changed record gets an outbox entry per connection; an unchanged one none."""
    store = memory_store
    results = store.put_records([patient(), goal()], ["a", "b"], NOW)
    assert [(r.kind, r.version, r.changed) for r in results] == [
        ("patient", 1, True),
        ("goal", 1, True),
    ]
    assert store.outbox.depth("a") == QueueDepth(pending=2)
    assert {e.patient_id for e in store.outbox.due("b", NOW)} == {"p1"}
    (same, changed) = store.put_records([patient(), goal("run")], ["a"], NOW)
    assert not same.changed
    assert (changed.version, changed.changed) == (2, True)


def test_put_record_if_refuses_a_stale_version(memory_store: MemoryStore) -> None:
    store = memory_store
    assert store.put_record_if(goal(), ["a"], NOW, if_version=3) is None
    created = store.put_record_if(goal(), ["a"], NOW, if_version=None)
    assert created is not None
    assert created.version == 1
    assert store.put_record_if(goal("run"), ["a"], NOW, if_version=2) is None
    updated = store.put_record_if(goal("run"), ["a"], NOW, if_version=1)
    assert updated is not None
    assert updated.version == 2
    assert store.records.get_with_version("goal", "g1") == (goal("run"), 2)


def test_resolving_a_conflict_stores_the_record_for_its_connection(
    memory_store: MemoryStore,
) -> None:
    store = memory_store
    store.apply_pull(
        "ehr",
        "Goal",
        records=[],
        links=[],
        conflicts=[NewConflict("goal", "g1", ["description"], None, {"a": 1}, {"a": 2})],
        watermark=None,
        now=NOW,
    )
    (conflict,) = store.conflicts.find()
    result = store.resolve_conflict(conflict.id, "merged", goal("merged"), NOW)
    assert (result.kind, result.id, result.version) == ("goal", "g1", 1)
    assert [e.connection for e in store.outbox.due("ehr", NOW)] == ["ehr"]
    assert store.conflicts.find() == []
    resolved = store.conflicts.get(conflict.id)
    assert resolved is not None
    assert resolved.status == "resolved"
    with pytest.raises(KeyError):
        store.resolve_conflict(conflict.id, "local", goal(), NOW)


def test_a_pulled_page_is_applied_whole(store: Store) -> None:
    """Records, links, deletions, conflicts, the feed and the watermark, in one go."""
    store.put_records([goal("old", "g2")], [], NOW)
    link = Link("ehr", "Goal", "sys|g1", "goal", "g1", "7", "1", "2025-03-01", None, None, {})
    results = store.apply_pull(
        "ehr",
        "Goal",
        records=[(goal(), True), (goal("new", "g3"), False)],
        links=[link],
        conflicts=[NewConflict("goal", "g9", ["priority"], None, {}, {})],
        watermark="2025-03-01T12:00:00Z",
        now=NOW,
        deleted=[("goal", "g2"), ("goal", "never-there")],
    )
    assert [r.id for r in results] == ["g1", "g3"]
    assert [e.record_id for e in store.outbox.due("ehr", NOW)] == ["g1"]  # pushed back
    assert store.links.find("ehr", "Goal", ["sys|g1"]) == {"sys|g1": link}
    assert store.records.is_deleted("goal", "g2")
    assert [(c.record_id, c.change) for c in store.changes.since()] == [
        ("g1", "created"),
        ("g3", "created"),
        ("g2", "deleted"),
    ]
    assert [c.record_id for c in store.conflicts.find()] == ["g9"]
    assert store.watermarks.get("ehr", "Goal") == "2025-03-01T12:00:00Z"


def test_a_page_under_a_lost_lease_changes_nothing(store: Store) -> None:
    stale = store.leases.claim("ehr", "pull", "Goal", holder="w1", now=NOW, seconds=1)
    assert stale is not None
    later = NOW + timedelta(seconds=5)
    with pytest.raises(LeaseLost):
        store.apply_pull(
            "ehr",
            "Goal",
            records=[(goal(), False)],
            links=[],
            conflicts=[],
            watermark="2025-03-02",
            now=later,
            lease=stale,
        )
    assert store.records.get("goal", "g1") is None
    assert store.changes.since() == []
    assert store.watermarks.get("ehr", "Goal") is None
