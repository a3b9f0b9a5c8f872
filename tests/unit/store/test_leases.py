"""Leases: one holder at a time, expiry hands work over, a lost lease records nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from fhir_bridge import model as m
from fhir_bridge.errors import LeaseLost
from fhir_bridge.store import Link, Store
from fhir_bridge.sync._leases import dead_local_holders, process_id

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=61)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


def goal(goal_id: str, patient: str) -> m.Goal:
    return m.Goal(
        id=goal_id,
        updated_at=NOW,
        patient=patient,
        description=m.Concept(text="walk daily"),
        lifecycle_status=m.GoalLifecycle.active,
    )


def test_one_holder_at_a_time_until_expiry(store: Store) -> None:
    """A held lease is refused to others; once expired, another worker takes it over."""
    first = store.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert first is not None
    assert store.claim("a", "push", "p1", holder="w2", now=NOW, seconds=60) is None
    second = store.claim("a", "push", "p1", holder="w2", now=LATER, seconds=60)
    assert second is not None
    assert second.token != first.token
    assert not store.holds(first, LATER)
    assert store.holds(second, LATER)


def test_a_worker_whose_lease_was_taken_over_cannot_complete(store: Store) -> None:
    """Completing with a lost lease raises LeaseLost and leaves the outbox as it was."""
    store.put_records([goal("g1", "p1")], ["a"], NOW)
    (entry,) = store.due("a", NOW)
    stale = store.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert stale is not None
    assert store.claim("a", "push", "p1", holder="w2", now=LATER, seconds=60) is not None
    with pytest.raises(LeaseLost):
        store.mark_done(entry, LATER, stale)
    link = Link("a", "Goal", "sys|g1", "goal", "g1", "1", "1", None, "h", {}, None)
    run = store.start_run("a", "push", LATER, "w1")
    with pytest.raises(LeaseLost):
        store.log(run, LATER, "Goal", "sys|g1", "created", link=link, lease=stale)
    assert store.links("a", "Goal", ["sys|g1"]) == {}
    assert store.log_of("sys|") == []
    assert [e.record_id for e in store.due("a", LATER)] == ["g1"]


def test_an_expired_lease_cannot_complete_even_if_nobody_took_it(store: Store) -> None:
    """Past its expiry a lease is lost: renewal and completion are refused."""
    store.put_records([goal("g1", "p1")], ["a"], NOW)
    (entry,) = store.due("a", NOW)
    claim = store.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert claim is not None
    assert store.renew([claim], NOW + timedelta(seconds=30), 60) != []
    assert store.renew([claim], NOW + timedelta(seconds=200), 60) == []
    with pytest.raises(LeaseLost):
        store.mark_done(entry, NOW + timedelta(seconds=200), claim)


def test_renewal_keeps_a_lease_past_its_first_expiry(store: Store) -> None:
    claim = store.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert claim is not None
    (renewed,) = store.renew([claim], NOW + timedelta(seconds=50), 60)
    assert store.claim("a", "push", "p1", holder="w2", now=LATER, seconds=60) is None
    assert store.holds(renewed, LATER)


def test_claimers_get_different_patients_and_skip_leased_ones(store: Store) -> None:
    """claim_push hands each due patient to one claimer only."""
    store.put_records([goal(f"g{i}", f"p{i}") for i in range(6)], ["a"], NOW)
    one = store.claim_push("a", holder="w1", now=NOW, seconds=60, limit=4)
    two = store.claim_push("a", holder="w2", now=NOW, seconds=60, limit=4)
    assert len(one) == 4
    assert len(two) == 2
    assert not {c.key for c in one} & {c.key for c in two}
    assert store.claim_push("a", holder="w3", now=NOW, seconds=60, limit=4) == []
    assert len(store.claim_push("a", holder="w3", now=LATER, seconds=60, limit=10)) == 6


def test_maintenance_frees_claims_of_silent_workers(store: Store) -> None:
    """Expired leases and those of workers without a heartbeat are freed."""
    store.register_worker("w1", "host", 1, NOW)
    store.register_worker("w2", "host", 2, NOW)
    assert store.claim("a", "push", "p1", holder="w1", now=NOW, seconds=3600) is not None
    assert store.claim("a", "push", "p2", holder="w2", now=NOW, seconds=3600) is not None
    assert store.claim("a", "push", "p3", holder="w2", now=NOW, seconds=1) is not None
    store.worker_alive("w2", NOW + timedelta(minutes=5))
    freed = store.free_stuck_claims(NOW + timedelta(minutes=5), timedelta(minutes=2))
    assert freed == 2  # w1's (silent) and p3 (expired)
    assert [(x["holder"], x["key"]) for x in store.leases()] == [("w2", "p2")]
    stopped = {w["id"]: w["stopped_at"] for w in store.workers()}
    assert stopped["w1"] is not None
    assert stopped["w2"] is None


def test_throttle_only_grows_and_ends(store: Store) -> None:
    store.throttle("a", NOW + timedelta(seconds=30), NOW)
    store.throttle("a", NOW + timedelta(seconds=10), NOW)
    assert store.throttled_until("a", NOW) == NOW + timedelta(seconds=30)
    assert store.throttled_until("b", NOW) is None
    assert store.throttled_until("a", NOW + timedelta(seconds=31)) is None


def test_a_dead_local_holder_is_taken_over_without_waiting(store: Store) -> None:
    """A process of this host that is gone is recognised; its lease is taken at once."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    holder = f"pull:{process_id('x').split(':')[1]}:{gone.pid}:abcdef"
    alive = process_id("pull")
    assert dead_local_holders([holder, alive]) == [holder]
    assert dead_local_holders([holder], roles=("push",)) == []
    assert store.claim("a", "pull", "Goal", holder=holder, now=NOW, seconds=60) is not None
    assert store.claim("a", "pull", "Goal", holder=alive, now=NOW, seconds=60) is None
    taken = store.claim("a", "pull", "Goal", holder=alive, now=NOW, seconds=60, dead=[holder])
    assert taken is not None
