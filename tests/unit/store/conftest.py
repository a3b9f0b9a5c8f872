"""The storage tests' store: on SQLite, then on PostgreSQL when one is configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fhir_bridge.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()
