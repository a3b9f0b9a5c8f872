"""Sync runs and the sync log: newest first, the latest finished per server, log by prefix."""

from __future__ import annotations

from datetime import timedelta

from fhir_bridge.store import Link, Store
from fhir_bridge.store.testing import MemoryStore

from .records import NOW


def test_runs_start_finish_and_read_newest_first(memory_store: MemoryStore) -> None:
    store = memory_store
    first = store.runs.start("a", "push", NOW, "w1")
    second = store.runs.start("a", "pull", NOW + timedelta(seconds=1))
    store.runs.finish(first, "ok", {"created": 2}, NOW + timedelta(seconds=3))
    newest, oldest = store.runs.recent()
    assert (newest.id, newest.direction, newest.finished_at, newest.outcome) == (
        second,
        "pull",
        None,
        None,
    )
    assert newest.counts == {}
    assert (oldest.started_at, oldest.finished_at) == (NOW, NOW + timedelta(seconds=3))
    assert (oldest.outcome, oldest.counts) == ("ok", {"created": 2})
    assert [r.id for r in store.runs.recent(1)] == [second]


def test_the_last_finished_run_of_each_connection_and_direction(store: Store) -> None:
    runs = {}
    for n, (connection, direction, finish) in enumerate(
        [
            ("a", "push", True),
            ("a", "push", True),
            ("a", "push", False),  # still running: not the last finished
            ("a", "pull", True),
            ("b", "push", True),
        ]
    ):
        runs[n] = store.runs.start(connection, direction, NOW)
        if finish:
            store.runs.finish(runs[n], "ok" if n else "failed", {}, NOW + timedelta(seconds=n))
    last = store.runs.last_finished()
    assert {c: {d: r.id for d, r in per.items()} for c, per in last.items()} == {
        "a": {"push": runs[1], "pull": runs[3]},
        "b": {"push": runs[4]},
    }


def test_the_log_by_identifier_prefix_and_by_action(store: Store) -> None:
    """A prefix is matched literally (``_`` and ``%`` are no wildcards); entries name the
    worker whose run wrote them."""
    run = store.runs.start("a", "push", NOW, "w1")
    other = store.runs.start("a", "pull", NOW)
    link = Link("a", "Goal", "ns_1|g1", "goal", "g1", "9", "1", None, "h", None, None)
    store.log.add(run, NOW, "Goal", "ns_1|g1", "created", record_version=1, link=link)
    store.log.add(run, NOW, "Goal", "nsX1|g2", "created", record_version=1)
    store.log.add(other, NOW, "Goal", "ns_1|g3", "failed", detail="HTTP 422")
    assert store.links.find("a", "Goal", ["ns_1|g1"]) == {"ns_1|g1": link}
    found = store.log.of_identifiers("ns_1|")
    assert [(e.identifier, e.worker, e.action) for e in found] == [
        ("ns_1|g1", "w1", "created"),
        ("ns_1|g3", None, "failed"),
    ]
    assert (found[0].run_id, found[0].record_version, found[0].at) == (run, 1, NOW)
    (failed,) = store.log.recent("failed")
    assert (failed.identifier, failed.detail) == ("ns_1|g3", "HTTP 422")
    assert [e.identifier for e in store.log.recent(limit=2)] == ["ns_1|g3", "nsX1|g2"]
