"""Request slots: at most ``cap`` held across processes; a dead session frees its slot."""

from __future__ import annotations

import threading

from fhir_bridge.store import Slot, Store


def test_the_cap_holds_across_engines_and_a_release_lets_the_next_in(postgres_url: str) -> None:
    """Two stores (as two processes would) share a cap of 2 on one server."""
    one, two = Store(postgres_url), Store(postgres_url, migrate=False)
    a, b = (
        one.request_slots("ehr", 2, poll=0.1),
        two.request_slots("ehr", 2, poll=0.1),
    )
    first, second = a.acquire(), b.acquire()
    assert {first.number, second.number} == {0, 1}
    got: list[Slot] = []
    waiter = threading.Thread(target=lambda: got.append(b.acquire()))
    waiter.start()
    waiter.join(timeout=0.5)
    assert got == []  # the third waits while two are in flight
    a.release(first)
    waiter.join(timeout=30)
    assert [g.number for g in got] == [first.number]
    elsewhere = one.request_slots("another-server", 2, poll=0.1)
    other = elsewhere.acquire()
    assert other.connection is not None  # another server's slots are its own
    elsewhere.release(other)
    b.release(second)
    b.release(got[0])
    for s in (one, two):
        s.close()


def test_a_session_that_dies_frees_its_slot(postgres_url: str) -> None:
    store = Store(postgres_url)
    slots = store.request_slots("ehr", 1, poll=0.1)
    held = slots.acquire()
    assert held.connection is not None
    held.connection.invalidate()  # the process holding it is gone: its session ends
    held.connection.close()
    again = slots.acquire()
    assert again.number == 0
    slots.release(again)
    store.close()


def test_on_sqlite_a_local_semaphore_caps_the_process(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/bridge.db")
    slots = store.request_slots("ehr", 1)
    held = slots.acquire()
    assert held.connection is None
    assert not slots._local.acquire(blocking=False)
    slots.release(held)
    store.close()
