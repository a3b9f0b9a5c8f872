"""Opening the database: SQLite (one machine) or PostgreSQL (several workers), same schema."""

from __future__ import annotations

import fcntl
import importlib.util
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from fhir_bridge.errors import MissingExtra

# advisory lock keys (PostgreSQL): one namespace of the bridge's own, far from small integers
MIGRATE_LOCK = 0x46_42_00_01
FEED_LOCK = 0x46_42_00_02
SLOT_LOCKS = 0x46_43  # high bits of a server's first key; its slot is the second: _slots.py


def open_engine(url: str, *, creator: Callable[[], sqlite3.Connection] | None = None) -> Engine:
    """An engine for ``url``; PostgreSQL connections are checked before use, so a worker
    survives a database restart (the next transaction reconnects). Errors never quote the
    statement's parameters (they can hold record content).

    An in-memory SQLite database (``sqlite://``) is one connection shared by every thread
    (``creator`` may supply it); the store then runs one transaction at a time.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            engine = create_engine(
                url,
                hide_parameters=True,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
                **({} if creator is None else {"creator": creator}),
            )
        else:
            engine = create_engine(url, future=True, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if importlib.util.find_spec("psycopg") is None:
        raise MissingExtra("postgres", "psycopg")
    return create_engine(
        url,
        future=True,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
    )


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, an exclusive lock file beside it for the length of a migration.

    (PostgreSQL needs none: the migrating transaction takes an advisory lock itself.)
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
