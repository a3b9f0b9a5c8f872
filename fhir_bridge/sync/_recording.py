"""Push, recording: what the server now holds, and what becomes of each outbox entry.

A write the server took becomes a link (server id, version, what we sent, the server's copy)
and a line of the sync log; its outbox entry is closed. A failed one is logged, and its entry
is rescheduled or dead-lettered as the :class:`RetrySchedule` decides from the error. Under a
lease, nothing is recorded once the lease is lost (the store refuses it: ``LeaseLost``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fhir_bridge.errors import BridgeError, LeaseLost
from fhir_bridge.store import Claim, Link, OutboxEntry, Store

from ._retry import RetrySchedule
from ._send import Outcome
from ._summary import PushSummary


class Recorder:
    """Records one connection's push outcomes in the store."""

    def __init__(
        self,
        store: Store,
        connection: str,
        clock: Callable[[], datetime],
        schedule: RetrySchedule,
    ) -> None:
        self.store = store
        self.connection = connection
        self.clock = clock
        self.schedule = schedule

    def outcome(
        self,
        outcome: Outcome,
        known: dict[str, str],
        summary: PushSummary,
        run_id: int | None,
        *,
        lease: Claim | None = None,
        version: int | None = None,
    ) -> None:
        """A write's result: a link and a log line if the server took it, else a log line.

        ``version`` is the record version the write rendered; ``known`` learns the server id.
        """
        write = outcome.write
        now = self.clock()
        if outcome.failure is not None:
            if run_id is not None:
                self.store.log.add(
                    run_id,
                    now,
                    write.resource_type,
                    write.identifier,
                    "failed",
                    record_version=version,
                    detail=outcome.failure.reason[:500],
                    lease=lease,
                )
            return
        resource_id = outcome.resource_id or (write.link.resource_id if write.link else "")
        link = Link(
            self.connection,
            write.resource_type,
            write.identifier,
            write.entry.kind,
            write.entry.record_id,
            resource_id,
            outcome.version_id,
            outcome.last_updated,
            write.sent_hash,
            write.entry.resource,
            outcome.resource or write.body,
        )
        created = outcome.status == 201
        try:
            if run_id is None:
                self.store.links.save([link], now, lease)
            else:
                self.store.log.add(
                    run_id,
                    now,
                    write.resource_type,
                    write.identifier,
                    "created" if created else "updated",
                    record_version=version,
                    server_version=outcome.version_id,
                    link=link,
                    lease=lease,
                )
        except LeaseLost:
            # the server took a write this worker may no longer make: never trust what the
            # link says was sent, so the next push writes the record again on top of it
            self.store.links.distrust(self.connection, write.resource_type, write.identifier, now)
            raise
        known[write.full_url] = f"{write.resource_type}/{resource_id}"
        if created:
            summary.created += 1
        else:
            summary.updated += 1

    def done(self, entry: OutboxEntry, lease: Claim | None = None) -> None:
        self.store.outbox.mark_done(entry, self.clock(), lease)

    def blocked(
        self, entry: OutboxEntry, resource_type: str, reason: str, lease: Claim | None = None
    ) -> None:
        """The server does not take ``resource_type``: the entry waits (not retried, not
        dead-lettered) until it does (``Outbox.unblock``)."""
        self.store.outbox.mark_blocked(entry, resource_type, reason, self.clock(), lease)

    def failed(
        self,
        entry: OutboxEntry,
        error: BridgeError,
        reason: str,
        summary: PushSummary,
        lease: Claim | None = None,
    ) -> None:
        """Try the entry again later, or dead-letter it, as the retry schedule says."""
        now = self.clock()
        retry_at = self.schedule.retry_at(error, entry.attempts + 1, now)
        self.store.outbox.mark_failed(entry, reason, retry_at, now, lease)
        if retry_at is None:
            summary.dead_lettered += 1
        else:
            summary.failed += 1
