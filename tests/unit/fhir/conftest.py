"""Fixtures for the FHIR client tests (async tests run on anyio's pytest plugin)."""

from __future__ import annotations

import pytest

from tests.unit.fhir.fakes import FakeTime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
