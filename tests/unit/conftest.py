"""Fixtures of the unit tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fhir_bridge.store.testing import MemoryStore


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    """The real store on a private in-memory SQLite database, migrated and empty."""
    store = MemoryStore()
    yield store
    store.close()
