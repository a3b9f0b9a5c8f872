"""One database as the repositories use it: transactions, and failures as StoreUnavailable."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from fhir_bridge.errors import StoreUnavailable

# errors meaning "the database is away", not "this statement is wrong"
_AWAY = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


class Database:
    """An engine and its sessions; every repository of one store shares one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # in-memory SQLite is one connection shared by every thread: one transaction at a time
        self._serial = threading.RLock() if isinstance(engine.pool, StaticPool) else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.exclusive(), _available(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, for statements outside the ORM (migrations)."""
        with self.exclusive(), _available(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.exclusive(), _available(), self.engine.connect() as connection:
            yield connection

    def exclusive(self) -> contextlib.AbstractContextManager[object]:
        """Hold the one shared connection (in-memory SQLite) for the block; else nothing."""
        return self._serial if self._serial is not None else contextlib.nullcontext()


@contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except _AWAY as exc:
        raise StoreUnavailable(type(exc).__name__) from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise StoreUnavailable(type(exc).__name__) from exc
