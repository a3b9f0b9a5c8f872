"""Persistence: SQLAlchemy (SQLite by default), schema managed by Alembic."""

from ._store import Link, OutboxEntry, PutResult, Store, content_hash, utc
from ._tables import OutboxStatus

__all__ = ["Link", "OutboxEntry", "OutboxStatus", "PutResult", "Store", "content_hash", "utc"]
