"""A store for unit tests: no server, no file, a fresh schema in a millisecond.

:class:`MemoryStore` is the real :class:`~fhir_bridge.store.Store` on an in-memory SQLite
database, not a second implementation of the repositories: a fake written beside the SQL
could drift from it, and the tests would then prove the fake. The database is one connection
shared by every thread (the sync code calls the store from ``asyncio.to_thread``), one
transaction at a time.

The schema comes from the Alembic migrations themselves, run once per process into a
template database (about 0.2 s); each store starts as a copy of that template (SQLite's
backup API), and :meth:`MemoryStore.reset` copies it over again. What only PostgreSQL does
(row locks, ``SKIP LOCKED``, advisory locks) is covered by the storage tests that run on
both databases.
"""

from __future__ import annotations

import sqlite3
import threading

from ._engine import open_engine
from ._store import Store

_template_lock = threading.Lock()
_template: sqlite3.Connection | None = None


def _migrated_template() -> sqlite3.Connection:
    """An in-memory database holding the newest schema, made once per process."""
    global _template  # noqa: PLW0603 - one template per process, made on first use
    with _template_lock:
        if _template is None:
            template = sqlite3.connect(":memory:", check_same_thread=False)
            Store("sqlite://", engine=open_engine("sqlite://", creator=lambda: template))
            _template = template  # the migrating store is dropped; its connection lives on
        return _template


class MemoryStore(Store):
    """The store on a private in-memory database; ``reset()`` empties it."""

    def __init__(self) -> None:
        self._connection = sqlite3.connect(":memory:", check_same_thread=False)
        self._copy_template()
        engine = open_engine("sqlite://", creator=lambda: self._connection)
        super().__init__("sqlite://", migrate=False, engine=engine)

    def reset(self) -> None:
        """Back to the migrated, empty schema (every row of every table gone)."""
        with self._db.exclusive():  # no transaction of this store is open meanwhile
            self._copy_template()

    def close(self) -> None:
        super().close()
        self._connection.close()

    def _copy_template(self) -> None:
        template = _migrated_template()
        with _template_lock:
            template.backup(self._connection)
