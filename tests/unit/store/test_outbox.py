"""The outbox: what is due, done, retried later or dead-lettered, and the counts of each."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from fhir_bridge.store import Closing, OutboxStatus, QueueDepth, QueueSchedule, Store
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal


def test_done_does_not_swallow_a_change_made_meanwhile(store: Store) -> None:
    """An entry finished for version 1 stays queued when version 2 arrived during the push."""
    store.put_records([goal()], ["a"], NOW)
    taken = store.outbox.due("a", NOW)[0]
    store.put_records([goal("changed during push")], ["a"], NOW)
    store.outbox.mark_done(taken, NOW)
    (entry,) = store.outbox.due("a", NOW)
    assert entry.record_version == 2


def test_a_change_queued_while_a_push_closes_the_older_version_stays_queued(
    postgres_url: str,
) -> None:
    """An edit stored while a push books the version before it (two transactions at once,
    PostgreSQL): the push's close of the older version is held back by the edit's, or finds
    it, and the new version stays pending."""
    editor, pusher = Store(postgres_url), Store(postgres_url, migrate=False)
    editor.put_records([goal()], ["a"], NOW)
    (sent,) = pusher.outbox.due("a", NOW)
    booking = threading.Thread(
        target=pusher.record_push,
        kwargs={"run_id": None, "written": [], "now": NOW, "closing": [Closing(sent, "done")]},
    )

    def book_meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "outbox" in statement and booking.ident is None:  # not started yet
            booking.start()  # between the edit's first outbox statement and its commit
            booking.join(timeout=2)

    event.listen(editor.engine, "after_cursor_execute", book_meanwhile)
    try:
        editor.put_records([goal("changed while the push books")], ["a"], NOW)
        booking.join(timeout=60)
        assert booking.ident is not None
        (entry,) = editor.outbox.due("a", NOW)
        assert (entry.record_version, entry.status) == (2, OutboxStatus.pending)
    finally:
        event.remove(editor.engine, "after_cursor_execute", book_meanwhile)
        booking.join(timeout=60)
        editor.close()
        pusher.close()


def test_a_failure_of_the_older_version_leaves_a_newer_one_queued(store: Store) -> None:
    """A push of version 1 fails for good after version 2 arrived: version 2 is not
    dead-lettered with it (the edit may be the fix), it is tried as queued."""
    store.put_records([goal()], ["a"], NOW)
    taken = store.outbox.due("a", NOW)[0]
    store.put_records([goal("fixed meanwhile")], ["a"], NOW)
    store.outbox.mark_failed(taken, "HTTP 422", None, NOW)
    (entry,) = store.outbox.due("a", NOW)
    assert (entry.record_version, entry.attempts, entry.last_error) == (2, 0, None)
    assert store.outbox.dead_letters("a") == []


def test_failures_back_off_then_dead_letter_and_requeue(store: Store) -> None:
    """A retryable failure waits; a permanent one dead-letters; retry requeues."""
    store.put_records([goal()], ["a"], NOW)
    entry = store.outbox.due("a", NOW)[0]
    store.outbox.mark_failed(entry, "503", NOW + timedelta(minutes=5), NOW)
    assert store.outbox.due("a", NOW) == []
    (later,) = store.outbox.due("a", NOW + timedelta(minutes=6))
    assert later.attempts == 1
    assert later.last_error == "503"
    store.outbox.mark_failed(later, "HTTP 422: Goal.description required", None, NOW)
    (dead,) = store.outbox.dead_letters("a")
    assert dead.status is OutboxStatus.dead
    assert "422" in (dead.last_error or "")
    assert store.outbox.requeue(None, NOW) == 1
    assert store.outbox.dead_letters() == []
    assert store.outbox.due("a", NOW)[0].attempts == 0


def test_requeue_by_id_touches_only_those_dead_letters(memory_store: MemoryStore) -> None:
    store = memory_store
    store.put_records([goal(goal_id="g1"), goal(goal_id="g2")], ["a"], NOW)
    first, second = store.outbox.due("a", NOW)
    for entry in (first, second):
        store.outbox.mark_failed(entry, "HTTP 400", None, NOW)
    assert store.outbox.requeue([second.id, 999], NOW) == 1
    assert [e.id for e in store.outbox.dead_letters()] == [first.id]
    assert [e.id for e in store.outbox.due("a", NOW)] == [second.id]


def test_due_is_per_patient_when_asked(memory_store: MemoryStore) -> None:
    store = memory_store
    store.put_records(
        [goal(goal_id="g1", patient="p1"), goal(goal_id="g2", patient="p2")], ["a"], NOW
    )
    assert [e.record_id for e in store.outbox.due("a", NOW, "p2")] == ["g2"]
    assert store.outbox.due("b", NOW) == []


def test_enqueue_unsynced_covers_a_connection_added_later(store: Store) -> None:
    """Records stored before a connection existed are queued for it on demand, once."""
    store.put_records([goal(), goal(goal_id="g2")], [], NOW)
    assert store.outbox.enqueue_unsynced("late", NOW) == 2
    assert store.outbox.enqueue_unsynced("late", NOW) == 0
    assert {e.record_id for e in store.outbox.due("late", NOW)} == {"g1", "g2"}


def test_counts_by_status_and_by_connection(store: Store) -> None:
    """Depth per status; per connection, pending split into due now and scheduled later."""
    store.put_records([goal(goal_id=f"g{i}") for i in range(4)], ["a"], NOW)
    assert store.outbox.enqueue_unsynced("b", NOW) == 4
    g0, g1, g2, _ = store.outbox.due("a", NOW)
    store.outbox.mark_done(g0, NOW)
    store.outbox.mark_failed(g1, "HTTP 400", None, NOW)
    store.outbox.mark_failed(g2, "HTTP 503", NOW + timedelta(minutes=1), NOW)
    assert store.outbox.depth("a") == QueueDepth(pending=2, done=1, dead=1)
    assert store.outbox.depth() == QueueDepth(pending=6, done=1, dead=1)
    assert store.outbox.depth("nobody") == QueueDepth()
    assert store.outbox.by_connection(NOW) == {
        "a": QueueSchedule(due=1, scheduled=1, done=1, dead=1),
        "b": QueueSchedule(due=4),
    }


def test_counts_as_dicts_name_only_what_is_there() -> None:
    """The shape the API and ``status --json`` print: zero counts are left out, the others
    come by name (the same order on SQLite and PostgreSQL)."""
    assert list(QueueDepth(pending=2, dead=1).as_dict().items()) == [("dead", 1), ("pending", 2)]
    assert QueueDepth().as_dict() == {}
    schedule = QueueSchedule(due=1, scheduled=3, done=1).as_dict()
    assert list(schedule.items()) == [("done", 1), ("due", 1), ("scheduled", 3)]


def test_enqueue_unsynced_pages_through_the_records_and_requeues_moved_versions(
    store: Store,
) -> None:
    """Pages smaller than the store: every record is queued once, a new version again."""
    goals = [goal(goal_id=f"g{i:02}", patient=f"p{i % 3}") for i in range(7)]
    store.put_records(goals, [], NOW)
    assert store.outbox.enqueue_unsynced("late", NOW, page_size=2) == 7
    assert store.outbox.enqueue_unsynced("late", NOW, page_size=2) == 0
    store.put_records([goal(text="walk twice", goal_id="g03", patient="p0")], [], NOW)
    assert store.outbox.enqueue_unsynced("late", NOW, page_size=2) == 1
    assert sorted(e.record_id for e in store.outbox.due("late", NOW)) == [
        f"g{i:02}" for i in range(7)
    ]


def test_due_patients_streams_each_patient_once_with_its_count(store: Store) -> None:
    """Patients with due entries, by key, however small the page; not what is scheduled later."""
    store.put_records([goal(goal_id=f"g{i}", patient=f"p{i % 3}") for i in range(7)], ["a"], NOW)
    assert list(store.outbox.due_patients("a", NOW, page_size=2)) == [
        ("p0", 3),
        ("p1", 2),
        ("p2", 2),
    ]
    store.outbox.mark_failed(
        store.outbox.due("a", NOW, "p1")[0], "boom", NOW + timedelta(hours=1), NOW
    )
    assert list(store.outbox.due_patients("a", NOW, page_size=1)) == [
        ("p0", 3),
        ("p1", 1),
        ("p2", 2),
    ]
    assert list(store.outbox.due_patients("b", NOW)) == []
