"""The databases the storage and sync tests run against: SQLite always, PostgreSQL when
``FHIR_BRIDGE_TEST_POSTGRES_URL`` names a server (``make test`` and ``.ci/run`` start one).

Each PostgreSQL test gets a database of its own, created from the server URL and dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

POSTGRES_ENV = "FHIR_BRIDGE_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def postgres_server_url() -> str:
    """The configured PostgreSQL server (skips the test when there is none)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL configured: set {POSTGRES_ENV}=postgresql+psycopg://...")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_postgres(postgres_server_url()) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for one test: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    with fresh_postgres(postgres_server_url()) as url:
        yield url


@contextmanager
def fresh_postgres(server: str) -> Iterator[str]:
    """A new database on ``server`` for the block, dropped after it."""
    name = f"fb_test_{uuid.uuid4().hex[:12]}"
    # no pool: a test may restart the server between creating and dropping the database
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
