"""Persistence: SQLAlchemy (SQLite by default), schema managed by Alembic."""

from ._clock import utc
from ._leases import Claim
from ._slots import RequestSlots, Slot
from ._store import (
    Conflict,
    Link,
    NewConflict,
    OutboxEntry,
    PutResult,
    Store,
    content_hash,
)
from ._tables import OutboxStatus

__all__ = [
    "Claim",
    "Conflict",
    "Link",
    "NewConflict",
    "OutboxEntry",
    "OutboxStatus",
    "PutResult",
    "RequestSlots",
    "Slot",
    "Store",
    "content_hash",
    "utc",
]
