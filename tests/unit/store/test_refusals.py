"""Refusals: what a connection's server does not take, kept between runs and forgotten when
its CapabilityStatement changes, when too old, or on request; entries blocked on a type."""

from __future__ import annotations

from datetime import timedelta

from fhir_bridge.store import OutboxStatus, Store, id_free

from .records import NOW, goal


def test_a_refusal_is_kept_per_connection_and_refreshed(store: Store) -> None:
    store.refusals.remember(
        "a", "transaction", source="run-time", statement="s1", now=NOW, status=405, said="no"
    )
    later = NOW + timedelta(minutes=5)
    kept = store.refusals.remember(
        "a", "transaction", source="run-time", statement="s1", now=later, status=501
    )
    assert (kept.status, kept.refused_at, kept.resource_type) == (501, later, None)
    (only,) = store.refusals.of("a")
    assert only == kept
    assert store.refusals.of("b") == []


def test_declared_ones_are_added_once(store: Store) -> None:
    assert store.refusals.remember_declared("a", ["CarePlan:write", "Goal:write"], "s1", NOW) == 2
    assert store.refusals.remember_declared("a", ["CarePlan:write"], "s1", NOW) == 0
    assert [(r.resource_type, r.source) for r in store.refusals.of("a")] == [
        ("CarePlan", "capability-statement"),
        ("Goal", "capability-statement"),
    ]


def test_forgotten_when_the_statement_changes_when_old_or_on_request(store: Store) -> None:
    store.refusals.remember("a", "batch", source="run-time", statement="s1", now=NOW)
    store.refusals.remember("a", "Goal:write", source="run-time", statement="s2", now=NOW)
    store.refusals.remember_declared("a", ["CarePlan:write"], "s2", NOW - timedelta(days=30))
    assert store.refusals.forget_stale("a", "s2") == 1  # learnt under s1
    assert store.refusals.forget_stale("a", "s2", NOW + timedelta(seconds=1)) == 1  # too old
    # what the statement itself declares is not aged out: it holds while the statement does
    assert [r.what for r in store.refusals.of("a")] == ["CarePlan:write"]
    assert store.refusals.forget("a") == 1
    assert store.refusals.of("a") == []


def test_the_servers_words_are_kept_id_free_and_short() -> None:
    said = id_free(
        "Goal/123abc/_history/2 refused: value 'Maria Lopez' for urn:uuid:1b2c-33 id 48213 "
        + "x" * 300
    )
    assert said is not None
    assert "123abc" not in said
    assert "Maria" not in said
    assert "1b2c" not in said
    assert "48213" not in said
    assert len(said) == 200


def test_blocked_entries_wait_until_unblocked(store: Store) -> None:
    store.put_records([goal()], ["a"], NOW)
    (entry,) = store.outbox.due("a", NOW)
    store.outbox.mark_blocked(entry, "Goal", "Goal is read-only", NOW)
    assert store.outbox.due("a", NOW + timedelta(days=365)) == []
    assert store.outbox.blocked() == {"a": {"Goal": 1}}
    assert store.outbox.depth("a").blocked == 1
    assert store.outbox.by_connection(NOW)["a"].as_dict() == {"blocked": 1}
    (waiting,) = store.outbox.blocked_entries("a")
    assert (waiting.status, waiting.last_error) == (OutboxStatus.blocked, "Goal is read-only")
    assert store.outbox.unblock("a", ["CarePlan"], NOW) == 0
    assert store.outbox.unblock("a", ["Goal"], NOW) == 1
    assert [e.record_id for e in store.outbox.due("a", NOW)] == ["g1"]


def test_a_change_made_meanwhile_is_not_blocked(store: Store) -> None:
    store.put_records([goal()], ["a"], NOW)
    (entry,) = store.outbox.due("a", NOW)
    store.put_records([goal("walk twice daily")], ["a"], NOW)
    store.outbox.mark_blocked(entry, "Goal", "Goal is read-only", NOW)
    assert store.outbox.blocked() == {}
    assert len(store.outbox.due("a", NOW)) == 1
