"""What one bundle of a push leaves behind, written in one transaction.

A push records, per bundle it sent: the links of what the server took, a line of the sync log
per write, and (at the end of a patient's writes) what becomes of each of its outbox entries.
Writing them together (one commit per bundle, not one per write) is what lets push keep up
with the server; under leases, every patient's lease is checked in that same transaction, so
nothing is recorded for a patient another worker has taken over (``LeaseLost`` names it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ._leases import Claim, fence
from ._links import Link, save_all
from ._outbox import OutboxEntry, close_all_done, close_blocked, close_failed
from ._tables import SyncLogRow


@dataclass(frozen=True, slots=True)
class Written:
    """One write of a push, as the sync log keeps it; ``link`` when the server took it."""

    resource_type: str
    identifier: str
    action: str  # created, updated, failed
    record_version: int | None = None
    server_version: str | None = None
    detail: str | None = None
    link: Link | None = None


@dataclass(frozen=True, slots=True)
class Closing:
    """What becomes of one outbox entry: done, failed (retried at ``retry_at``, or dead when
    None) or blocked (waits for the server to take ``blocked_on``)."""

    entry: OutboxEntry
    status: Literal["done", "failed", "blocked"]
    reason: str = ""
    retry_at: datetime | None = None
    blocked_on: str = ""


def record(
    s: Session,
    *,
    run_id: int | None,
    written: Sequence[Written],
    closing: Sequence[Closing],
    leases: Sequence[Claim],
    now: datetime,
    postgres: bool,
) -> None:
    """Write a bundle's links, log lines and closed entries; every lease checked first."""
    for lease in leases:
        fence(s, lease, now, postgres=postgres)
    save_all(s, [w.link for w in written if w.link is not None], now)
    if run_id is not None and written:
        s.execute(
            insert(SyncLogRow),
            [
                {
                    "run_id": run_id,
                    "at": now,
                    "resource_type": w.resource_type,
                    "identifier": w.identifier,
                    "action": w.action,
                    "record_version": w.record_version,
                    "server_version": w.server_version,
                    "detail": w.detail,
                }
                for w in written
            ],
        )
    close_all_done(s, [c.entry for c in closing if c.status == "done"], now)
    for c in closing:
        if c.status == "done":
            continue
        if c.status == "failed":
            close_failed(s, c.entry, c.reason, c.retry_at, now)
        else:
            close_blocked(s, c.entry, c.blocked_on, c.reason, now)
