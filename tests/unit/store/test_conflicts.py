"""Conflicts: kept open for a person, listed by status (resolving one: test_store.py)."""

from __future__ import annotations

from fhir_bridge.store import NewConflict
from fhir_bridge.store.testing import MemoryStore

from .records import NOW, goal


def test_conflicts_are_listed_by_status_oldest_first(memory_store: MemoryStore) -> None:
    store = memory_store
    store.apply_pull(
        "ehr",
        "Goal",
        records=[],
        links=[],
        conflicts=[
            NewConflict("goal", "g1", ["priority"], {"priority": "high"}, {"a": 1}, {"a": 2}),
            NewConflict("goal", "g2", ["description"], None, {}, {}),
        ],
        watermark=None,
        now=NOW,
    )
    first, second = store.conflicts.find()
    assert (first.record_id, first.connection, first.status) == ("g1", "ehr", "open")
    assert first.fields == ["priority"]
    assert first.base == {"priority": "high"}
    assert (first.local, first.remote) == ({"a": 1}, {"a": 2})
    assert first.created_at == NOW
    store.resolve_conflict(first.id, "local", goal(), NOW)
    assert [c.id for c in store.conflicts.find()] == [second.id]
    assert [c.id for c in store.conflicts.find("resolved")] == [first.id]
    assert [c.id for c in store.conflicts.find(None)] == [first.id, second.id]
    assert store.conflicts.get(second.id) == second
    assert store.conflicts.get(12345) is None
