"""API keys: shown once, only a hash kept, scopes of a valid key, revoked keys refused."""

from __future__ import annotations

from sqlalchemy import select

from fhir_bridge.store._tables import ApiKeyRow
from fhir_bridge.store.testing import MemoryStore

from .records import NOW


def test_a_key_has_its_scopes_until_revoked(memory_store: MemoryStore) -> None:
    store = memory_store
    key = store.api_keys.create("ops", ["read", "write"], NOW)
    other = store.api_keys.create("viewer", ["read"], NOW)
    assert key.startswith("fbk_")
    assert key != other
    assert store.api_keys.scopes(key) == ["read", "write"]
    assert store.api_keys.scopes("fbk_unknown") is None
    assert store.api_keys.revoke("ops") == 1
    assert store.api_keys.revoke("ops") == 0
    assert store.api_keys.scopes(key) is None
    assert store.api_keys.scopes(other) == ["read"]


def test_only_a_hash_of_the_key_is_stored(memory_store: MemoryStore) -> None:
    key = memory_store.api_keys.create("ops", ["admin"], NOW)
    with memory_store.engine.connect() as connection:
        stored = list(connection.execute(select(ApiKeyRow.key_hash)).scalars())
    assert len(stored) == 1
    assert key not in stored[0]
    assert len(stored[0]) == 64
