"""Persistence: SQLAlchemy (SQLite by default), schema managed by Alembic."""

from ._store import (
    Conflict,
    Link,
    NewConflict,
    OutboxEntry,
    PutResult,
    Store,
    content_hash,
    utc,
)
from ._tables import OutboxStatus

__all__ = [
    "Conflict",
    "Link",
    "NewConflict",
    "OutboxEntry",
    "OutboxStatus",
    "PutResult",
    "Store",
    "content_hash",
    "utc",
]
