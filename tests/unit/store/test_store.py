"""The store keeps records, their outbox entries and links consistently."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config

from fhir_bridge import model as m
from fhir_bridge.store import Link, OutboxStatus, Store

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


def goal(text: str = "walk daily", goal_id: str = "g1") -> m.Goal:
    return m.Goal(
        id=goal_id,
        updated_at=NOW,
        patient="p1",
        description=m.Concept(text=text),
        lifecycle_status=m.GoalLifecycle.active,
    )


def test_a_new_record_is_stored_and_queued_for_each_connection(store: Store) -> None:
    """Record and outbox entries are written together."""
    (result,) = store.put_records([goal()], ["a", "b"], NOW)
    assert result.changed
    assert result.version == 1
    assert store.get_record("goal", "g1") == goal()
    assert [e.record_id for e in store.due("a", NOW)] == ["g1"]
    assert [e.record_id for e in store.due("b", NOW)] == ["g1"]


def test_putting_the_same_content_again_changes_nothing(store: Store) -> None:
    """Idempotent ingest: same content, same version, no new outbox work."""
    store.put_records([goal()], ["a"], NOW)
    entry = store.due("a", NOW)[0]
    store.mark_done(entry, NOW)
    (result,) = store.put_records([goal()], ["a"], NOW)
    assert not result.changed
    assert result.version == 1
    assert store.due("a", NOW) == []


def test_a_change_bumps_the_version_and_requeues(store: Store) -> None:
    """A changed record goes back into the outbox with its new version."""
    store.put_records([goal()], ["a"], NOW)
    store.mark_done(store.due("a", NOW)[0], NOW)
    (result,) = store.put_records([goal("walk twice a day")], ["a"], NOW)
    assert result.version == 2
    (entry,) = store.due("a", NOW)
    assert entry.record_version == 2


def test_done_does_not_swallow_a_change_made_meanwhile(store: Store) -> None:
    """An entry finished for version 1 stays queued when version 2 arrived during the push."""
    store.put_records([goal()], ["a"], NOW)
    taken = store.due("a", NOW)[0]
    store.put_records([goal("changed during push")], ["a"], NOW)
    store.mark_done(taken, NOW)
    (entry,) = store.due("a", NOW)
    assert entry.record_version == 2


def test_failures_back_off_then_dead_letter_and_requeue(store: Store) -> None:
    """A retryable failure waits; a permanent one dead-letters; retry requeues."""
    store.put_records([goal()], ["a"], NOW)
    entry = store.due("a", NOW)[0]
    store.mark_failed(entry, "503", NOW + timedelta(minutes=5), NOW)
    assert store.due("a", NOW) == []
    (later,) = store.due("a", NOW + timedelta(minutes=6))
    assert later.attempts == 1
    assert later.last_error == "503"
    store.mark_failed(later, "HTTP 422: Goal.description required", None, NOW)
    (dead,) = store.dead_letters("a")
    assert dead.status is OutboxStatus.dead
    assert "422" in (dead.last_error or "")
    assert store.requeue(None, NOW) == 1
    assert store.dead_letters() == []
    assert store.due("a", NOW)[0].attempts == 0


def test_enqueue_unsynced_covers_a_connection_added_later(store: Store) -> None:
    """Records stored before a connection existed are queued for it on demand, once."""
    store.put_records([goal(), goal(goal_id="g2")], [], NOW)
    assert store.enqueue_unsynced("late", NOW) == 2
    assert store.enqueue_unsynced("late", NOW) == 0
    assert {e.record_id for e in store.due("late", NOW)} == {"g1", "g2"}


def test_links_round_trip(store: Store) -> None:
    """A link keeps the server id, version and what was sent."""
    link = Link("a", "Goal", "sys|g1", "goal", "g1", "123", "2", None, "h", {"x": 1}, None)
    store.save_links([link], NOW)
    assert store.links("a", "Goal", ["sys|g1"]) == {"sys|g1": link}


def test_migrations_match_the_tables(database_url: str) -> None:
    """The Alembic history produces exactly the tables the code declares."""
    url = database_url
    Store(url).close()
    config = Config()
    config.set_main_option("script_location", "fhir_bridge/store/migrations")
    config.set_main_option("sqlalchemy.url", url)
    command.check(config)


def test_opening_twice_is_harmless(database_url: str) -> None:
    """Migrating an up-to-date database does nothing."""
    url = database_url
    Store(url).close()
    second = Store(url)
    assert second.queue_depth() == {}
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
    assert store.queue_depth() == {}
    store.close()
