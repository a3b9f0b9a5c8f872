"""Throttles: a server's "wait" is kept until it ends, and only ever lengthened."""

from __future__ import annotations

from datetime import timedelta

from fhir_bridge.store import Store

from .records import NOW


def test_throttle_only_grows_and_ends(store: Store) -> None:
    store.throttles.extend("a", NOW + timedelta(seconds=30), NOW)
    store.throttles.extend("a", NOW + timedelta(seconds=10), NOW)
    assert store.throttles.until("a", NOW) == NOW + timedelta(seconds=30)
    assert store.throttles.until("b", NOW) is None
    assert store.throttles.until("a", NOW + timedelta(seconds=31)) is None
