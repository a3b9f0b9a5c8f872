"""Fixtures for the sync unit tier: the in-memory store, an in-memory FHIR server, fixture data.

Async tests run on anyio's pytest plugin (asyncio only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.store.testing import MemoryStore
from tests.helpers import FIXTURES
from tests.unit.sync.fhir_server import FhirServer

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NAMESPACE = "https://bridge.test/id"
CONNECTION = "ehr"


@dataclass
class Clock:
    """The bridge's wall clock, moved by hand."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(memory_store: MemoryStore) -> Store:
    """The real store on a private in-memory database (the unit tier's ``memory_store``)."""
    return memory_store


@pytest.fixture
def server() -> FhirServer:
    return FhirServer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx() -> MappingContext:
    return MappingContext(namespace=NAMESPACE, now=NOW)


def patient_records(name: str = "cc-diabetes-heart-failure.json") -> list[m.Record]:
    """One fixture patient's records (the internal format)."""
    return read_records(FIXTURES / name)
