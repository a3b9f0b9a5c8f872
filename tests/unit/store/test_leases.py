"""Leases: one holder at a time, expiry hands work over, a lost lease records nothing."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from fhir_bridge import model as m
from fhir_bridge.errors import LeaseLost
from fhir_bridge.store import Link, Store
from fhir_bridge.sync._leases import dead_local_holders, process_id

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=61)


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
    first = store.leases.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert first is not None
    assert store.leases.claim("a", "push", "p1", holder="w2", now=NOW, seconds=60) is None
    second = store.leases.claim("a", "push", "p1", holder="w2", now=LATER, seconds=60)
    assert second is not None
    assert second.token != first.token
    assert not store.leases.holds(first, LATER)
    assert store.leases.holds(second, LATER)


def test_a_worker_whose_lease_was_taken_over_cannot_complete(store: Store) -> None:
    """Completing with a lost lease raises LeaseLost and leaves the outbox as it was."""
    store.put_records([goal("g1", "p1")], ["a"], NOW)
    (entry,) = store.outbox.due("a", NOW)
    stale = store.leases.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert stale is not None
    assert store.leases.claim("a", "push", "p1", holder="w2", now=LATER, seconds=60) is not None
    with pytest.raises(LeaseLost):
        store.outbox.mark_done(entry, LATER, stale)
    link = Link("a", "Goal", "sys|g1", "goal", "g1", "1", "1", None, "h", {}, None)
    run = store.runs.start("a", "push", LATER, "w1")
    with pytest.raises(LeaseLost):
        store.log.add(run, LATER, "Goal", "sys|g1", "created", link=link, lease=stale)
    assert store.links.find("a", "Goal", ["sys|g1"]) == {}
    assert store.log.of_identifiers("sys|") == []
    assert [e.record_id for e in store.outbox.due("a", LATER)] == ["g1"]


def test_an_expired_lease_cannot_complete_even_if_nobody_took_it(store: Store) -> None:
    """Past its expiry a lease is lost: renewal and completion are refused."""
    store.put_records([goal("g1", "p1")], ["a"], NOW)
    (entry,) = store.outbox.due("a", NOW)
    claim = store.leases.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert claim is not None
    assert store.leases.renew([claim], NOW + timedelta(seconds=30), 60) != []
    assert store.leases.renew([claim], NOW + timedelta(seconds=200), 60) == []
    with pytest.raises(LeaseLost):
        store.outbox.mark_done(entry, NOW + timedelta(seconds=200), claim)


def test_renewal_keeps_a_lease_past_its_first_expiry(store: Store) -> None:
    claim = store.leases.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60)
    assert claim is not None
    (renewed,) = store.leases.renew([claim], NOW + timedelta(seconds=50), 60)
    assert store.leases.claim("a", "push", "p1", holder="w2", now=LATER, seconds=60) is None
    assert store.leases.holds(renewed, LATER)


def test_claimers_get_different_patients_and_skip_leased_ones(store: Store) -> None:
    """claim_push hands each due patient to one claimer only."""
    store.put_records([goal(f"g{i}", f"p{i}") for i in range(6)], ["a"], NOW)
    one = store.leases.claim_push("a", holder="w1", now=NOW, seconds=60, limit=4)
    two = store.leases.claim_push("a", holder="w2", now=NOW, seconds=60, limit=4)
    assert len(one) == 4
    assert len(two) == 2
    assert not {c.key for c in one} & {c.key for c in two}
    assert store.leases.claim_push("a", holder="w3", now=NOW, seconds=60, limit=4) == []
    assert len(store.leases.claim_push("a", holder="w3", now=LATER, seconds=60, limit=10)) == 6


def test_a_dead_local_holder_is_taken_over_without_waiting(store: Store) -> None:
    """A process of this host that is gone is recognised; its lease is taken at once."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    holder = f"pull:{process_id('x').split(':')[1]}:{gone.pid}:abcdef"
    alive = process_id("pull")
    assert dead_local_holders([holder, alive]) == [holder]
    assert dead_local_holders([holder], roles=("push",)) == []
    assert store.leases.claim("a", "pull", "Goal", holder=holder, now=NOW, seconds=60) is not None
    assert store.leases.claim("a", "pull", "Goal", holder=alive, now=NOW, seconds=60) is None
    taken = store.leases.claim(
        "a", "pull", "Goal", holder=alive, now=NOW, seconds=60, dead=[holder]
    )
    assert taken is not None


def test_the_leases_on_record_and_their_holders(store: Store) -> None:
    """Expired leases stay on record (until freed or taken over); per connection on demand."""
    assert store.leases.claim("a", "push", "p2", holder="w2", now=NOW, seconds=1) is not None
    assert store.leases.claim("a", "pull", "Goal", holder="w1", now=NOW, seconds=60) is not None
    assert store.leases.claim("b", "push", "p1", holder="w1", now=NOW, seconds=60) is not None
    held = store.leases.current()
    assert [(x.connection, x.holder, x.scope, x.key) for x in held] == [
        ("a", "w1", "pull", "Goal"),
        ("b", "w1", "push", "p1"),
        ("a", "w2", "push", "p2"),
    ]
    assert held[2].expires_at == NOW + timedelta(seconds=1)
    assert [x.key for x in store.leases.current("b")] == ["p1"]
    assert sorted(store.leases.holders()) == ["w1", "w2"]
    claim = store.leases.claim("c", "push", "p9", holder="w3", now=NOW, seconds=9)
    assert claim is not None
    store.leases.release(claim)
    assert store.leases.current("c") == []


def test_a_chunk_is_claimed_and_given_back_in_one_transaction_each(store: Store) -> None:
    """``claim_many`` takes the free keys and leaves out the one held elsewhere;
    ``release_all`` frees every claim given, and only those."""
    other = store.leases.claim("a", "push", "p2", holder="w2", now=NOW, seconds=60)
    assert other is not None
    got = store.leases.claim_many(
        "a", "push", ["p3", "p1", "p2", "p1"], holder="w1", now=NOW, seconds=60
    )
    assert sorted(got) == ["p1", "p3"]
    assert all(c.holder == "w1" and c.key == k for k, c in got.items())
    store.leases.release_all([got["p1"], got["p3"]])
    assert [(lease.key, lease.holder) for lease in store.leases.current("a")] == [("p2", "w2")]
    again = store.leases.claim_many("a", "push", ["p1", "p3"], holder="w3", now=NOW, seconds=60)
    assert sorted(again) == ["p1", "p3"]


def test_a_chunk_takes_over_expired_leases_and_adds_new_ones_each_with_its_own_token(
    store: Store,
) -> None:
    """One ``claim_many`` takes over an expired lease, adds a missing one and leaves out one
    still held; each claim has a token of its own, so giving one back keeps the other."""
    expired = store.leases.claim("a", "push", "p1", holder="w2", now=NOW, seconds=1)
    held = store.leases.claim("a", "push", "p3", holder="w3", now=NOW, seconds=600)
    assert expired is not None
    assert held is not None
    later = NOW + timedelta(seconds=5)
    got = store.leases.claim_many(
        "a", "push", ["p1", "p2", "p3"], holder="w1", now=later, seconds=60
    )
    assert sorted(got) == ["p1", "p2"]
    assert got["p1"].token != got["p2"].token
    assert store.leases.holds(got["p1"], later)
    assert store.leases.holds(got["p2"], later)
    assert not store.leases.holds(expired, later)  # the old holder's token is gone
    store.leases.release(got["p1"])
    assert [(x.key, x.holder) for x in store.leases.current("a")] == [
        ("p2", "w1"),
        ("p3", "w3"),
    ]
