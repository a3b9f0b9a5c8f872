"""The change feed under concurrent writers: a reader following the cursor never skips."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text

from fhir_bridge import model as m
from fhir_bridge.store import Store

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _goal(goal_id: str) -> m.Goal:
    return m.Goal(
        id=goal_id,
        updated_at=NOW,
        patient="p1",
        description=m.Concept(text="walk daily"),
        lifecycle_status=m.GoalLifecycle.active,
    )


def _waiting_for_feed_lock(store: Store) -> bool:
    with store.engine.connect() as c:
        waiting = c.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar()
    return bool(waiting)


def test_a_later_feed_write_waits_for_an_earlier_one_to_commit(postgres_url: str) -> None:
    """Writer 1 has written its feed row but not committed; writer 2 waits for it, so a
    reader never sees writer 2's (higher) cursor before writer 1's row is visible."""
    reader = Store(postgres_url)
    first, second = Store(postgres_url, migrate=False), Store(postgres_url, migrate=False)
    go_on = threading.Event()
    paused = threading.Event()

    def hold_commit(*_: Any) -> None:
        paused.set()
        go_on.wait(timeout=60)

    event.listen(first.engine, "commit", hold_commit)

    def apply(store: Store, goal_id: str) -> None:
        store.apply_pull(
            "ehr",
            "Goal",
            records=[(_goal(goal_id), False)],
            links=[],
            conflicts=[],
            watermark=None,
            now=NOW,
        )

    one = threading.Thread(target=apply, args=(first, "g1"))
    two = threading.Thread(target=apply, args=(second, "g2"))
    try:
        one.start()
        assert paused.wait(timeout=60)
        two.start()
        deadline = time.monotonic() + 60
        while not _waiting_for_feed_lock(reader):
            assert time.monotonic() < deadline, "the second writer never waited"
            time.sleep(0.05)
        assert reader.changes.since(0) == []  # nothing committed: the cursor cannot run ahead
    finally:
        go_on.set()
        one.join(timeout=60)
        two.join(timeout=60)
    feed = reader.changes.since(0)
    assert [c.record_id for c in feed] == ["g1", "g2"]
    assert feed[0].cursor < feed[1].cursor
    for s in (reader, first, second):
        s.close()
