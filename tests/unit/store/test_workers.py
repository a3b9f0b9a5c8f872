"""Workers: announced, alive, stopped, and the maintenance that frees what the silent left."""

from __future__ import annotations

from datetime import timedelta

from fhir_bridge.store import Store, Worker
from fhir_bridge.store.testing import MemoryStore

from .records import NOW


def test_maintenance_frees_claims_of_silent_workers(store: Store) -> None:
    """Expired leases and those of workers without a heartbeat are freed."""
    store.workers.register("w1", "host", 1, NOW)
    store.workers.register("w2", "host", 2, NOW)
    assert store.leases.claim("a", "push", "p1", holder="w1", now=NOW, seconds=3600) is not None
    assert store.leases.claim("a", "push", "p2", holder="w2", now=NOW, seconds=3600) is not None
    assert store.leases.claim("a", "push", "p3", holder="w2", now=NOW, seconds=1) is not None
    store.workers.heartbeat("w2", NOW + timedelta(minutes=5))
    freed = store.workers.free_stuck_claims(NOW + timedelta(minutes=5), timedelta(minutes=2))
    assert freed == 2  # w1's (silent) and p3 (expired)
    assert [(x.holder, x.key) for x in store.leases.current()] == [("w2", "p2")]
    stopped = {w.id: w.stopped_at for w in store.workers.known()}
    assert stopped["w1"] is not None
    assert stopped["w2"] is None


def test_a_worker_stopping_gives_its_leases_back(memory_store: MemoryStore) -> None:
    store = memory_store
    store.workers.register("w1", "host-a", 41, NOW)
    store.workers.heartbeat("w1", NOW + timedelta(seconds=5))
    assert store.leases.claim("a", "push", "p1", holder="w1", now=NOW, seconds=60) is not None
    store.workers.stopped("w1", NOW + timedelta(seconds=9))
    assert store.leases.current() == []
    assert store.workers.known() == [
        Worker("w1", "host-a", 41, NOW, NOW + timedelta(seconds=5), NOW + timedelta(seconds=9))
    ]
    assert store.leases.claim("a", "push", "p1", holder="w2", now=NOW, seconds=60) is not None
