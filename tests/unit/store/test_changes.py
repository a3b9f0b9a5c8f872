"""The change feed read by cursor, and pull watermarks that only move forward."""

from __future__ import annotations

from fhir_bridge.store import Change
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal


def _pull(store: MemoryStore, *records: tuple[str, str], watermark: str | None = None) -> None:
    store.apply_pull(
        "ehr",
        "Goal",
        records=[(goal(text, goal_id), False) for goal_id, text in records],
        links=[],
        conflicts=[],
        watermark=watermark,
        now=NOW,
    )


def test_the_feed_lists_pulled_changes_after_a_cursor(memory_store: MemoryStore) -> None:
    store = memory_store
    _pull(store, ("g1", "a"), ("g2", "a"))
    _pull(store, ("g1", "b"), ("g2", "a"))  # g2 unchanged: no feed row
    store.put_records([goal("local", "g3")], ["ehr"], NOW)  # local writes are not in the feed
    feed = store.changes.since()
    assert feed == [
        Change(feed[0].cursor, "ehr", "goal", "g1", "p1", 1, "created", NOW),
        Change(feed[1].cursor, "ehr", "goal", "g2", "p1", 1, "created", NOW),
        Change(feed[2].cursor, "ehr", "goal", "g1", "p1", 2, "updated", NOW),
    ]
    assert feed[0].cursor < feed[1].cursor < feed[2].cursor
    assert store.changes.since(feed[0].cursor, limit=1) == [feed[1]]
    assert store.changes.since(feed[2].cursor) == []


def test_a_watermark_moves_forward_only(memory_store: MemoryStore) -> None:
    store = memory_store
    assert store.watermarks.get("ehr", "Goal") is None
    _pull(store, watermark="2025-03-01T10:00:00Z")
    _pull(store, watermark="2025-03-01T09:00:00Z")
    assert store.watermarks.get("ehr", "Goal") == "2025-03-01T10:00:00Z"
    _pull(store, watermark="2025-03-01T11:00:00Z")
    assert store.watermarks.get("ehr", "Goal") == "2025-03-01T11:00:00Z"
    assert store.watermarks.get("ehr", "CarePlan") is None
